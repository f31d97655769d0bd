"""Availability, MTTR, MTTA and MTBF of incident timelines: pure functions of their inputs.

``docs/metrics.md`` states each definition; in short, for a period ``[start, end)`` seen
at ``now`` (the period is cut at ``now``: the future is not observed):

- downtime is the union of the incidents' intervals (an open incident runs until ``now``),
  clipped to the period, minus maintenance windows; observed time is the period minus
  maintenance; availability is ``1 - downtime / observed``;
- weighted availability integrates hour-of-week weights over both instead;
- MTTR and MTTA are over the incidents triggered in the period; MTBF is the mean observed
  uptime between consecutive outages (merged downtime) inside the period.

A ``Timeline`` holds one service environment as sorted arrays; ``tally`` measures it over
a period in time logarithmic in its size plus what falls in the period, and ``Tally``
values of several services add up before ``summarize`` turns them into a report.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from podium.metrics.period import Period, iso_weeks, to_seconds
from podium.metrics.timeline import FloatArray, Intervals, as_seconds, covered_before, difference, union
from podium.metrics.weights import HourWeights

NAN = float("nan")
FLAT = HourWeights.flat_week()


@dataclass(frozen=True)
class Outage:
    """An incident as the metrics see it; ``end=None`` while it is still open."""

    start: datetime
    end: datetime | None = None
    acknowledged_at: datetime | None = None
    cause_deploy: bool = False


@dataclass(frozen=True)
class Window:
    """A maintenance window: neither downtime nor observed time."""

    start: datetime
    end: datetime


def _empty() -> FloatArray:
    return np.empty(0, dtype=np.float64)


@dataclass(frozen=True)
class Timeline:
    """One service environment's incidents and maintenance as seen at ``now``, as arrays of seconds.

    What happens after ``now`` has not happened yet: later incidents are left out, and a
    resolution or acknowledgement after ``now`` counts as none.
    """

    now: float
    triggered: FloatArray = field(default_factory=_empty)  # ascending
    resolved: FloatArray = field(default_factory=_empty)  # NaN while open
    acknowledged: FloatArray = field(default_factory=_empty)  # NaN when never acknowledged
    cause_deploy: NDArray[np.bool_] = field(default_factory=lambda: np.empty(0, dtype=np.bool_))
    outages: Intervals = field(default_factory=Intervals.empty)  # merged; open ones run until now
    maintenance: Intervals = field(default_factory=Intervals.empty)
    since: float = -np.inf  # when the service began to exist: nothing before it is observed

    @classmethod
    def from_arrays(
        cls,
        now: float,
        triggered: Sequence[float] | FloatArray,
        resolved: Sequence[float] | FloatArray,
        acknowledged: Sequence[float] | FloatArray | None = None,
        cause_deploy: Sequence[bool] | NDArray[np.bool_] | None = None,
        maintenance_starts: Sequence[float] | FloatArray = (),
        maintenance_ends: Sequence[float] | FloatArray = (),
        since: float = -np.inf,
    ) -> Timeline:
        """A timeline from columns of seconds (NaN for "not yet"); the columns need not be sorted.

        ``since`` is when the service came to exist: the time before it is neither up nor down.
        An incident recorded earlier moves it back (the service was there to fail).
        """
        trig, res = as_seconds(triggered), as_seconds(resolved)
        ack = np.full(trig.shape, NAN) if acknowledged is None else as_seconds(acknowledged)
        cause = np.zeros(trig.shape, dtype=np.bool_) if cause_deploy is None else np.asarray(cause_deploy, np.bool_)
        if not trig.shape == res.shape == ack.shape == cause.shape:
            raise ValueError("incident columns differ in length")
        seen = trig <= now
        if not np.all(seen):
            trig, res, ack, cause = trig[seen], res[seen], ack[seen], cause[seen]
        order = np.argsort(trig)  # ties may come in any order: no metric depends on it
        trig, res, ack, cause = trig[order], res[order], ack[order], cause[order]
        # NaN compares false, so "open" and "later than now" both become NaN here.
        res = np.where(res <= now, np.maximum(res, trig), NAN)
        ack = np.where(ack <= now, np.maximum(ack, trig), NAN)
        ends = np.where(np.isnan(res), now, res)
        maintenance = union(as_seconds(maintenance_starts), as_seconds(maintenance_ends))
        if trig.shape[0]:
            since = min(since, float(trig[0]))
        return cls(now, trig, res, ack, cause, union(trig, ends), maintenance, float(since))

    @classmethod
    def of(
        cls, outages: Iterable[Outage], windows: Iterable[Window], now: datetime, since: datetime | None = None
    ) -> Timeline:
        """A timeline from incidents and maintenance windows as dataclasses; ``since``: when the service began."""
        rows = list(outages)
        maint = list(windows)
        return cls.from_arrays(
            to_seconds(now),
            [to_seconds(o.start) for o in rows],
            [NAN if o.end is None else to_seconds(o.end) for o in rows],
            [NAN if o.acknowledged_at is None else to_seconds(o.acknowledged_at) for o in rows],
            [o.cause_deploy for o in rows],
            [to_seconds(w.start) for w in maint],
            [to_seconds(w.end) for w in maint],
            since=-np.inf if since is None else to_seconds(since),
        )


@dataclass(frozen=True)
class Tally:
    """What one timeline contributes to a report over one period; ``combine`` adds tallies up."""

    observed: float = 0.0
    downtime: float = 0.0
    weighted_observed: float = 0.0
    weighted_downtime: float = 0.0
    incidents: int = 0
    caused_by_deploys: int = 0
    repairs: FloatArray = field(default_factory=_empty)  # resolved - triggered, per incident
    acks: FloatArray = field(default_factory=_empty)  # acknowledged - triggered
    gaps: FloatArray = field(default_factory=_empty)  # observed uptime between consecutive outages



def combine(tallies: Iterable[Tally]) -> Tally:
    """The sum of several tallies: times added, incidents pooled."""
    parts = list(tallies)
    if len(parts) == 1:
        return parts[0]
    return Tally(
        observed=sum(t.observed for t in parts),
        downtime=sum(t.downtime for t in parts),
        weighted_observed=sum(t.weighted_observed for t in parts),
        weighted_downtime=sum(t.weighted_downtime for t in parts),
        incidents=sum(t.incidents for t in parts),
        caused_by_deploys=sum(t.caused_by_deploys for t in parts),
        repairs=np.concatenate([_empty(), *(t.repairs for t in parts)]),
        acks=np.concatenate([_empty(), *(t.acks for t in parts)]),
        gaps=np.concatenate([_empty(), *(t.gaps for t in parts)]),
    )


def tally(timeline: Timeline, start: float, end: float, weights: HourWeights | None = None) -> Tally:
    """Measure one timeline over ``[start, end)``, cut at the timeline's ``now`` and begun at its ``since``."""
    weights = weights or FLAT
    end = max(start, min(end, timeline.now))
    start = min(max(start, timeline.since), end)
    maintenance = timeline.maintenance.clip(start, end)
    observed = difference(Intervals.single(start, end), maintenance)
    down = difference(timeline.outages.clip(start, end), maintenance)

    lo = int(np.searchsorted(timeline.triggered, start, side="left"))
    hi = int(np.searchsorted(timeline.triggered, end, side="left"))
    triggered = timeline.triggered[lo:hi]
    repairs = timeline.resolved[lo:hi] - triggered
    acks = timeline.acknowledged[lo:hi] - triggered

    return Tally(
        observed=(end - start) - maintenance.length(),
        downtime=down.length(),
        weighted_observed=weights.integral(observed),
        weighted_downtime=weights.integral(down),
        incidents=hi - lo,
        caused_by_deploys=int(np.count_nonzero(timeline.cause_deploy[lo:hi])),
        repairs=repairs[~np.isnan(repairs)],
        acks=acks[~np.isnan(acks)],
        gaps=_uptime_gaps(down, maintenance),
    )


