"""Results from stored events, checked against numbers computed here independently (statsmodels, SciPy)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from scipy import stats as scipy_stats
from statsmodels.stats.proportion import proportions_ztest
from statsmodels.stats.weightstats import _tstat_generic, _zstat_generic
from tests.experiments import test_events

from podium.catalog.auth import Actor
from podium.config import Settings
from podium.errors import Invalid, NotFound
from podium.experiments.events import EventService
from podium.experiments.results import ResultsService
from podium.experiments.service import ExperimentService
from podium.store.db import Store

store, teams = test_events.store, test_events.teams  # fixtures: both stores, the teams

BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)


def at(minutes: float) -> str:
    return (BASE + timedelta(minutes=minutes)).isoformat()


class App:
    """Sends events for service ``shop`` in production, as the owning team's app would."""

    def __init__(self, store: Store, actor: Actor) -> None:
        self.events = EventService(store)
        self.actor = actor
        self.batch: list[dict[str, Any]] = []

    def expose(self, user: str, variant: str, minute: float, experiment: str = "big-button", **attributes: Any) -> None:
        self.batch.append({"id": f"e{len(self.batch)}", "type": "exposure", "user_id": user, "experiment": experiment,
                           "variant": variant, "at": at(minute), "attributes": attributes or None})

    def track(self, user: str, name: str, minute: float, value: float = 1.0) -> None:
        self.batch.append({"id": f"e{len(self.batch)}", "type": "metric", "user_id": user, "name": name,
                           "value": value, "at": at(minute)})

    def flush(self) -> None:
        for start in range(0, len(self.batch), 10_000):
            result = self.events.record(self.actor, "shop", "production", self.batch[start:start + 10_000])
            assert result.rejected == []
        self.batch = []


def experiment(store: Store, admin: Actor, **options: Any) -> ResultsService:
    experiments = ExperimentService(Settings(), store)
    experiments.create(admin, "shop", "production", "big-button", **{"metric": "signup", **options})
    experiments.start(admin, "shop", "production", "big-button")
    return ResultsService(store)


def test_binomial_results_match_statsmodels_on_generated_events(
    store: Store, teams: dict[str, Actor]
) -> None:
    results = experiment(store, teams["admin"], guardrails=["error"])
    app = App(store, teams["shop-team"])
    rng = np.random.default_rng(5)
    users = {"control": 0, "treatment": 0}
    converted = {"control": 0, "treatment": 0}
    errors = {"control": 0, "treatment": 0}
    rates = {"control": 0.10, "treatment": 0.13}
    for i in range(4000):
        variant = "control" if rng.random() < 0.5 else "treatment"
        user = f"user-{i}"
        app.expose(user, variant, 10 + i % 50)
        if rng.random() < 0.3:
            app.expose(user, variant, 200)  # seen again: still one user
        users[variant] += 1
        if rng.random() < 0.2:
            app.track(user, "signup", 1)  # before the exposure: not a conversion
        if rng.random() < rates[variant]:
            converted[variant] += 1
            app.track(user, "signup", 60 + i % 50)
            if rng.random() < 0.5:
                app.track(user, "signup", 300)  # a second conversion counts once
        if rng.random() < (0.02 if variant == "control" else 0.03):
            errors[variant] += 1
            app.track(user, "error", 100)
    for i in range(500):  # users never exposed, and exposures to a variant the experiment does not have
        app.track(f"stranger-{i}", "signup", 70)
        app.expose(f"odd-{i}", "purple", 20)
        app.track(f"odd-{i}", "signup", 70)
    app.flush()

    document = results.results("shop", "production", "big-button")
    control, treatment = document["variants"]
    assert [control["users"], treatment["users"]] == [users["control"], users["treatment"]]
    assert [control["conversions"], treatment["conversions"]] == [converted["control"], converted["treatment"]]
    nc, nt, cc, ct = users["control"], users["treatment"], converted["control"], converted["treatment"]
    pc, pt = cc / nc, ct / nt
    assert treatment["rate"] == pytest.approx(pt)
    lift_se = math.sqrt(pt * (1 - pt) / nt / pc**2 + pt**2 * pc * (1 - pc) / nc / pc**4)
    _, p_value = _zstat_generic(pt / pc - 1, 0.0, lift_se, "two-sided")  # the same inference as the interval
    assert treatment["p_value"] == pytest.approx(p_value, rel=1e-9)
    assert (document["cuped"], document["sequential"]) == (False, False)
    assert treatment["lift"] == pytest.approx(pt / pc - 1)
    assert treatment["ci_low"] == pytest.approx(pt / pc - 1 - 1.959964 * lift_se, rel=1e-5)
    assert treatment["ci_high"] == pytest.approx(pt / pc - 1 + 1.959964 * lift_se, rel=1e-5)
    draws = np.random.default_rng(1)
    beats = (draws.beta(1 + ct, 1 + nt - ct, 400_000) > draws.beta(1 + cc, 1 + nc - cc, 400_000)).mean()
    assert treatment["chance_to_beat_control"] == pytest.approx(beats, abs=0.005)
    assert document["srm_p_value"] == pytest.approx(scipy_stats.chisquare([nc, nt]).pvalue)
    assert document["multiple_exposures"] == 0

    (guardrail,) = document["guardrails"]
    assert guardrail["metric"] == "error"
    assert [v["conversions"] for v in guardrail["variants"]] == [errors["control"], errors["treatment"]]
    _, p_worse = proportions_ztest([errors["treatment"], errors["control"]], [nt, nc], alternative="larger")
    assert guardrail["variants"][1]["p_worse"] == pytest.approx(p_worse, rel=1e-9)
    # More errors in the treatment: its chance to beat control reads in the guardrail's direction.
    assert errors["treatment"] > errors["control"]
    assert guardrail["higher_is_better"] is False
    assert guardrail["variants"][1]["chance_to_beat_control"] < 0.5


