"""The DORA four keys of a team's production deploys: pure functions of their inputs.

Deployment frequency (deploys that went live, per day of the period), lead time (median
of live - change, over the deploys that shipped a change), change failure rate (failed
deploys / deploys) and time to restore (median resolved - triggered of the incidents).
``docs/metrics.md`` states what counts as a change and as a failure.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray

from podium.deploy.models import ReleaseCause
from podium.metrics.availability import Timeline, combine, tally
from podium.metrics.period import Period, iso_weeks, to_seconds
from podium.metrics.timeline import FloatArray, as_seconds


@dataclass(frozen=True)
class Deploy:
    """A production release that went live.

    ``change_at`` is when its change was made (the commit time if known, else the
    artifact's creation); None when it ships no new change: a config change, a rollback,
    an artifact that was live in production before.
    """

    live_at: datetime
    change_at: datetime | None = None
    failed_change: bool = False


@dataclass(frozen=True)
class DeployColumns:
    """Deploys as arrays of seconds, sorted by ``live_at``."""

    live_at: FloatArray
    change_at: FloatArray  # NaN: no new change
    failed: NDArray[np.bool_]

    @classmethod
    def from_arrays(
        cls, live_at: Sequence[float] | FloatArray, change_at: Sequence[float] | FloatArray,
        failed: Sequence[bool] | NDArray[np.bool_],
    ) -> DeployColumns:
        live, change, bad = as_seconds(live_at), as_seconds(change_at), np.asarray(failed, dtype=np.bool_)
        if not live.shape == change.shape == bad.shape:
            raise ValueError("deploy columns differ in length")
        order = np.argsort(live)
        return cls(live[order], change[order], bad[order])

    @classmethod
    def of(cls, deploys: Iterable[Deploy]) -> DeployColumns:
        rows = list(deploys)
        return cls.from_arrays(
            [to_seconds(d.live_at) for d in rows],
            [float("nan") if d.change_at is None else to_seconds(d.change_at) for d in rows],
            [d.failed_change for d in rows],
        )


@dataclass(frozen=True)
class DoraReport:
    """The four keys over a period; a number with no data behind it is None."""

    period_start: datetime
    period_end: datetime
    deploys: int
    failed_changes: int
    deployment_frequency_per_day: float | None
    lead_time_seconds: float | None
    change_failure_rate: float | None
    time_to_restore_seconds: float | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
            "deploys": self.deploys,
            "failed_changes": self.failed_changes,
            "deployment_frequency_per_day": self.deployment_frequency_per_day,
            "lead_time_seconds": self.lead_time_seconds,
            "change_failure_rate": self.change_failure_rate,
            "time_to_restore_seconds": self.time_to_restore_seconds,
        }


def dora_report(deploys: DeployColumns, incidents: Sequence[Timeline], period: Period, now: datetime) -> DoraReport:
    """The four keys of ``deploys`` and production ``incidents`` over the period, cut at ``now``."""
    start = to_seconds(period.start)
    end = max(start, min(to_seconds(period.end), to_seconds(now)))
    lo = int(np.searchsorted(deploys.live_at, start, side="left"))
    hi = int(np.searchsorted(deploys.live_at, end, side="left"))
    count = hi - lo
    failed = int(np.count_nonzero(deploys.failed[lo:hi]))
    lead = deploys.live_at[lo:hi] - deploys.change_at[lo:hi]
    lead = np.maximum(lead[~np.isnan(lead)], 0.0)
    repairs = combine(tally(t, start, end) for t in incidents).repairs
    return DoraReport(
        period_start=period.start,
        period_end=period.end,
        deploys=count,
        failed_changes=failed,
        deployment_frequency_per_day=count / ((end - start) / 86400.0) if end > start else None,
        lead_time_seconds=float(np.median(lead)) if lead.shape[0] else None,
        change_failure_rate=failed / count if count else None,
        time_to_restore_seconds=float(np.median(repairs)) if repairs.shape[0] else None,
    )


def dora_weekly(
    deploys: DeployColumns, incidents: Sequence[Timeline], period: Period, now: datetime
) -> list[tuple[datetime, DoraReport]]:
    """The four keys for each ISO week of the period."""
    return [(monday, dora_report(deploys, incidents, part, now)) for monday, part in iso_weeks(period)]


@dataclass(frozen=True)
class ReleaseFacts:
    """What telling a failed change apart needs of one release."""

    id: int
    environment_id: int
    version: int
    created_at: datetime
    live_at: datetime | None
    rollback_of: int | None = None
    cause: str = ReleaseCause.DEPLOY


def failed_changes(releases: Iterable[ReleaseFacts], incident_causes: Iterable[int], window: timedelta) -> set[int]:
    """The ids of releases that were failed changes.

    A release failed when an incident names it as its cause, or when a later release of
    the same environment rolled back below it (``rollback_of`` older than it) and was made
    within ``window`` of it going live, or at any time when Podium made that rollback by
    itself (its cause is ``auto_rollback``: the deploy watcher saw the release fail).
    """
    failed = set(incident_causes)
    by_environment: dict[int, list[ReleaseFacts]] = defaultdict(list)
    for release in releases:
        by_environment[release.environment_id].append(release)
    for rows in by_environment.values():
        rows.sort(key=lambda r: r.version)
        versions = [r.version for r in rows]
        for rollback in rows:
            if rollback.rollback_of is None:
                continue
            first = bisect.bisect_right(versions, rollback.rollback_of)
            last = bisect.bisect_left(versions, rollback.version)
            for replaced in rows[first:last]:
                if replaced.live_at is None:
                    continue
                waited = rollback.created_at - replaced.live_at
                if rollback.cause == ReleaseCause.AUTO_ROLLBACK or timedelta(0) <= waited <= window:
                    failed.add(replaced.id)
    return failed
