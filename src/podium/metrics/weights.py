"""Hour-of-week weights: how much a second of downtime costs, by when in the week it falls.

168 numbers, Monday 00:00-01:00 UTC first and Sunday 23:00-24:00 UTC last. Integrals are
exact: each hour contributes its weight times the seconds of it that are covered, with no
sampling, so an interval that crosses hour boundaries (or wraps from Sunday to Monday) is
split at each boundary.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from podium.errors import Invalid
from podium.metrics.timeline import FloatArray, Intervals

HOURS_PER_WEEK = 168
HOUR = 3600.0
WEEK = HOURS_PER_WEEK * HOUR
MONDAY_EPOCH = 4 * 86400.0  # 1970-01-05T00:00:00Z, the first Monday after the Unix epoch
TRAFFIC_FLOOR = 0.01  # a quiet hour still weighs 1% of an average hour
RELATIVE_ZERO = 1e-9  # a weight below this fraction of the largest counts as zero


class HourWeights:
    """A table of 168 non-negative weights, scaled so that an average hour weighs 1."""

    def __init__(self, values: Sequence[float]) -> None:
        self.values = check_weights(values)
        self.flat = bool(np.all(self.values == self.values[0]))
        # Weight-seconds from Monday 00:00 to the start of each hour, and the whole week's.
        self._before_hour = np.concatenate([[0.0], np.cumsum(self.values * HOUR)])

    @classmethod
    def flat_week(cls) -> HourWeights:
        """Every hour weighs the same: weighted availability equals plain availability."""
        return cls([1.0] * HOURS_PER_WEEK)

    def as_list(self) -> list[float]:
        return [float(v) for v in self.values]

    def _cumulative(self, times: FloatArray, base: float) -> FloatArray:
        """Weight-seconds from ``base`` (a Monday 00:00) to each time."""
        since = times - base
        weeks = np.floor(since / WEEK)
        within = since - weeks * WEEK
        hour = np.clip((within // HOUR).astype(np.int64), 0, HOURS_PER_WEEK - 1)  # float error at the edges
        into_hour = within - hour * HOUR
        week_total = float(self._before_hour[-1])
        total: FloatArray = weeks * week_total + self._before_hour[hour] + into_hour * self.values[hour]
        return total

    def integral(self, intervals: Intervals) -> float:
        """Σ over the intervals of ∫ weight(hour-of-week(t)) dt, in weight-seconds."""
        if not len(intervals):
            return 0.0
        if self.flat:
            return intervals.length() * float(self.values[0])
        # Count from the Monday before the first interval, so the numbers stay small and exact.
        first = float(intervals.starts[0])
        base = MONDAY_EPOCH + math.floor((first - MONDAY_EPOCH) / WEEK) * WEEK
        ends = self._cumulative(intervals.ends, base)
        starts = self._cumulative(intervals.starts, base)
        return float(np.sum(ends - starts))


def check_weights(values: Sequence[float]) -> FloatArray:
    """168 finite, non-negative weights, not all zero, scaled to average 1; else Invalid."""
    if len(values) != HOURS_PER_WEEK:
        raise Invalid(f"weights need {HOURS_PER_WEEK} numbers (one per hour of the week, Monday 00h first), "
                      f"got {len(values)}")
    try:
        array = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise Invalid("weights must be numbers") from None
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise Invalid("weights must be finite numbers, none negative")
    # Scale by the largest first, so a sum of huge weights cannot overflow.
    top = float(array.max())
    if top <= 0:
        raise Invalid("weights must not all be zero: at least one hour has to count")
    array = array / top
    # Weights are relative; one a billionth of the largest would only be lost to rounding
    # in the week's running sums, so it counts as zero, the same every time.
    array[array < RELATIVE_ZERO] = 0.0
    return array * (HOURS_PER_WEEK / float(array.sum()))


def weights_from_traffic(counts: Sequence[float], floor: float = TRAFFIC_FLOOR) -> list[float]:
    """Weights from request counts per hour of the week: each hour in proportion to its traffic.

    Counts are divided by their mean, so an average hour weighs 1; an hour below ``floor``
    (no traffic at all, say) weighs ``floor``, so an outage then still costs a little. With
    no traffic in the whole week the weights are flat.
    """
    if len(counts) != HOURS_PER_WEEK:
        raise Invalid(f"traffic counts need {HOURS_PER_WEEK} numbers, got {len(counts)}")
    array = np.array(counts, dtype=np.float64)
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise Invalid("traffic counts must be finite numbers, none negative")
    top = float(array.max())
    if top <= 0:
        return [1.0] * HOURS_PER_WEEK
    array = array / top
    array = np.maximum(array / float(array.mean()), floor)
    return [float(v) for v in check_weights(list(array))]