def test_numeric_results_are_the_mean_of_each_users_total(
    store: Store, teams: dict[str, Actor]
) -> None:
    results = experiment(store, teams["admin"], metric="revenue", metric_kind="numeric")
    app = App(store, teams["shop-team"])
    rng = np.random.default_rng(7)
    totals: dict[str, list[float]] = {"control": [], "treatment": []}
    for i in range(600):
        variant = ("control", "treatment")[i % 2]
        app.expose(f"u{i}", variant, 10)
        total = 0.0
        for _ in range(int(rng.integers(0, 4))):
            value = round(float(rng.exponential(20 if variant == "control" else 25)), 2)
            app.track(f"u{i}", "revenue", 30, value)
            total += value
        app.track(f"u{i}", "revenue", 5, 1000.0)  # before the exposure: left out
        totals[variant].append(total)
    app.flush()

    document = results.results("shop", "production", "big-button")
    assert document["kind"] == "numeric"
    control, treatment = document["variants"]
    assert "rate" not in control
    assert "conversions" not in control
    assert control["mean"] == pytest.approx(np.mean(totals["control"]))
    assert treatment["mean"] == pytest.approx(np.mean(totals["treatment"]))
    c, t = np.array(totals["control"]), np.array(totals["treatment"])
    vc, vt = c.var(ddof=1) / len(c), t.var(ddof=1) / len(t)
    se = math.sqrt(vt / c.mean() ** 2 + t.mean() ** 2 * vc / c.mean() ** 4)
    df = (vc + vt) ** 2 / (vc**2 / (len(c) - 1) + vt**2 / (len(t) - 1))
    _, expected = _tstat_generic(t.mean() / c.mean() - 1, 0.0, se, df, "two-sided")
    assert treatment["p_value"] == pytest.approx(expected, rel=1e-6)
    assert (treatment["p_value"] < 0.05) == (treatment["ci_low"] > 0 or treatment["ci_high"] < 0)


