"""The metrics service at a fixed ``now``: weights from the store, rollbacks within the window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from tests.metrics.support import Seed

from podium.catalog.auth import Actor
from podium.core import Podium
from podium.metrics.service import MetricsService, Scope

NOW = datetime(2024, 3, 4, tzinfo=UTC)  # a Monday: "7d" is exactly the ISO week before
WEEK_START = NOW - timedelta(days=7)
ADMIN = Actor(team="platform", team_id=1, token_id=None)


def test_team_weights_from_the_store_weigh_the_team_s_downtime(core: Podium, seed: Seed) -> None:
    seed.service("cart", "checkout")
    seed.incident("cart", WEEK_START + timedelta(hours=9.5), WEEK_START + timedelta(hours=10.5))
    core.metrics.set_weights(ADMIN, "checkout", weights=[3.0 if h == 9 else 1.0 for h in range(168)])
    result = core.metrics.availability(Scope(service="cart"), "7d", now=NOW)
    assert result.report.availability == pytest.approx(1 - 1 / 168)
    # Monday 09:00-10:00 weighs 3: half an hour there and half an hour at 1, out of 170 weighted hours.
    assert result.report.weighted_availability == pytest.approx(1 - (1800 * 3 + 1800) / (170 * 3600))
    assert [monday for monday, _ in result.weekly] == [WEEK_START]
    assert result.weekly[0][1] == result.report


def test_a_manual_rollback_within_the_window_is_a_failed_change(core: Podium, seed: Seed) -> None:
    seed.service("cart", "checkout")
    artifact = seed.artifact("cart", WEEK_START)
    went_live = WEEK_START + timedelta(days=1)
    seed.release("cart", 1, artifact, WEEK_START + timedelta(hours=1))
    seed.release("cart", 2, artifact, went_live)
    seed.release("cart", 3, artifact, went_live + timedelta(minutes=2), created=went_live + timedelta(minutes=1),
                 rollback_of=1)
    seed.release("cart", 4, artifact, went_live + timedelta(days=1))
    seed.release("cart", 5, artifact, went_live + timedelta(days=2), created=went_live + timedelta(days=2),
                 rollback_of=3)  # a day after v4 went live: outside the window
    watched = MetricsService(core.store, rollback_window=300)
    report = watched.dora("checkout", "7d", now=NOW).report
    assert report.deploys == 5
    assert report.failed_changes == 1
    assert report.lead_time_seconds is None  # no commit time is known
    assert report.upload_to_live_seconds == 3600  # only v1 shipped the artifact for the first time
    unwatched = MetricsService(core.store, rollback_window=0).dora("checkout", "7d", now=NOW).report
    assert unwatched.failed_changes == 0


def test_monthly_rows_split_at_month_boundaries(core: Podium, seed: Seed) -> None:
    seed.service("cart", "checkout")
    feb_end = datetime(2024, 3, 1, tzinfo=UTC)
    seed.incident("cart", feb_end - timedelta(hours=1), feb_end + timedelta(hours=2))
    found = core.metrics.monthly_availability(Scope(team="checkout"), "2024-02-15", now=NOW)
    assert [(r["month"], r["downtime_seconds"]) for r in found] == [("2024-02", 3600.0), ("2024-03", 7200.0)]
    assert found[0]["incidents"] == 1
    assert found[1]["incidents"] == 0  # it was triggered in February
    assert found[1]["observed_seconds"] == 3 * 86400.0  # March 1 until now
