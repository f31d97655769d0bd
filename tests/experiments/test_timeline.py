"""Results over time: each day's point against results computed here from the events up to that day."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from tests.experiments import test_events
from tests.experiments.test_results import App, experiment

from podium.catalog.auth import Actor
from podium.experiments.results import Covariate, Group, MetricSums, Reading, read_metric
from podium.store.db import Store

store, teams = test_events.store, test_events.teams  # fixtures: both stores, the teams

DAY0 = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=4)
Event = tuple[str, str, datetime, str, float]  # (kind, user, at, variant or metric name, value)


def generate(app: App, seed: int) -> list[Event]:
    """About 600 users over four days: exposures, metric events before and after them, some never exposed."""
    rng = np.random.default_rng(seed)
    sent: list[Event] = []
    for i in range(600):
        user = f"u{i}"
        first = DAY0 + timedelta(hours=float(rng.uniform(0, 80)))
        if i % 10 != 0:  # one in ten is never exposed
            variant = "treatment" if rng.random() < 0.5 else "control"
            for extra in range(1 + int(rng.random() < 0.3)):
                moment = first + timedelta(hours=6 * extra)
                app.batch.append({"id": f"x{i}-{extra}", "type": "exposure", "user_id": user,
                                  "experiment": "big-button", "variant": variant, "at": moment.isoformat()})
                sent.append(("exposure", user, moment, variant, 0.0))
        for j in range(int(rng.integers(0, 4))):
            moment = first + timedelta(hours=float(rng.uniform(-20, 30)))
            value = float(rng.choice([-1.0, 1.0, 2.5, 4.0])) if j else 1.0
            if moment < datetime.now(UTC):
                app.batch.append({"id": f"m{i}-{j}", "type": "metric", "user_id": user, "name": "signup",
                                  "value": value, "at": moment.isoformat()})
                sent.append(("metric", user, moment, "signup", value))
    app.flush()
    return sent


def reference(events: list[Event], until: datetime, numeric: bool) -> dict[str, Group]:
    """Each variant's sums over the events before ``until``, counted as results count them."""
    firsts: dict[str, tuple[datetime, str]] = {}
    for _, user, at, variant, _ in sorted(e for e in events if e[0] == "exposure"):
        if at < until and (user not in firsts or at < firsts[user][0]):
            firsts[user] = (at, variant)
    sums = {v: [0, 0, 0.0, 0.0, 0.0, 0.0, 0.0] for v in ("control", "treatment")}
    for user, (first, variant) in firsts.items():
        mine = [(at, value) for kind, u, at, _, value in events if kind == "metric" and u == user and at < until]
        after = [value for at, value in mine if at >= first]
        before = [value for at, value in mine if at < first]
        y = sum(after) if numeric else float(bool(after))
        x = sum(before) if numeric else float(bool(before))
        row = sums[variant]
        row[0] += 1
        row[1] += int(y > 0)
        row[2] += y
        row[3] += y * y
        row[4] += x
        row[5] += x * x
        row[6] += x * y
    return {v: Group(int(r[0]), {"signup": MetricSums(int(r[1]), r[2], r[3])}, Covariate(r[4], r[5], r[6]))
            for v, r in sums.items()}


def close(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.parametrize(("kind", "cuped", "sequential"), [
    ("binomial", False, False), ("binomial", True, True), ("numeric", False, True), ("numeric", True, False),
])
def test_each_day_is_the_results_of_the_events_up_to_its_end(
    store: Store, teams: dict[str, Actor], kind: str, cuped: bool, sequential: bool
) -> None:
    results = experiment(store, teams["admin"], metric_kind=kind, cuped=cuped, sequential=sequential)
    events = generate(App(store, teams["shop-team"]), seed=7)
    series = results.over_time("shop", "production", "big-button")
    assert (series["kind"], series["cuped"], series["sequential"]) == (kind, cuped, sequential)
    days = [point["day"] for point in series["days"]]
    first_day = min(e[2] for e in events if e[0] == "exposure").date()
    last_day = max(e[2] for e in events).date()
    assert days == [(first_day + timedelta(days=i)).isoformat() for i in range((last_day - first_day).days + 1)]
    assert len(days) >= 4  # one point per day of data

    for point in series["days"]:
        until = datetime.fromisoformat(point["day"]).replace(tzinfo=UTC) + timedelta(days=1)
        expected = read_metric(kind, reference(events, until, kind == "numeric"), ["control", "treatment"],
                               "signup", [0.5, 0.5], Reading(cuped, sequential)).to_dict()
        for got, want in zip(point["variants"], expected["variants"], strict=True):  # type: ignore[call-overload]
            assert got["users"] == want["users"], point["day"]
            for key in ("lift", "ci_low", "ci_high", "p_value", "chance_to_beat_control"):
                assert close(got[key], want[key]), (point["day"], key, got[key], want[key])

    now = results.results("shop", "production", "big-button")  # the last point is today's results
    for got, want in zip(series["days"][-1]["variants"], now["variants"], strict=True):
        assert got["users"] == want["users"]
        for key in ("lift", "ci_low", "ci_high", "p_value"):
            assert close(got[key], want[key]), (key, got[key], want[key])


def test_an_experiment_without_exposures_has_no_points(store: Store, teams: dict[str, Actor]) -> None:
    results = experiment(store, teams["admin"])
    assert results.over_time("shop", "production", "big-button")["days"] == []
