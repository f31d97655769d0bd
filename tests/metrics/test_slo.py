"""Error budget and burn rates of an objective, on a hand-computed day."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from podium.errors import Invalid
from podium.metrics import Outage, Timeline, Window, slo_status

MONDAY = datetime(2024, 1, 1, tzinfo=UTC)


def at(hours: float) -> datetime:
    return MONDAY + timedelta(hours=hours)


NOW = at(48)


def test_budget_consumed_remaining_and_burn_rates() -> None:
    outages = [Outage(at(38), at(38.5)), Outage(NOW - timedelta(minutes=6))]  # 30 min, and 6 min still open
    status = slo_status([Timeline.of(outages, [], NOW)], objective=0.99, window_days=1, now=NOW)
    assert status.window_start == at(24)
    assert status.error_budget_seconds == pytest.approx(0.01 * 86400)  # 864 s
    assert status.budget_consumed_seconds == pytest.approx(2160)
    assert status.budget_remaining_fraction == pytest.approx(1 - 2160 / 864)  # overspent: -1.5
    assert status.availability == pytest.approx(1 - 2160 / 86400)
    assert status.burn_rate == pytest.approx((2160 / 86400) / 0.01)  # 2.5
    assert status.burn_rate_1h == pytest.approx((360 / 3600) / 0.01)  # 10
    assert status.burn_rate_6h == pytest.approx((360 / 21600) / 0.01)


def test_maintenance_shrinks_the_budget_and_hides_its_downtime() -> None:
    timeline = Timeline.of([Outage(at(30), at(31))], [Window(at(24), at(36))], NOW)
    status = slo_status([timeline], objective=0.999, window_days=1, now=NOW)
    assert status.error_budget_seconds == pytest.approx(0.001 * 12 * 3600)
    assert status.budget_consumed_seconds == 0
    assert status.budget_remaining_fraction == 1.0
    assert status.burn_rate == 0


def test_a_clean_window_keeps_the_whole_budget() -> None:
    status = slo_status([Timeline.of([], [], NOW)], objective=0.999, window_days=30, now=NOW)
    assert status.budget_remaining_fraction == 1.0
    assert status.burn_rate == status.burn_rate_1h == status.burn_rate_6h == 0


def test_nothing_observed_gives_no_budget_and_no_rates() -> None:
    timeline = Timeline.of([], [Window(at(0), NOW)], NOW)
    status = slo_status([timeline], objective=0.999, window_days=1, now=NOW)
    assert status.error_budget_seconds is None
    assert status.budget_remaining_fraction is None
    assert status.burn_rate is None
    assert status.burn_rate_1h is None


@pytest.mark.parametrize(("objective", "days"), [(1.0, 30), (0.0, 30), (1.5, 30), (math.nan, 30), (0.99, 0),
                                                 (0.99, 366)])
def test_objectives_outside_zero_to_one_and_odd_windows_are_refused(objective: float, days: int) -> None:
    with pytest.raises(Invalid):
        slo_status([], objective=objective, window_days=days, now=NOW)
