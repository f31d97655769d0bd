"""One inference per comparison: p-value and interval agree; sequential looks and CUPED checked by simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from podium.experiments import inference
from podium.experiments.inference import Estimate, Moments
from podium.experiments.stats import (
    NumericVariantData,
    VariantData,
    binomial_results,
    compare_binomial,
    compare_numeric,
    cuped_results,
)

counts = st.integers(min_value=1, max_value=200_000)


@st.composite
def binomial_pair(draw: st.DrawFn) -> tuple[VariantData, VariantData]:
    nc, nt = draw(counts), draw(counts)
    return VariantData("c", nc, draw(st.integers(0, nc))), VariantData("t", nt, draw(st.integers(0, nt)))


def excludes_zero(low: float, high: float) -> bool:
    return low > 0 or high < 0


@settings(max_examples=400, deadline=None)
@given(binomial_pair(), st.sampled_from([0.90, 0.95, 0.99]), st.booleans())
def test_p_below_alpha_exactly_when_the_interval_excludes_zero(
    pair: tuple[VariantData, VariantData], confidence: float, sequential: bool
) -> None:
    comparison = compare_binomial(*pair, confidence, sequential=sequential)
    if comparison.p_value is None or comparison.ci_low is None or comparison.ci_high is None:
        return
    alpha = 1 - confidence
    if abs(comparison.p_value - alpha) < 1e-9:
        return  # on the boundary itself, rounding decides
    assert (comparison.p_value < alpha) == excludes_zero(comparison.ci_low, comparison.ci_high)


@settings(max_examples=200, deadline=None)
@given(
    st.integers(2, 5_000), st.integers(2, 5_000), st.floats(0.1, 100.0), st.floats(0.1, 100.0),
    st.floats(0.01, 50.0), st.floats(0.01, 50.0), st.booleans(),
)  # fmt: skip
def test_numeric_p_and_interval_agree(
    nc: int, nt: int, mc: float, mt: float, sc: float, st_: float, sequential: bool
) -> None:
    comparison = compare_numeric(
        NumericVariantData("c", nc, mc, sc**2), NumericVariantData("t", nt, mt, st_**2), sequential=sequential
    )
    assert comparison.p_value is not None
    assert comparison.ci_low is not None
    assert comparison.ci_high is not None
    if abs(comparison.p_value - 0.05) > 1e-9:
        assert (comparison.p_value < 0.05) == excludes_zero(comparison.ci_low, comparison.ci_high)


def test_the_interval_covers_the_true_lift_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(3)
    runs, n, pc, pt = 4_000, 2_000, 0.10, 0.12
    cc, ct = rng.binomial(n, pc, runs), rng.binomial(n, pt, runs)
    covered = 0
    for c, t in zip(cc, ct, strict=True):
        comparison = compare_binomial(VariantData("c", n, int(c)), VariantData("t", n, int(t)))
        assert comparison.ci_low is not None
        assert comparison.ci_high is not None
        covered += comparison.ci_low <= pt / pc - 1 <= comparison.ci_high
    assert 0.93 < covered / runs < 0.97


def test_a_worse_guardrail_does_not_read_as_likely_to_beat_control() -> None:
    control, treatment = VariantData("control", 5_000, 100), VariantData("t", 5_000, 130)  # more errors
    as_goal = compare_binomial(control, treatment)
    as_guardrail = compare_binomial(control, treatment, higher_is_better=False)
    assert as_goal.chance_to_beat_control is not None
    assert as_goal.chance_to_beat_control > 0.9
    assert as_guardrail.chance_to_beat_control == pytest.approx(1 - as_goal.chance_to_beat_control)
    assert as_guardrail.lift == as_goal.lift
    assert as_guardrail.p_value == as_goal.p_value
    rows = binomial_results([control, treatment], higher_is_better=False).to_dict()["variants"]
    assert isinstance(rows, list)
    assert rows[1]["chance_to_beat_control"] < 0.1


def _relative_arrays(cc: np.ndarray, ct: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lift and its delta-method variance for arrays of cumulative conversions at ``n`` users per arm."""
    pc, pt = cc / n, ct / n
    lift = pt / pc - 1
    variance = pt * (1 - pt) / n / pc**2 + pt**2 * (pc * (1 - pc) / n) / pc**4
    return lift, variance


