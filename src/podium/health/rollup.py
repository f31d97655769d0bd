"""Compaction of check results: raw rows past the raw window become per-minute and
per-hour rollups, and per-minute rollups past their own window are dropped.

The aggregation is done in Python rather than SQL, so the same code runs on SQLite and
PostgreSQL (their date functions differ); it works in chunks, each its own transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from podium.health.models import CheckResult, CheckRollup
from podium.store.db import Store

MINUTE, HOUR = "minute", "hour"
CHUNK = 5000  # raw rows per transaction: small enough for SQLite's bound-parameter limit


@dataclass
class Bucket:
    """Running totals of one check over one minute or hour."""

    total: int = 0
    failures: int = 0
    latency_sum_ms: float = 0.0
    latency_max_ms: float = 0.0

    def add(self, ok: bool, latency_ms: float) -> None:
        self.total += 1
        self.failures += 0 if ok else 1
        self.latency_sum_ms += latency_ms
        self.latency_max_ms = max(self.latency_max_ms, latency_ms)

    def merge_into(self, rollup: CheckRollup) -> None:
        rollup.total += self.total
        rollup.failures += self.failures
        rollup.latency_sum_ms += self.latency_sum_ms
        rollup.latency_max_ms = max(rollup.latency_max_ms, self.latency_max_ms)


@dataclass(frozen=True)
class Compacted:
    """What one compaction did."""

    rolled_up: int
    minute_rollups_dropped: int


def floor_to(at: datetime, period: str) -> datetime:
    """The start of the minute or hour ``at`` falls in."""
    at = at.replace(second=0, microsecond=0)
    return at.replace(minute=0) if period == HOUR else at


def aggregate(rows: Iterable[tuple[int, datetime, bool, float]]) -> dict[tuple[int, str, datetime], Bucket]:
    """Per (check, period, bucket start): the totals of the given (check_id, at, ok, latency) rows."""
    buckets: dict[tuple[int, str, datetime], Bucket] = {}
    for check_id, at, ok, latency in rows:
        for period in (MINUTE, HOUR):
            key = (check_id, period, floor_to(at, period))
            buckets.setdefault(key, Bucket()).add(ok, latency)
    return buckets


def compact(store: Store, now: datetime, raw_window: timedelta, minute_window: timedelta) -> Compacted:
    """Roll up raw results older than ``raw_window`` (up to the hour before that), then drop
    minute rollups older than ``minute_window``. Safe to run again: rollups are added to."""
    # Cut on an hour boundary, so each hour's rollup is built from all of its raw rows at once.
    cutoff = floor_to(now - raw_window, HOUR)
    rolled = 0
    while True:
        with store.session() as session:
            rows = session.execute(
                select(CheckResult.id, CheckResult.check_id, CheckResult.at, CheckResult.ok, CheckResult.latency_ms)
                .where(CheckResult.at < cutoff)
                .order_by(CheckResult.id)
                .limit(CHUNK)
            ).all()
            if not rows:
                break
            _store_buckets(session, aggregate((r[1], r[2], r[3], r[4]) for r in rows))
            session.execute(delete(CheckResult).where(CheckResult.id.in_([r[0] for r in rows])))
            rolled += len(rows)
    with store.session() as session:
        dropped = session.execute(
            delete(CheckRollup).where(CheckRollup.period == MINUTE, CheckRollup.bucket < now - minute_window)
        )
        count = int(getattr(dropped, "rowcount", 0) or 0)
    return Compacted(rolled_up=rolled, minute_rollups_dropped=count)


def _store_buckets(session: Session, buckets: dict[tuple[int, str, datetime], Bucket]) -> None:
    """Add the buckets to the rollups already stored, creating the missing ones."""
    check_ids = {key[0] for key in buckets}
    starts = [key[2] for key in buckets]
    existing = {
        (r.check_id, r.period, r.bucket): r
        for r in session.scalars(
            select(CheckRollup).where(
                CheckRollup.check_id.in_(check_ids), CheckRollup.bucket >= min(starts),
                CheckRollup.bucket <= max(starts),
            )
        )
    }
    for key, bucket in buckets.items():
        rollup = existing.get(key)
        if rollup is None:
            check_id, period, start = key
            rollup = CheckRollup(check_id=check_id, period=period, bucket=start, total=0, failures=0,
                                 latency_sum_ms=0.0, latency_max_ms=0.0)
            session.add(rollup)
        bucket.merge_into(rollup)
