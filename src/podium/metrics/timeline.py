"""Interval arithmetic on sorted arrays of seconds: union, difference, clipping, lengths.

Times are float seconds since the Unix epoch. Every interval is half-open, ``[start, end)``,
so two intervals that touch (one ends when the next starts) merge into one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


def as_seconds(values: object) -> FloatArray:
    """A float64 array of the given numbers (a copy only when needed)."""
    return np.asarray(values, dtype=np.float64)


@dataclass(frozen=True)
class Intervals:
    """Disjoint half-open intervals ``[starts[i], ends[i])``: sorted, none empty, none touching."""

    starts: FloatArray
    ends: FloatArray

    @classmethod
    def empty(cls) -> Intervals:
        return cls(np.empty(0, dtype=np.float64), np.empty(0, dtype=np.float64))

    @classmethod
    def single(cls, start: float, end: float) -> Intervals:
        """``[start, end)``, or nothing when it is empty."""
        if end <= start:
            return cls.empty()
        return cls(np.array([start], dtype=np.float64), np.array([end], dtype=np.float64))

    def __len__(self) -> int:
        return int(self.starts.shape[0])

    def length(self) -> float:
        """The total length covered, in seconds."""
        return float(np.sum(self.ends - self.starts))

    def clip(self, start: float, end: float) -> Intervals:
        """The part of these intervals inside ``[start, end)``."""
        if end <= start or not len(self):
            return Intervals.empty()
        # Sorted and disjoint, so both starts and ends ascend: binary search finds the slice.
        lo = int(np.searchsorted(self.ends, start, side="right"))
        hi = int(np.searchsorted(self.starts, end, side="left"))
        if lo >= hi:
            return Intervals.empty()
        starts = self.starts[lo:hi].copy()
        ends = self.ends[lo:hi].copy()
        starts[0] = max(starts[0], start)
        ends[-1] = min(ends[-1], end)
        return Intervals(starts, ends)

    def covers(self, points: FloatArray) -> NDArray[np.bool_]:
        """For each point, whether some interval holds it (``start <= point < end``)."""
        index = np.searchsorted(self.starts, points, side="right") - 1
        inside = index >= 0
        safe = np.where(inside, index, 0)
        return inside & (points < self.ends[safe]) if len(self) else np.zeros(points.shape, dtype=np.bool_)


def union(starts: FloatArray, ends: FloatArray) -> Intervals:
    """The union of possibly overlapping, unsorted intervals; empty ones are dropped.

    One sort and one running maximum: an interval opens a new merged run when it starts
    after every earlier interval has ended, otherwise it extends the current run.
    """
    starts, ends = as_seconds(starts), as_seconds(ends)
    keep = ends > starts
    starts, ends = starts[keep], ends[keep]
    if not starts.shape[0]:
        return Intervals.empty()
    if np.any(starts[1:] < starts[:-1]):  # callers often hand them sorted already: skip the sort then
        order = np.argsort(starts)
        starts, ends = starts[order], ends[order]
    reach = np.maximum.accumulate(ends)
    opens = np.empty(starts.shape[0], dtype=np.bool_)
    opens[0] = True
    np.greater(starts[1:], reach[:-1], out=opens[1:])  # equal: back to back, so the same run
    first = np.flatnonzero(opens)
    last = np.append(first[1:] - 1, starts.shape[0] - 1)
    return Intervals(starts[first], reach[last])


def difference(kept: Intervals, removed: Intervals) -> Intervals:
    """The parts of ``kept`` that ``removed`` does not cover."""
    if not len(kept) or not len(removed):
        return kept
    # Cut the line at every boundary of both sets; on each piece both coverages are
    # constant, so testing the piece's left end (half-open intervals) decides it.
    edges = np.unique(np.concatenate([kept.starts, kept.ends, removed.starts, removed.ends]))
    left, right = edges[:-1], edges[1:]
    wanted = kept.covers(left) & ~removed.covers(left)
    return union(left[wanted], right[wanted])


def covered_before(intervals: Intervals, points: FloatArray) -> FloatArray:
    """For each point, how much of ``intervals`` lies before it (covered seconds up to the point)."""
    if not len(intervals):
        return np.zeros(points.shape, dtype=np.float64)
    cumulative = np.concatenate([[0.0], np.cumsum(intervals.ends - intervals.starts)])
    index = np.searchsorted(intervals.starts, points, side="right")  # intervals starting at or before
    before = cumulative[np.maximum(index - 1, 0)]
    last = np.maximum(index - 1, 0)
    partial = np.clip(points - intervals.starts[last], 0.0, intervals.ends[last] - intervals.starts[last])
    return np.where(index > 0, before + partial, 0.0)