def _uptime_gaps(down: Intervals, maintenance: Intervals) -> FloatArray:
    """Observed time between consecutive outages.

    On a clock that stops during maintenance, downtime pieces separated by maintenance
    alone touch, so they are one outage; the gaps are what lies between the rest.
    """
    if len(down) < 2:
        return _empty()
    starts = down.starts[1:] - covered_before(maintenance, down.starts[1:])
    ends = down.ends[:-1] - covered_before(maintenance, down.ends[:-1])
    gaps = starts - ends
    return gaps[gaps > 0]


@dataclass(frozen=True)
class AvailabilityReport:
    """The availability numbers of a period; a number with no data behind it is None."""

    period_start: datetime
    period_end: datetime
    incidents: int
    incidents_caused_by_deploys: int
    mttr_seconds: float | None
    mttr_median_seconds: float | None
    mtta_seconds: float | None
    mtbf_seconds: float | None
    availability: float | None
    weighted_availability: float | None
    downtime_seconds: float
    observed_seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
            "incidents": self.incidents,
            "incidents_caused_by_deploys": self.incidents_caused_by_deploys,
            "mttr_seconds": self.mttr_seconds,
            "mttr_median_seconds": self.mttr_median_seconds,
            "mtta_seconds": self.mtta_seconds,
            "mtbf_seconds": self.mtbf_seconds,
            "availability": self.availability,
            "weighted_availability": self.weighted_availability,
            "downtime_seconds": self.downtime_seconds,
            "observed_seconds": self.observed_seconds,
        }


