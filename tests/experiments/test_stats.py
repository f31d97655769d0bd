"""Experiment statistics, checked against statsmodels, SciPy and a hand-worked example."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate
from scipy import stats as scipy_stats
from statsmodels.stats.proportion import proportions_ztest
from statsmodels.stats.weightstats import (
    _tconfint_generic,
    _tstat_generic,
    _zconfint_generic,
    _zstat_generic,
    ttest_ind,
)

from podium.errors import Invalid
from podium.experiments.stats import (
    NumericVariantData,
    VariantData,
    beta_chance_to_beat,
    binomial_breakdown,
    binomial_results,
    compare_binomial,
    compare_numeric,
    numeric_breakdown,
    numeric_results,
    relative_lift,
    sample_ratio_mismatch,
)


def test_delta_method_interval_hand_worked() -> None:
    # Control 100/1000 (p_c = 0.10), treatment 120/1000 (p_t = 0.12): lift = 0.12 / 0.10 - 1 = 0.2.
    # Var(p_c) = 0.10 * 0.90 / 1000 = 9.0e-5     Var(p_t) = 0.12 * 0.88 / 1000 = 1.056e-4
    # Var(lift) ≈ Var(p_t) / p_c² + p_t² Var(p_c) / p_c⁴
    #           = 1.056e-4 / 0.01 + 0.0144 * 9.0e-5 / 1.0e-4 = 0.01056 + 0.01296 = 0.02352
    # SE = sqrt(0.02352) = 0.153362;  half-width = 1.959964 * 0.153362 = 0.300585
    # 95% CI = 0.2 ± 0.300585 = (-0.100585, 0.500585)
    comparison = compare_binomial(VariantData("control", 1000, 100), VariantData("treatment", 1000, 120))
    assert comparison.lift == pytest.approx(0.2)
    assert comparison.ci_low == pytest.approx(-0.100585, abs=1e-6)
    assert comparison.ci_high == pytest.approx(0.500585, abs=1e-6)


def test_relative_lift_interval_narrows_with_confidence() -> None:
    wide = relative_lift(0.1, 9e-5, 0.12, 1.056e-4, confidence=0.99)
    narrow = relative_lift(0.1, 9e-5, 0.12, 1.056e-4, confidence=0.90)
    assert wide is not None
    assert narrow is not None
    assert wide[1] < narrow[1] < 0.2 < narrow[2] < wide[2]


@pytest.mark.parametrize(
    ("control", "treatment"),
    [((1000, 100), (1000, 120)), ((5210, 312), (5187, 377)), ((200, 3), (190, 11)), ((10_000, 9_990), (9_000, 8_950))],
)
def test_p_value_and_interval_are_statsmodels_z_test_on_the_delta_method_lift(
    control: tuple[int, int], treatment: tuple[int, int]
) -> None:
    (nc, cc), (nt, ct) = control, treatment
    pc, pt = cc / nc, ct / nt
    se = math.sqrt(pt * (1 - pt) / nt / pc**2 + pt**2 * (pc * (1 - pc) / nc) / pc**4)
    _, expected_p = _zstat_generic(pt / pc - 1, 0.0, se, "two-sided")
    expected_low, expected_high = _zconfint_generic(pt / pc - 1, se, 0.05, "two-sided")
    comparison = compare_binomial(VariantData("c", nc, cc), VariantData("t", nt, ct))
    assert comparison.p_value == pytest.approx(expected_p, rel=1e-9)
    assert (comparison.ci_low, comparison.ci_high) == pytest.approx((expected_low, expected_high), rel=1e-9)


def test_a_borderline_result_no_longer_disagrees_with_itself() -> None:
    # 100 of 1,000 against 130 of 1,010: the pooled z-test on the difference said p = 0.043 while the
    # delta-method interval on the lift ran from -2.9% to +60.3%. One inference now gives both.
    comparison = compare_binomial(VariantData("c", 1000, 100), VariantData("t", 1010, 130))
    assert comparison.ci_low is not None
    assert comparison.ci_low < 0
    assert comparison.p_value is not None
    assert comparison.p_value > 0.05
    _, pooled_p = proportions_ztest([130, 100], [1010, 1000])
    assert pooled_p < 0.05  # what the old p-value said


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_numeric_p_value_is_statsmodels_t_test_on_the_delta_method_lift(seed: int) -> None:
    rng = np.random.default_rng(seed)
    control = rng.lognormal(3.0, 1.0, size=400)
    treatment = rng.lognormal(3.1, 1.3, size=350)
    mc, mt = control.mean(), treatment.mean()
    vc, vt = control.var(ddof=1) / len(control), treatment.var(ddof=1) / len(treatment)
    se = math.sqrt(vt / mc**2 + mt**2 * vc / mc**4)
    df = (vc + vt) ** 2 / (vc**2 / (len(control) - 1) + vt**2 / (len(treatment) - 1))
    _, expected_p = _tstat_generic(mt / mc - 1, 0.0, se, df, "two-sided")
    comparison = compare_numeric(aggregate("c", control), aggregate("t", treatment))
    assert comparison.p_value == pytest.approx(expected_p, rel=1e-9)
    assert (comparison.ci_low, comparison.ci_high) == pytest.approx(
        _tconfint_generic(mt / mc - 1, se, df, 0.05, "two-sided"), rel=1e-9
    )
    # The Welch test of the difference (statsmodels) agrees on the direction and, at this size, roughly on p.
    _, welch_p, _ = ttest_ind(treatment, control, usevar="unequal")
    assert (comparison.p_value < 0.05) == (welch_p < 0.05) or abs(comparison.p_value - welch_p) < 0.02
    assert comparison.lift == pytest.approx(treatment.mean() / control.mean() - 1)
    assert comparison.lift is not None
    assert comparison.ci_low is not None
    assert comparison.ci_high is not None
    assert comparison.ci_low < comparison.lift < comparison.ci_high
    assert comparison.chance_to_beat_control is not None
    assert (comparison.chance_to_beat_control > 0.5) == (treatment.mean() > control.mean())


def aggregate(name: str, values: np.ndarray) -> NumericVariantData:
    return NumericVariantData(name, len(values), float(values.mean()), float(values.var(ddof=1)))


@pytest.mark.parametrize(
    ("control", "treatment"), [((1000, 100), (1000, 120)), ((50, 0), (60, 2)), ((300, 30), (300, 30))]
)
def test_chance_to_beat_control_matches_numerical_integration(
    control: tuple[int, int], treatment: tuple[int, int]
) -> None:
    (nc, cc), (nt, ct) = control, treatment
    posterior_c = scipy_stats.beta(1 + cc, 1 + nc - cc)
    posterior_t = scipy_stats.beta(1 + ct, 1 + nt - ct)
    # P(p_t > p_c) = ∫ f_t(x) F_c(x) dx
    expected, _ = integrate.quad(lambda x: posterior_t.pdf(x) * posterior_c.cdf(x), 0, 1, limit=200)
    chance = compare_binomial(VariantData("c", nc, cc), VariantData("t", nt, ct)).chance_to_beat_control
    assert chance == pytest.approx(expected, abs=1e-6)


def test_chance_to_beat_control_matches_a_seeded_monte_carlo() -> None:
    rng = np.random.default_rng(7)
    draws = 1_000_000
    control = rng.beta(1 + 480, 1 + 10_000 - 480, size=draws)
    treatment = rng.beta(1 + 530, 1 + 10_050 - 530, size=draws)
    expected = float((treatment > control).mean())
    chance = beta_chance_to_beat(1 + 530, 1 + 10_050 - 530, 1 + 480, 1 + 10_000 - 480)
    assert chance == pytest.approx(expected, abs=0.003)  # 3 standard errors of 1e6 draws at most


def test_chance_to_beat_control_is_symmetric() -> None:
    forward = beta_chance_to_beat(31, 970, 21, 980)
    backward = beta_chance_to_beat(21, 980, 31, 970)
    assert forward + backward == pytest.approx(1.0)
    assert beta_chance_to_beat(11, 91, 11, 91) == pytest.approx(0.5)


def test_srm_flags_5000_against_5400_on_a_50_50_split() -> None:
    # Expected 5200 each: χ² = 2 · 200² / 5200 = 15.38 with 1 degree of freedom, p = 8.8e-5.
    srm = sample_ratio_mismatch([5000, 5400], [0.5, 0.5])
    assert srm.p_value == pytest.approx(8.77e-5, rel=1e-3)
    assert srm.mismatch


def test_srm_does_not_flag_5000_against_5050() -> None:
    # Expected 5025 each: χ² = 2 · 25² / 5025 = 0.249, p = 0.618.
    srm = sample_ratio_mismatch([5000, 5050], [0.5, 0.5])
    assert srm.p_value == pytest.approx(0.618, abs=1e-3)
    assert not srm.mismatch


def test_srm_matches_scipy_chisquare_with_uneven_weights() -> None:
    users = [2100, 2950, 4950]
    expected = scipy_stats.chisquare(users, [2000, 3000, 5000]).pvalue
    assert sample_ratio_mismatch(users, [0.2, 0.3, 0.5]).p_value == pytest.approx(expected)


def test_srm_edge_cases() -> None:
    assert sample_ratio_mismatch([0, 0]).p_value is None
    assert sample_ratio_mismatch([10, 0], [1.0, 0.0]).p_value is None  # only one variant should get users
    assert sample_ratio_mismatch([10, 1], [1.0, 0.0]).mismatch  # users where none belong
    with pytest.raises(Invalid):
        sample_ratio_mismatch([10, 10], [0.5])


def test_results_carry_the_srm_warning() -> None:
    results = binomial_results([VariantData("control", 5000, 400), VariantData("treatment", 5400, 450)], [0.5, 0.5])
    assert results.srm.mismatch
    assert any("sample ratio mismatch" in w for w in results.warnings)
    row = results.to_dict()
    assert row["srm_p_value"] == pytest.approx(8.77e-5, rel=1e-3)


def test_minimum_sample_warnings() -> None:
    results = binomial_results([VariantData("control", 99, 20), VariantData("treatment", 100, 9)])
    assert results.warnings == (
        "variant 'control' has 99 users, fewer than 100",
        "variant 'treatment' has 9 conversions, fewer than 10",
    )
    numeric = numeric_results([NumericVariantData("control", 50, 3.0, 1.0), NumericVariantData("t", 60, 3.1, 1.0)])
    assert numeric.warnings == (
        "variant 'control' has 50 users, fewer than 100",
        "variant 't' has 60 users, fewer than 100",
    )
    enough = binomial_results([VariantData("control", 100, 10), VariantData("treatment", 100, 10)])
    assert enough.warnings == ()


def test_results_rows_match_the_cli_json() -> None:
    results = binomial_results([VariantData("control", 1000, 100), VariantData("treatment", 1000, 120)])
    control, treatment = (row.to_dict(results.kind) for row in results.variants)
    assert results.to_dict()["variants"] == [control, treatment]
    assert set(treatment) == {
        "name",
        "users",
        "conversions",
        "rate",
        "lift",
        "ci_low",
        "ci_high",
        "p_value",
        "chance_to_beat_control",
    }
    assert control["rate"] == 0.1
    assert control["lift"] is None
    assert treatment["lift"] == pytest.approx(0.2)


def test_zero_users_give_none_not_exceptions() -> None:
    results = binomial_results([VariantData("control", 0, 0), VariantData("treatment", 0, 0)])
    for row in results.variants:
        assert row.mean is None
        assert row.comparison.lift is None
        assert row.comparison.p_value is None
        assert row.comparison.chance_to_beat_control is None
    assert results.srm.p_value is None
    assert not results.srm.mismatch

    numeric = numeric_results([NumericVariantData("control", 0, 0.0, 0.0), NumericVariantData("t", 0, 0.0, 0.0)])
    assert numeric.variants[1].comparison.lift is None
    assert numeric.variants[1].mean is None


def test_zero_conversions() -> None:
    none_anywhere = compare_binomial(VariantData("c", 500, 0), VariantData("t", 500, 0))
    assert none_anywhere.lift is None  # a control rate of 0 has no relative lift
    assert none_anywhere.p_value is None  # a pooled rate of 0 has no variance
    assert none_anywhere.chance_to_beat_control == pytest.approx(0.5)

    none_in_control = compare_binomial(VariantData("c", 500, 0), VariantData("t", 500, 12))
    assert none_in_control.lift is None
    assert none_in_control.p_value is None  # no relative lift, so no interval and no p-value of it
    assert none_in_control.chance_to_beat_control is not None
    assert none_in_control.chance_to_beat_control > 0.99

    none_in_treatment = compare_binomial(VariantData("c", 500, 12), VariantData("t", 500, 0))
    assert none_in_treatment.lift == pytest.approx(-1.0)


def test_numeric_edge_cases() -> None:
    one_each = compare_numeric(NumericVariantData("c", 1, 2.0, 0.0), NumericVariantData("t", 1, 3.0, 0.0))
    assert one_each.p_value is None
    assert one_each.chance_to_beat_control is None
    assert one_each.lift == pytest.approx(0.5)
    zero_mean = compare_numeric(NumericVariantData("c", 10, 0.0, 1.0), NumericVariantData("t", 10, 1.0, 1.0))
    assert zero_mean.lift is None
    assert zero_mean.p_value is None


@pytest.mark.parametrize(
    "make",
    [
        lambda: VariantData("c", 10, 11),
        lambda: VariantData("c", -1, 0),
        lambda: NumericVariantData("c", 10, 1.0, -0.5),
        lambda: NumericVariantData("c", 10, math.nan, 1.0),
        lambda: binomial_results([VariantData("only", 10, 1)]),
        lambda: binomial_results([VariantData("a", 10, 1), VariantData("a", 10, 1)]),
    ],
)
def test_bad_input_is_invalid(make: object) -> None:
    assert callable(make)
    with pytest.raises(Invalid):
        make()


def test_binomial_breakdown_is_segment_against_everyone_else() -> None:
    everyone = [VariantData("control", 10_000, 1_000), VariantData("treatment", 10_000, 1_150)]
    segment = [VariantData("control", 2_000, 150), VariantData("treatment", 2_100, 260)]
    breakdown = binomial_breakdown(segment, everyone)
    assert [v.users for v in breakdown.rest.variants] == [8_000, 7_900]
    assert [v.conversions for v in breakdown.rest.variants] == [850, 890]
    rest_expected = compare_binomial(VariantData("control", 8_000, 850), VariantData("treatment", 7_900, 890))
    assert breakdown.rest.variants[1].comparison == rest_expected
    assert breakdown.segment == binomial_results(segment)
    with pytest.raises(Invalid):
        binomial_breakdown([VariantData("control", 20_000, 1), segment[1]], everyone)
    with pytest.raises(Invalid):
        binomial_breakdown(list(reversed(segment)), everyone)


def test_numeric_breakdown_recovers_the_rest_from_aggregates() -> None:
    rng = np.random.default_rng(11)
    segment_values = [rng.normal(100.0, 15.0, size=300), rng.normal(104.0, 15.0, size=280)]
    rest_values = [rng.normal(90.0, 10.0, size=900), rng.normal(91.0, 12.0, size=950)]
    names = ["control", "treatment"]
    segment = [aggregate(n, v) for n, v in zip(names, segment_values, strict=True)]
    everyone = [
        aggregate(n, np.concatenate([s, r])) for n, s, r in zip(names, segment_values, rest_values, strict=True)
    ]
    breakdown = numeric_breakdown(segment, everyone)
    for got, values in zip(breakdown.rest.variants, rest_values, strict=True):
        assert got.users == len(values)
        assert got.mean == pytest.approx(values.mean())
    direct = compare_numeric(aggregate("c", rest_values[0]), aggregate("t", rest_values[1]))
    assert breakdown.rest.variants[1].comparison.p_value == pytest.approx(direct.p_value, rel=1e-6)