def test_cuped_uses_each_users_metric_before_exposure(store: Store, teams: dict[str, Actor]) -> None:
    results = experiment(store, teams["admin"], metric="revenue", metric_kind="numeric", cuped=True)
    app = App(store, teams["shop-team"])
    rng = np.random.default_rng(3)
    before: dict[str, list[float]] = {"control": [], "treatment": []}
    after: dict[str, list[float]] = {"control": [], "treatment": []}
    for i in range(800):
        variant = ("control", "treatment")[i % 2]
        habit = float(rng.gamma(2.0, 20.0))  # what the user spends anyway
        app.track(f"u{i}", "revenue", 1, round(habit, 2))  # before exposure: the covariate
        app.expose(f"u{i}", variant, 10)
        spend = round(max(0.0, habit * (1.05 if variant == "treatment" else 1.0) + float(rng.normal(0, 5))), 2)
        app.track(f"u{i}", "revenue", 30, spend)
        before[variant].append(round(habit, 2))
        after[variant].append(spend)
    app.flush()

    adjusted = results.results("shop", "production", "big-button")
    plain = results.results("shop", "production", "big-button", cuped=False)
    assert (adjusted["cuped"], plain["cuped"]) == (True, False)
    assert adjusted["variants"][1]["mean"] == pytest.approx(np.mean(after["treatment"]))  # raw means shown
    a, p = adjusted["variants"][1], plain["variants"][1]
    assert a["ci_high"] - a["ci_low"] < 0.5 * (p["ci_high"] - p["ci_low"])
    x = np.array(before["control"] + before["treatment"])
    y = np.array(after["control"] + after["treatment"])
    theta = np.cov(x, y)[0, 1] / x.var(ddof=1)
    means = {v: np.mean(after[v]) - theta * (np.mean(before[v]) - x.mean()) for v in after}
    assert a["lift"] == pytest.approx(means["treatment"] / means["control"] - 1, rel=1e-6)
    sequential = results.results("shop", "production", "big-button", sequential=True)
    assert (sequential["cuped"], sequential["sequential"]) == (True, True)
    s = sequential["variants"][1]
    assert s["ci_high"] - s["ci_low"] > a["ci_high"] - a["ci_low"]  # a confidence sequence is wider


def test_a_user_counts_in_the_variant_of_their_first_exposure(
    store: Store, teams: dict[str, Actor]
) -> None:
    results = experiment(store, teams["admin"])
    app = App(store, teams["shop-team"])
    app.expose("flip", "treatment", 20)
    app.expose("flip", "control", 10)  # earlier, though sent later
    app.track("flip", "signup", 15)  # after the first exposure, before the second
    app.expose("tie", "treatment", 30)
    app.expose("tie", "control", 30)  # the same time: the one stored first wins
    app.expose("steady", "control", 10)
    app.expose("other-experiment", "control", 10, experiment="small-button")
    app.flush()

    document = results.results("shop", "production", "big-button")
    assert [(v["users"], v["conversions"]) for v in document["variants"]] == [(2, 1), (1, 0)]
    assert document["multiple_exposures"] == 2
    assert any("2 of 3 users were exposed to more than one variant" in w for w in document["warnings"])


def test_a_segment_against_everyone_else(store: Store, teams: dict[str, Actor]) -> None:
    results = experiment(store, teams["admin"])
    app = App(store, teams["shop-team"])
    for i in range(40):
        profession = "marketing" if i < 10 else "engineering"
        app.expose(f"u{i}", ("control", "treatment")[i % 2], 10, profession=profession, age=30 + i)
        if i % 4 == 1:
            app.track(f"u{i}", "signup", 20)
    app.expose("anonymous", "control", 10)
    app.flush()

    document = results.results("shop", "production", "big-button", segment="profession=marketing")
    segment = document["segment"]
    assert (segment["attribute"], segment["value"]) == ("profession", "marketing")
    assert [(v["users"], v["conversions"]) for v in segment["segment"]["variants"]] == [(5, 0), (5, 3)]
    assert [(v["users"], v["conversions"]) for v in segment["rest"]["variants"]] == [(16, 0), (15, 7)]
    assert [v["users"] for v in document["variants"]] == [21, 20]


def test_no_events_and_bad_requests(store: Store, teams: dict[str, Actor]) -> None:
    results = experiment(store, teams["admin"])
    empty = results.results("shop", "production", "big-button")
    assert [(v["users"], v["conversions"], v["rate"]) for v in empty["variants"]] == [(0, 0, None), (0, 0, None)]
    assert empty["srm_p_value"] is None
    assert empty["guardrails"] == []
    assert empty["segment"] is None
    with pytest.raises(Invalid, match="segment must look like attribute=value"):
        results.results("shop", "production", "big-button", segment="profession")
    with pytest.raises(NotFound, match="experiment 'nope' not found"):
        results.results("shop", "production", "nope")
