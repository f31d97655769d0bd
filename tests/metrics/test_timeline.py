"""Interval arithmetic: union, difference, clipping and coverage on hand-made intervals."""

from __future__ import annotations

import numpy as np

from podium.metrics.timeline import Intervals, covered_before, difference, union


def pairs(intervals: Intervals) -> list[tuple[float, float]]:
    return [(float(s), float(e)) for s, e in zip(intervals.starts, intervals.ends, strict=True)]


def make(*spans: tuple[float, float]) -> Intervals:
    return union(np.array([s for s, _ in spans], dtype=float), np.array([e for _, e in spans], dtype=float))


def test_union_merges_overlapping_nested_and_back_to_back_intervals_in_any_order() -> None:
    merged = make((50, 60), (0, 10), (5, 20), (20, 30), (7, 8), (40, 45), (44, 46))
    assert pairs(merged) == [(0, 30), (40, 46), (50, 60)]


def test_union_drops_empty_and_inverted_intervals() -> None:
    assert pairs(make((5, 5), (9, 3), (1, 2))) == [(1, 2)]
    assert len(make()) == 0


def test_difference_cuts_holes_and_trims_edges() -> None:
    kept = make((0, 100), (200, 300))
    removed = make((10, 20), (90, 210), (300, 400))
    assert pairs(difference(kept, removed)) == [(0, 10), (20, 90), (210, 300)]


def test_difference_removing_everything_or_nothing() -> None:
    kept = make((0, 10))
    assert len(difference(kept, make((-5, 15)))) == 0
    assert pairs(difference(kept, make((10, 20)))) == [(0, 10)]  # touching is not overlapping
    assert pairs(difference(kept, Intervals.empty())) == [(0, 10)]


def test_clip_keeps_the_part_inside_and_cuts_straddlers() -> None:
    intervals = make((0, 10), (20, 30), (40, 50))
    assert pairs(intervals.clip(5, 45)) == [(5, 10), (20, 30), (40, 45)]
    assert pairs(intervals.clip(10, 20)) == []
    assert pairs(intervals.clip(60, 70)) == []
    assert pairs(intervals.clip(25, 25)) == []
    assert intervals.length() == 30


def test_covers_is_half_open() -> None:
    intervals = make((0, 10), (20, 30))
    points = np.array([-1, 0, 9.5, 10, 15, 20, 30], dtype=float)
    assert intervals.covers(points).tolist() == [False, True, True, False, False, True, False]
    assert Intervals.empty().covers(points).tolist() == [False] * 7


def test_covered_before_counts_covered_seconds_up_to_each_point() -> None:
    intervals = make((10, 20), (30, 40))
    points = np.array([0, 10, 15, 20, 25, 35, 50], dtype=float)
    assert covered_before(intervals, points).tolist() == [0, 0, 5, 10, 10, 15, 20]
