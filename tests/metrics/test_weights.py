"""Hour-of-week weights: exact integrals across hour boundaries and the week's wrap-around."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from podium.errors import Invalid
from podium.metrics import HourWeights, Outage, Period, availability_report, weights_from_traffic
from podium.metrics.period import to_seconds
from podium.metrics.timeline import Intervals

MONDAY = datetime(2024, 1, 1, tzinfo=UTC)  # a Monday, 00:00 UTC
SUN_23 = 6 * 24 + 23  # the last hour of the week


def at(hours: float) -> datetime:
    return MONDAY + timedelta(hours=hours)


def table(**hours: float) -> list[float]:
    """Weights of 1 except the named hours (``h9=3`` is Monday 09:00-10:00)."""
    values = [1.0] * 168
    for name, weight in hours.items():
        values[int(name[1:])] = weight
    return values


def span(start: datetime, end: datetime) -> Intervals:
    return Intervals.single(to_seconds(start), to_seconds(end))


def test_an_interval_across_an_hour_boundary_takes_each_hour_s_weight_for_its_seconds() -> None:
    raw = table(h9=3)
    weights = HourWeights(raw)
    scale = 168 / sum(raw)  # weights are scaled to average 1
    assert weights.integral(span(at(9.5), at(10.5))) == pytest.approx((1800 * 3 + 1800 * 1) * scale, rel=1e-12)
    # Two seconds straddling 10:00 are one of each weight: no sampling of whole minutes.
    around_ten = span(at(10) - timedelta(seconds=1), at(10) + timedelta(seconds=1))
    assert weights.integral(around_ten) == pytest.approx((3 + 1) * scale, rel=1e-12)


def test_weighted_availability_across_an_hour_boundary() -> None:
    period = Period(at(0), at(168))
    report = availability_report([Outage(at(9.5), at(10.5))], [], period, at(168), HourWeights(table(h9=3)))
    assert report.availability == pytest.approx(1 - 3600 / (168 * 3600))
    assert report.weighted_availability == pytest.approx(1 - (1800 * 3 + 1800) / ((167 + 3) * 3600))


def test_an_outage_over_sunday_midnight_wraps_to_monday_s_first_hour() -> None:
    weights = HourWeights(table(**{f"h{SUN_23}": 4, "h0": 2}))
    period = Period(at(0), at(2 * 168))
    outage = Outage(at(168 - 0.5), at(168 + 0.5))  # Sunday 23:30 to Monday 00:30
    report = availability_report([outage], [], period, at(2 * 168), weights)
    assert report.weighted_availability == pytest.approx(1 - (1800 * 4 + 1800 * 2) / (2 * (166 + 4 + 2) * 3600))


def test_weights_repeat_every_week_far_from_the_epoch() -> None:
    weights = HourWeights(table(h12=5))
    base = at(12)
    first = weights.integral(span(base, base + timedelta(minutes=30)))
    for weeks in (1, 52, 520):
        later = base + timedelta(weeks=weeks)
        assert weights.integral(span(later, later + timedelta(minutes=30))) == pytest.approx(first, rel=1e-9)


def test_a_whole_week_weighs_a_week_whatever_the_table() -> None:
    weights = HourWeights([float(h % 7) + 0.5 for h in range(168)])
    assert weights.integral(span(at(37.25), at(37.25 + 168))) == pytest.approx(168 * 3600, rel=1e-12)


def test_flat_weights_give_plain_availability() -> None:
    period = Period(at(0), at(72))
    outages = [Outage(at(1), at(2.25)), Outage(at(30), at(31))]
    report = availability_report(outages, [], period, at(72), HourWeights([7.0] * 168))
    assert report.weighted_availability == report.availability


def test_weights_from_traffic_follow_the_counts_with_a_floor_for_quiet_hours() -> None:
    counts = [0.0] * 168
    counts[12], counts[13] = 100.0, 300.0
    weights = weights_from_traffic(counts)
    assert len(weights) == 168
    assert sum(weights) == pytest.approx(168)
    assert weights[13] / weights[12] == pytest.approx(3)
    assert weights[0] / weights[12] == pytest.approx(0.01 / (100 * 168 / 400))
    assert weights[0] == weights[167] > 0


def test_no_traffic_at_all_gives_flat_weights() -> None:
    assert weights_from_traffic([0] * 168) == [1.0] * 168


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ([1.0] * 167, "168 numbers"),
        ([1.0] * 167 + [math.nan], "finite"),
        ([1.0] * 167 + [math.inf], "finite"),
        ([1.0] * 167 + [-1.0], "negative"),
        ([0.0] * 168, "not all be zero"),
    ],
)
def test_bad_weight_tables_are_refused_with_the_reason(values: list[float], reason: str) -> None:
    with pytest.raises(Invalid, match=reason):
        HourWeights(values)


def test_huge_weights_do_not_overflow() -> None:
    weights = HourWeights([1e308] * 84 + [0.0] * 84)
    assert sum(weights.as_list()) == pytest.approx(168)


def test_a_weight_a_billionth_of_the_largest_counts_as_zero() -> None:
    weights = HourWeights([1.0] + [1e-12] * 166 + [1e-6])
    assert weights.values[1] == 0
    assert weights.values[167] > 0
