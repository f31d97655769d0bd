"""Periods: ``since`` as people write it, ISO weeks and calendar months."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from podium.errors import Invalid
from podium.metrics import Period, parse_since
from podium.metrics.period import iso_weeks, months

NOW = datetime(2024, 3, 15, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "start"),
    [
        ("30d", NOW - timedelta(days=30)),
        ("12w", NOW - timedelta(weeks=12)),
        ("24h", NOW - timedelta(hours=24)),
        (" 7D ", NOW - timedelta(days=7)),
        ("2024-01-31", datetime(2024, 1, 31, tzinfo=UTC)),
        ("2024-03-01T06:30:00", datetime(2024, 3, 1, 6, 30, tzinfo=UTC)),
        ("2024-03-01T06:30:00+02:00", datetime(2024, 3, 1, 4, 30, tzinfo=UTC)),
        ("2024-03-01T06:30:00Z", datetime(2024, 3, 1, 6, 30, tzinfo=UTC)),
    ],
)
def test_since_forms(text: str, start: datetime) -> None:
    assert parse_since(text, NOW) == start


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "invalid since"),
        ("30", "invalid since"),
        ("30m", "invalid since"),
        ("-3d", "invalid since"),
        ("0d", "empty period"),
        ("2024-13-01", "invalid since"),
        ("2025-01-01", "not in the past"),
        ("9999999w", "more than 3660 days"),
        ("2000-01-01", "more than 3660 days"),
        ("0001-01-01T00:00+14:00", "invalid since"),
    ],
)
def test_bad_since_is_refused_with_the_rule(text: str, reason: str) -> None:
    with pytest.raises(Invalid, match=reason):
        parse_since(text, NOW)


def test_iso_weeks_start_on_monday_and_clip_to_the_period() -> None:
    period = Period(datetime(2024, 2, 28, 10, tzinfo=UTC), datetime(2024, 3, 12, tzinfo=UTC))  # Wed to Tue
    weeks = iso_weeks(period)
    assert [monday.date().isoformat() for monday, _ in weeks] == ["2024-02-26", "2024-03-04", "2024-03-11"]
    assert weeks[0][1].start == period.start
    assert weeks[1][1] == Period(datetime(2024, 3, 4, tzinfo=UTC), datetime(2024, 3, 11, tzinfo=UTC))
    assert weeks[-1][1].end == period.end


def test_months_cross_a_year_end() -> None:
    period = Period(datetime(2023, 11, 20, tzinfo=UTC), datetime(2024, 1, 10, tzinfo=UTC))
    found = months(period)
    assert [first.date().isoformat() for first, _ in found] == ["2023-11-01", "2023-12-01", "2024-01-01"]
    assert found[1][1].seconds == 31 * 86400
