"""Properties of the availability core, checked against a minute-by-minute oracle.

With every time on a whole minute, a boolean per minute says exactly what is down and
what is maintenance, so the oracle is exact too (weights are constant within an hour,
and every minute lies within one hour).
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.metrics import HourWeights, Outage, Period, Timeline, Window, availability_report, measure

ORIGIN = datetime(2024, 1, 6, 20, tzinfo=UTC)  # a Saturday evening: timelines cross Sunday midnight
SPAN = 3 * 24 * 60  # minutes the timelines live in


def at(minute: int) -> datetime:
    return ORIGIN + timedelta(minutes=minute)


minutes = st.integers(min_value=0, max_value=SPAN)
outage = st.tuples(minutes, st.integers(min_value=0, max_value=600), st.booleans())
window = st.tuples(minutes, st.integers(min_value=0, max_value=600))


@st.composite
def timelines(draw: st.DrawFn) -> tuple[list[Outage], list[Window], Period, datetime]:
    outages = [Outage(at(s), None if still_open else at(s + d)) for s, d, still_open in draw(st.lists(outage))]
    windows = [Window(at(s), at(s + d)) for s, d in draw(st.lists(window, max_size=4))]
    a, b = sorted((draw(minutes), draw(minutes)))
    now = draw(minutes)
    return outages, windows, Period(at(a), at(b)), at(now)


def oracle(
    outages: list[Outage], windows: list[Window], period: Period, now: datetime, hourly: list[float]
) -> dict[str, float | None]:
    """The numbers, minute by minute over the period cut at now."""
    def index(moment: datetime) -> int:
        return int((moment - ORIGIN).total_seconds() // 60)

    n = 2 * SPAN + 1300
    down = np.zeros(n, dtype=bool)
    maintenance = np.zeros(n, dtype=bool)
    for o in outages:
        if o.start <= now:
            end = now if o.end is None or o.end > now else o.end
            down[index(o.start):index(end)] = True
    for w in windows:
        maintenance[index(w.start):index(w.end)] = True
    lo, hi = index(period.start), max(index(period.start), min(index(period.end), index(now)))
    seen = ~maintenance[lo:hi]
    lost = down[lo:hi] & seen
    first_hour = ORIGIN.weekday() * 24 + ORIGIN.hour  # hour of the week of minute 0
    hour = (first_hour + np.arange(lo, hi) // 60) % 168
    weight = np.array(hourly)[hour]
    # Runs of downtime on a clock that stops during maintenance, and the uptime between them.
    clock = down[lo:hi][seen]
    edges = np.flatnonzero(np.diff(clock.astype(int)))
    runs = np.split(clock, edges + 1) if clock.size else []
    gaps = [len(r) * 60 for i, r in enumerate(runs) if not r[0] and 0 < i < len(runs) - 1]
    observed, downtime = seen.sum() * 60, lost.sum() * 60
    w_seen, w_lost = float((weight * seen).sum()), float((weight * lost).sum())
    return {
        "observed": float(observed),
        "downtime": float(downtime),
        "availability": 1 - downtime / observed if observed else None,
        "weighted": 1 - w_lost / w_seen if w_seen else None,
        "mtbf": sum(gaps) / len(gaps) if gaps else None,
    }


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


# Zero, or within four orders of magnitude of the largest: weights are relative, and a
# weight a billionth of the largest counts as zero (``check_weights``).
weight = st.one_of(st.just(0.0), st.floats(min_value=1e-3, max_value=10))
hour_weights = st.lists(weight, min_size=168, max_size=168).filter(lambda w: max(w) > 0)


@settings(max_examples=200, deadline=None)
@given(timelines(), hour_weights)
def test_the_core_agrees_with_the_minute_by_minute_oracle(
    timeline: tuple[list[Outage], list[Window], Period, datetime], hourly: list[float]
) -> None:
    outages, windows, period, now = timeline
    report = availability_report(outages, windows, period, now, HourWeights(hourly))
    expected = oracle(outages, windows, period, now, hourly)
    assert close(report.observed_seconds, expected["observed"])
    assert close(report.downtime_seconds, expected["downtime"])
    assert close(report.availability, expected["availability"])
    assert close(report.weighted_availability, expected["weighted"])
    assert close(report.mtbf_seconds, expected["mtbf"])


@settings(max_examples=200, deadline=None)
@given(timelines(), st.floats(min_value=1e-3, max_value=1e3))
def test_availability_is_a_fraction_and_flat_weights_change_nothing(
    timeline: tuple[list[Outage], list[Window], Period, datetime], flat: float
) -> None:
    outages, windows, period, now = timeline
    report = availability_report(outages, windows, period, now, HourWeights([flat] * 168))
    if report.availability is None:
        assert report.weighted_availability is None
        return
    assert 0 <= report.availability <= 1
    assert report.weighted_availability is not None
    assert math.isclose(report.weighted_availability, report.availability, rel_tol=1e-12)
    assert 0 <= report.downtime_seconds <= report.observed_seconds


@settings(max_examples=100, deadline=None)
@given(timelines(), st.randoms(use_true_random=False))
def test_the_order_of_incidents_and_windows_does_not_matter(
    timeline: tuple[list[Outage], list[Window], Period, datetime], shuffler: random.Random
) -> None:
    outages, windows, period, now = timeline
    before = availability_report(outages, windows, period, now)
    shuffler.shuffle(outages)
    shuffler.shuffle(windows)
    assert availability_report(outages, windows, period, now) == before


@settings(max_examples=100, deadline=None)
@given(timelines(), timelines())
def test_a_team_report_adds_up_its_services(
    first: tuple[list[Outage], list[Window], Period, datetime],
    second: tuple[list[Outage], list[Window], Period, datetime],
) -> None:
    period, now = first[2], first[3]
    one = Timeline.of(first[0], first[1], now)
    two = Timeline.of(second[0], second[1], now)
    both = measure([(one, None), (two, None)], period)
    apart = [measure([(t, None)], period) for t in (one, two)]
    assert both.incidents == sum(r.incidents for r in apart)
    assert math.isclose(both.downtime_seconds, sum(r.downtime_seconds for r in apart), abs_tol=1e-6)
    assert math.isclose(both.observed_seconds, sum(r.observed_seconds for r in apart), abs_tol=1e-6)