def _mean(values: FloatArray) -> float | None:
    return float(np.mean(values)) if values.shape[0] else None


def _median(values: FloatArray) -> float | None:
    return float(np.median(values)) if values.shape[0] else None


def _ratio_up(down: float, observed: float) -> float | None:
    """``1 - down / observed`` within [0, 1], or None when nothing was observed."""
    if observed <= 0:
        return None
    return min(1.0, max(0.0, 1.0 - down / observed))


def summarize(total: Tally, period: Period) -> AvailabilityReport:
    """The report of a period from the sum of its timelines' tallies."""
    return AvailabilityReport(
        period_start=period.start,
        period_end=period.end,
        incidents=total.incidents,
        incidents_caused_by_deploys=total.caused_by_deploys,
        mttr_seconds=_mean(total.repairs),
        mttr_median_seconds=_median(total.repairs),
        mtta_seconds=_mean(total.acks),
        mtbf_seconds=_mean(total.gaps),
        availability=_ratio_up(total.downtime, total.observed),
        weighted_availability=_ratio_up(total.weighted_downtime, total.weighted_observed),
        downtime_seconds=total.downtime,
        observed_seconds=total.observed,
    )


Measured = Sequence[tuple[Timeline, HourWeights | None]]
"""Timelines to measure together (a team's services, say), each with its team's weights."""


def measure(timelines: Measured, period: Period) -> AvailabilityReport:
    """One report over several timelines: their sums of time, and their incidents pooled."""
    start, end = to_seconds(period.start), to_seconds(period.end)
    return summarize(combine(tally(timeline, start, end, weights) for timeline, weights in timelines), period)


def weekly(timelines: Measured, period: Period) -> list[tuple[datetime, AvailabilityReport]]:
    """The same report for each ISO week (Monday 00:00 UTC) of the period, clipped to it."""
    return [(monday, measure(timelines, part)) for monday, part in iso_weeks(period)]


def availability_report(
    outages: Iterable[Outage], windows: Iterable[Window], period: Period, now: datetime,
    weights: HourWeights | None = None, since: datetime | None = None,
) -> AvailabilityReport:
    """The report of one service environment, from dataclasses: the simplest way in."""
    return measure([(Timeline.of(outages, windows, now, since), weights)], period)