def test_daily_peeking_under_a_a_keeps_false_positives_at_most_5_percent_when_sequential() -> None:
    """1,000 A/A experiments looked at every day for 28 days: stopping at the first p < 0.05."""
    rng = np.random.default_rng(2026)
    experiments, days, per_day, rate = 1_000, 28, 500, 0.10
    n = per_day * np.arange(1, days + 1, dtype=np.float64)  # users per arm after each day
    cc = rng.binomial(per_day, rate, (experiments, days)).cumsum(axis=1).astype(np.float64)
    ct = rng.binomial(per_day, rate, (experiments, days)).cumsum(axis=1).astype(np.float64)
    lift, variance = _relative_arrays(cc, ct, n)

    sequential = inference.sequential_p_value(lift, variance, 2 * n)
    sequential_fpr = float((sequential < 0.05).any(axis=1).mean())
    fixed = 2 * scipy_stats.norm.sf(np.abs(lift) / np.sqrt(variance))
    peeking_fpr = float((fixed < 0.05).any(axis=1).mean())
    once_fpr = float((fixed[:, -1] < 0.05).mean())

    assert sequential_fpr <= 0.05
    assert peeking_fpr > 0.10  # what daily looks do to a fixed-horizon test
    assert 0.03 < once_fpr < 0.07  # a single look at the end is a fair 5% test
    # And the same p-value the results give, for one of them.
    one = compare_binomial(
        VariantData("c", int(n[-1]), int(cc[0, -1])), VariantData("t", int(n[-1]), int(ct[0, -1])), sequential=True
    )
    assert one.p_value == pytest.approx(float(sequential[0, -1]), rel=1e-9)


def test_sequential_catches_a_real_effect_and_is_wider_than_fixed_horizon() -> None:
    control, treatment = VariantData("c", 20_000, 2_000), VariantData("t", 20_000, 2_300)
    fixed = compare_binomial(control, treatment)
    sequential = compare_binomial(control, treatment, sequential=True)
    assert sequential.p_value is not None
    assert fixed.p_value is not None
    assert fixed.p_value < sequential.p_value < 0.05
    assert sequential.ci_low is not None
    assert fixed.ci_low is not None
    assert 0 < sequential.ci_low < fixed.ci_low


def _moments(y: np.ndarray, x: np.ndarray) -> Moments:
    return Moments(len(y), float(y.sum()), float((y * y).sum()), float(x.sum()), float((x * x).sum()),
                   float((x * y).sum()))  # fmt: skip


def test_cuped_shrinks_the_interval_with_a_correlated_covariate() -> None:
    rng = np.random.default_rng(5)
    n = 20_000
    x = [rng.gamma(2.0, 10.0, n), rng.gamma(2.0, 10.0, n)]  # last month's spend
    y = [0.8 * x[0] + rng.normal(0, 8, n), 0.8 * x[1] * 1.02 + rng.normal(0, 8, n)]  # this month's
    plain = compare_numeric(
        NumericVariantData("c", n, float(y[0].mean()), float(y[0].var(ddof=1))),
        NumericVariantData("t", n, float(y[1].mean()), float(y[1].var(ddof=1))),
    )
    results = cuped_results("numeric", [("c", _moments(y[0], x[0])), ("t", _moments(y[1], x[1]))])
    adjusted = results.variants[1].comparison
    assert plain.ci_low is not None
    assert plain.ci_high is not None
    assert adjusted.ci_low is not None
    assert adjusted.ci_high is not None
    assert adjusted.lift is not None
    assert adjusted.ci_high - adjusted.ci_low < 0.6 * (plain.ci_high - plain.ci_low)
    assert adjusted.ci_low < 0.02 < adjusted.ci_high
    assert results.variants[1].mean == pytest.approx(y[1].mean())  # raw means shown, lift adjusted
    # θ is the regression slope of y on x over everyone.
    everyone_x, everyone_y = np.concatenate(x), np.concatenate(y)
    slope = np.cov(everyone_x, everyone_y)[0, 1] / everyone_x.var(ddof=1)
    assert inference.cuped_theta([_moments(y[0], x[0]), _moments(y[1], x[1])]) == pytest.approx(slope, rel=1e-9)


def test_cuped_under_a_a_keeps_its_5_percent() -> None:
    rng = np.random.default_rng(9)
    runs, n, rejected = 400, 2_000, 0
    for _ in range(runs):
        x = rng.poisson(3.0, (2, n)).astype(np.float64)
        y = (rng.random((2, n)) < 0.05 + 0.03 * np.minimum(x, 6)).astype(np.float64)  # converts more if active before
        results = cuped_results("binomial", [("c", _moments(y[0], x[0])), ("t", _moments(y[1], x[1]))])
        p_value = results.variants[1].comparison.p_value
        rejected += p_value is not None and p_value < 0.05
    assert rejected / runs < 0.08


def test_without_a_covariate_cuped_is_the_plain_estimate() -> None:
    m = [Moments(1_000, 100.0, 100.0), Moments(1_000, 120.0, 120.0)]  # x all 0
    adjusted = inference.cuped(m)
    assert adjusted[0] == Estimate(0.1, pytest.approx(0.1 * 0.9 / 999), 1_000)  # type: ignore[arg-type]
    assert math.isclose(adjusted[1].mean, 0.12)
