"""The DORA four keys and what counts as a failed change, on hand-made deploys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from podium.deploy.models import ReleaseCause
from podium.metrics import (
    Deploy,
    DeployColumns,
    Outage,
    Period,
    ReleaseFacts,
    Timeline,
    dora_report,
    failed_changes,
)
from podium.metrics.dora import dora_weekly

MONDAY = datetime(2024, 1, 1, tzinfo=UTC)
WEEK = Period(MONDAY, MONDAY + timedelta(days=7))
NOW = MONDAY + timedelta(days=10)


def at(hours: float) -> datetime:
    return MONDAY + timedelta(hours=hours)


def test_the_four_keys_of_a_week() -> None:
    deploys = DeployColumns.of([
        Deploy(at(-1), at(-5), failed_change=True),  # before the period: not counted
        Deploy(at(10), at(8)),  # lead time 2 h
        Deploy(at(30), at(24), failed_change=True),  # lead time 6 h
        Deploy(at(50)),  # a config change: no lead time
        Deploy(at(70), at(69)),  # lead time 1 h
    ])
    incidents = Timeline.of([Outage(at(31), at(32)), Outage(at(60), at(63)), Outage(at(80))], [], NOW)
    report = dora_report(deploys, [incidents], WEEK, NOW)
    assert report.deploys == 4
    assert report.deployment_frequency_per_day == pytest.approx(4 / 7)
    assert report.lead_time_seconds == 2 * 3600  # median of 1 h, 2 h, 6 h
    assert report.failed_changes == 1
    assert report.change_failure_rate == pytest.approx(1 / 4)
    assert report.time_to_restore_seconds == pytest.approx(2 * 3600)  # median of 1 h and 3 h; one still open


def test_no_deploys_means_no_rate_but_a_frequency_of_zero() -> None:
    report = dora_report(DeployColumns.of([]), [], WEEK, NOW)
    assert report.deploys == 0
    assert report.deployment_frequency_per_day == 0
    assert report.lead_time_seconds is None
    assert report.change_failure_rate is None
    assert report.time_to_restore_seconds is None


def test_the_frequency_counts_only_days_that_have_happened() -> None:
    now = at(36)
    report = dora_report(DeployColumns.of([Deploy(at(1)), Deploy(at(2)), Deploy(at(40))]), [], WEEK, now)
    assert report.deploys == 2
    assert report.deployment_frequency_per_day == pytest.approx(2 / 1.5)


def test_weekly_dora() -> None:
    deploys = DeployColumns.of([Deploy(at(1), at(0)), Deploy(at(24 * 8), at(24 * 8 - 3), failed_change=True)])
    weeks = dora_weekly(deploys, [], Period(MONDAY, MONDAY + timedelta(days=14)), NOW)
    assert [report.deploys for _, report in weeks] == [1, 1]
    assert [report.change_failure_rate for _, report in weeks] == [0, 1]
    assert weeks[1][1].lead_time_seconds == 3 * 3600


def release(id: int, version: int, live: float | None, *, env: int = 1, created: float | None = None,
            rollback_of: int | None = None, cause: str = ReleaseCause.DEPLOY) -> ReleaseFacts:
    made = at(created if created is not None else (live if live is not None else 0) - 0.01)
    return ReleaseFacts(id, env, version, made, None if live is None else at(live), rollback_of, cause)


def test_failed_changes_rolled_back_within_the_window_auto_rolled_back_or_causing_an_incident() -> None:
    minute = 1 / 60
    releases = [
        release(1, 1, 0),
        release(2, 2, 1),
        release(3, 3, 1 + 2 * minute, created=1 + minute, rollback_of=1),  # v2 rolled back after a minute
        release(4, 4, 5),
        release(5, 5, 7, created=7, rollback_of=3),  # two hours after v4: outside the window
        release(6, 6, 8),  # rolled back by Podium an hour later, outside the window: failed all the same
        release(7, 7, 9, created=9, rollback_of=5, cause=ReleaseCause.AUTO_ROLLBACK),  # itself no failure
        release(8, 8, None),  # never went live
        release(9, 9, 10, rollback_of=7, created=10),  # below it: v8 never live, nothing else in range
        release(10, 1, 1, env=2),  # another environment, untouched by env 1's rollbacks
        release(11, 10, 11),
    ]
    failed = failed_changes(releases, incident_causes={11}, window=timedelta(minutes=5))
    assert failed == {2, 6, 11}


def test_a_rollback_far_below_marks_every_release_live_within_the_window() -> None:
    releases = [release(1, 1, 0), release(2, 2, 1), release(3, 3, 1.01), release(4, 4, 1.02, rollback_of=1,
                                                                                   created=1.02)]
    assert failed_changes(releases, [], timedelta(minutes=5)) == {2, 3}
