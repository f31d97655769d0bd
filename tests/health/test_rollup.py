"""Compaction of check results, with explicit times: raw rows past the window become
per-minute and per-hour rollups; old minute rollups go, hour rollups stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from tests.health.support import live_release

from podium.core import Podium
from podium.health.models import Check, CheckResult, CheckRollup
from podium.health.rollup import compact

NOW = datetime(2026, 3, 10, 12, 30, tzinfo=UTC)
RAW = timedelta(hours=48)
MINUTES = timedelta(days=14)


def add_results(core: Podium, check_id: int, rows: list[tuple[datetime, bool, float]]) -> None:
    with core.store.session() as session:
        session.add_all(CheckResult(check_id=check_id, at=at, ok=ok, latency_ms=ms) for at, ok, ms in rows)


def rollups(core: Podium) -> list[tuple[str, datetime, int, int, float, float]]:
    with core.store.session() as session:
        return [
            (r.period, r.bucket, r.total, r.failures, r.latency_sum_ms, r.latency_max_ms)
            for r in session.scalars(select(CheckRollup).order_by(CheckRollup.period, CheckRollup.bucket))
        ]


def raw_times(core: Podium) -> list[datetime]:
    with core.store.session() as session:
        return list(session.scalars(select(CheckResult.at).order_by(CheckResult.at)))


def test_old_results_are_rolled_up_and_deleted(core: Podium, hello: str) -> None:
    live_release(core, "hello", "production")
    core.checks.ensure_web_checks()
    with core.store.session() as session:
        check_id = session.scalars(select(Check.id)).one()
    old = datetime(2026, 3, 8, 9, 0, tzinfo=UTC)  # 51.5 hours before NOW
    recent = NOW - timedelta(hours=1)
    add_results(core, check_id, [
        (old + timedelta(seconds=5), True, 10.0),
        (old + timedelta(seconds=15), False, 30.0),
        (old + timedelta(minutes=1, seconds=5), True, 20.0),
        (old + timedelta(minutes=59, seconds=59), True, 5.0),
        (recent, True, 1.0),
    ])
    done = compact(core.store, NOW, RAW, MINUTES)
    assert done.rolled_up == 4
    assert raw_times(core) == [recent]
    assert rollups(core) == [
        ("hour", old, 4, 1, 65.0, 30.0),
        ("minute", old, 2, 1, 40.0, 30.0),
        ("minute", old + timedelta(minutes=1), 1, 0, 20.0, 20.0),
        ("minute", old + timedelta(minutes=59), 1, 0, 5.0, 5.0),
    ]
    # Run again later: the recent row's hour is past the window now; rollups add up.
    assert compact(core.store, NOW + timedelta(hours=1), RAW, MINUTES).rolled_up == 0
    assert compact(core.store, NOW + timedelta(days=2), RAW, MINUTES).rolled_up == 1
    assert raw_times(core) == []
    assert ("hour", recent.replace(minute=0), 1, 0, 1.0, 1.0) in rollups(core)


def test_the_cut_is_on_an_hour_boundary(core: Podium, hello: str) -> None:
    live_release(core, "hello", "production")
    core.checks.ensure_web_checks()
    with core.store.session() as session:
        check_id = session.scalars(select(Check.id)).one()
    edge = (NOW - RAW).replace(minute=0)  # 10:00 two days ago; NOW - RAW is 12:30
    add_results(core, check_id, [(edge - timedelta(seconds=1), True, 1.0), (edge, True, 1.0),
                                 (edge + timedelta(minutes=29), True, 1.0)])
    compact(core.store, NOW, RAW, MINUTES)
    # 12:29:59 is rolled up, but not 12:00 and 12:29: their hour is not over in the raw window.
    assert raw_times(core) == [edge, edge + timedelta(minutes=29)]


def test_minute_rollups_past_their_window_go_and_hour_rollups_stay(core: Podium, hello: str) -> None:
    live_release(core, "hello", "production")
    core.checks.ensure_web_checks()
    with core.store.session() as session:
        check_id = session.scalars(select(Check.id)).one()
    month_ago = NOW - timedelta(days=30)
    add_results(core, check_id, [(month_ago, False, 2.0)])
    done = compact(core.store, NOW, RAW, MINUTES)
    assert (done.rolled_up, done.minute_rollups_dropped) == (1, 1)
    assert rollups(core) == [("hour", month_ago.replace(minute=0), 1, 1, 2.0, 2.0)]
