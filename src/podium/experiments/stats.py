"""Experiment results from per-variant aggregates: lift with an interval, p-values, chance to beat control, SRM.

Everything here is a function of counts and moments, never of raw events, so a result costs
the same for a thousand users as for ten million. The first variant passed in is the control.

Formulas (see ``docs/experiments-statistics.md`` for the worked example):

- Relative lift of a treatment ``t`` over control ``c``: ``lift = m_t / m_c - 1`` where ``m``
  is the conversion rate (binomial metric) or the mean (numeric metric).
- Its confidence interval and its p-value, both from one estimate (``podium.experiments.inference``):
  the delta method for a ratio of two independent means,
  ``Var(m_t / m_c) ≈ Var(m_t) / m_c² + m_t² · Var(m_c) / m_c⁴`` with ``Var(m) = p(1 - p) / n``
  (binomial) or ``s² / n`` (numeric); the interval is ``lift ± q · sqrt(Var)`` and the p-value
  ``2 · P(|Z| > |lift| / sqrt(Var))`` (``q = 1.96`` at 95%; Student's t with Welch's degrees of
  freedom for a numeric metric), so ``p < 0.05`` exactly when the 95% interval excludes 0.
  ``sequential=True`` gives the always-valid p-value and confidence sequence instead;
  ``cuped_results`` the same on CUPED-adjusted means.
- Chance to beat control: ``P(p_t > p_c)`` for posteriors ``Beta(1 + conversions,
  1 + users - conversions)``, in closed form; for numeric metrics the normal approximation
  ``Φ((m_t - m_c) / sqrt(s_t²/n_t + s_c²/n_c))``. For a metric where lower is better (a
  guardrail such as an error rate), the chance that the treatment's value is lower.
- Sample ratio mismatch: chi-square goodness of fit of users per variant against the
  configured weights, flagged below ``SRM_P_THRESHOLD``.

Numbers that cannot be computed (no users, a zero control rate, no variance) are None, never
an exception.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeVar

import numpy as np
from scipy import special
from scipy import stats as scipy_stats

from podium.errors import Invalid
from podium.experiments import inference

SRM_P_THRESHOLD = 0.001
"""A sample ratio mismatch is flagged when the chi-square p-value falls below this."""

MIN_USERS_PER_VARIANT = 100
"""Fewer users than this in any variant gets a minimum-sample warning."""

MIN_CONVERSIONS_PER_VARIANT = 10
"""Fewer conversions than this in any variant (binomial metrics) gets a minimum-sample warning."""

_CHUNK = 1 << 18  # terms per step of the closed-form chance to beat control

MetricKind = Literal["binomial", "numeric"]

_Data = TypeVar("_Data", "VariantData", "NumericVariantData")


@dataclass(frozen=True, slots=True)
class VariantData:
    """A binomial metric's aggregate for one variant: exposed users and how many converted."""

    name: str
    users: int
    conversions: int

    def __post_init__(self) -> None:
        if self.users < 0 or self.conversions < 0:
            raise Invalid(f"variant {self.name!r}: users and conversions cannot be negative")
        if self.conversions > self.users:
            raise Invalid(f"variant {self.name!r}: {self.conversions} conversions for {self.users} users")


@dataclass(frozen=True, slots=True)
class NumericVariantData:
    """A numeric metric's aggregate for one variant: count, mean and sample variance (n - 1)."""

    name: str
    n: int
    mean: float
    variance: float

    def __post_init__(self) -> None:
        if self.n < 0:
            raise Invalid(f"variant {self.name!r}: n cannot be negative")
        if not math.isfinite(self.mean) or not math.isfinite(self.variance) or self.variance < 0:
            raise Invalid(f"variant {self.name!r}: mean and variance must be finite, variance ≥ 0")


@dataclass(frozen=True, slots=True)
class Comparison:
    """A treatment against control. Each number is None when it cannot be computed."""

    lift: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    chance_to_beat_control: float | None


NO_COMPARISON = Comparison(None, None, None, None, None)


@dataclass(frozen=True, slots=True)
class VariantResult:
    """One variant's numbers; ``mean`` is the conversion rate for a binomial metric."""

    name: str
    users: int
    conversions: int | None
    mean: float | None
    comparison: Comparison

    def to_dict(self, kind: MetricKind) -> dict[str, object]:
        """JSON-ready: ``rate`` for a binomial metric, ``mean`` for a numeric one."""
        row: dict[str, object] = {"name": self.name, "users": self.users}
        if kind == "binomial":
            row["conversions"] = self.conversions
            row["rate"] = self.mean
        else:
            row["mean"] = self.mean
        row.update(
            lift=self.comparison.lift,
            ci_low=self.comparison.ci_low,
            ci_high=self.comparison.ci_high,
            p_value=self.comparison.p_value,
            chance_to_beat_control=self.comparison.chance_to_beat_control,
        )
        return row


@dataclass(frozen=True, slots=True)
class SrmCheck:
    """Sample ratio mismatch: users per variant against the weights they were assigned with."""

    p_value: float | None
    mismatch: bool


@dataclass(frozen=True, slots=True)
class ExperimentResults:
    """Every variant's numbers (control first), the SRM check and the warnings a reader must see."""

    kind: MetricKind
    variants: tuple[VariantResult, ...]
    srm: SrmCheck
    warnings: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, object]:
        """JSON-ready, with ``srm_p_value`` at the top level."""
        return {
            "kind": self.kind,
            "variants": [v.to_dict(self.kind) for v in self.variants],
            "srm_p_value": self.srm.p_value,
            "srm_mismatch": self.srm.mismatch,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True, slots=True)
class Breakdown:
    """The same results for a segment (e.g. ``profession=marketing``) and for everyone else."""

    segment: ExperimentResults
    rest: ExperimentResults


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise Invalid(f"confidence must be between 0 and 1, not {confidence}")
    return float(scipy_stats.norm.ppf(1 - (1 - confidence) / 2))


def relative_lift(
    control_mean: float,
    control_var_of_mean: float,
    treatment_mean: float,
    treatment_var_of_mean: float,
    confidence: float = 0.95,
) -> tuple[float, float, float] | None:
    """``(lift, ci_low, ci_high)`` of ``treatment_mean / control_mean - 1`` by the delta method.

    The variances are of the means (``p(1 - p)/n`` or ``s²/n``); None when the control mean is 0.
    """
    if control_mean == 0:
        return None
    lift = treatment_mean / control_mean - 1
    variance = treatment_var_of_mean / control_mean**2 + treatment_mean**2 * control_var_of_mean / control_mean**4
    half_width = _z(confidence) * math.sqrt(variance)
    return lift, lift - half_width, lift + half_width


def beta_chance_to_beat(alpha_t: int, beta_t: int, alpha_c: int, beta_c: int) -> float:
    """``P(X_t > X_c)`` for independent ``X_t ~ Beta(alpha_t, beta_t)``, ``X_c ~ Beta(alpha_c, beta_c)``.

    Closed form for an integer first parameter (Evan Miller, "Formulas for Bayesian A/B
    testing"): ``P(X_t > X_c) = sum over i < a_t of B(a_c+i, b_c+b_t) / ((b_t+i) B(1+i, b_t) B(a_c, b_c))``.
    The sum runs over the smaller of the two alphas, using ``P(X_t > X_c) = 1 - P(X_c > X_t)``.
    """
    if alpha_t > alpha_c:
        return 1.0 - beta_chance_to_beat(alpha_c, beta_c, alpha_t, beta_t)
    base = special.betaln(alpha_c, beta_c)
    total = 0.0
    # Summed in chunks so millions of conversions do not need arrays of millions of terms at once.
    for start in range(0, alpha_t, _CHUNK):
        i = np.arange(start, min(alpha_t, start + _CHUNK), dtype=np.float64)
        log_terms = special.betaln(alpha_c + i, beta_c + beta_t) - np.log(beta_t + i) - special.betaln(1 + i, beta_t)
        total += float(np.exp(log_terms - base).sum())
    return min(1.0, max(0.0, total))


def binomial_chance_to_beat(control: VariantData, treatment: VariantData) -> float | None:
    """``P(p_t > p_c)`` under uniform priors: posteriors ``Beta(1 + conversions, 1 + users - conversions)``."""
    if control.users == 0 or treatment.users == 0:
        return None
    return beta_chance_to_beat(
        1 + treatment.conversions,
        1 + treatment.users - treatment.conversions,
        1 + control.conversions,
        1 + control.users - control.conversions,
    )


def numeric_chance_to_beat(control: NumericVariantData, treatment: NumericVariantData) -> float | None:
    """``P(μ_t > μ_c)`` by the normal approximation; None with fewer than two values per variant or no variance."""
    if control.n < 2 or treatment.n < 2:
        return None
    se = math.sqrt(control.variance / control.n + treatment.variance / treatment.n)
    if se == 0:
        return None
    return float(scipy_stats.norm.cdf((treatment.mean - control.mean) / se))


def compare_binomial(
    control: VariantData,
    treatment: VariantData,
    confidence: float = 0.95,
    *,
    higher_is_better: bool = True,
    sequential: bool = False,
) -> Comparison:
    """Lift with its interval and p-value (one inference), and chance to beat control, for a binomial metric.

    ``higher_is_better=False`` (a guardrail such as an error rate) makes the chance to beat
    control the chance that the treatment's rate is *lower*.
    """
    if control.users == 0 or treatment.users == 0:
        return NO_COMPARISON
    pc, pt = control.conversions / control.users, treatment.conversions / treatment.users
    estimates = (
        inference.Estimate(pc, pc * (1 - pc) / control.users, control.users),
        inference.Estimate(pt, pt * (1 - pt) / treatment.users, treatment.users),
    )
    chance = binomial_chance_to_beat(control, treatment)
    return _comparison(
        inference.relative(*estimates, confidence, sequential=sequential), chance, higher_is_better
    )


def compare_numeric(
    control: NumericVariantData,
    treatment: NumericVariantData,
    confidence: float = 0.95,
    *,
    higher_is_better: bool = True,
    sequential: bool = False,
) -> Comparison:
    """Lift with its interval and p-value (one inference, Welch's degrees of freedom), and chance to beat control."""
    if control.n == 0 or treatment.n == 0:
        return NO_COMPARISON
    c = inference.Estimate(control.mean, control.variance / control.n, control.n)
    t = inference.Estimate(treatment.mean, treatment.variance / treatment.n, treatment.n)
    df = inference.welch_df(c, t)
    if df is None and not sequential:
        relative = inference.relative(c, t, confidence)
        relative = None if relative is None else inference.Inference(relative.lift, None, None, None)
    else:
        relative = inference.relative(c, t, confidence, df=df, sequential=sequential)
    chance = numeric_chance_to_beat(control, treatment)
    return _comparison(relative, chance, higher_is_better)


def compare_estimates(
    control: inference.Estimate,
    treatment: inference.Estimate,
    confidence: float = 0.95,
    *,
    higher_is_better: bool = True,
    sequential: bool = False,
) -> Comparison:
    """The comparison of two adjusted (CUPED) means: normal inference, normal chance to beat control."""
    if control.n == 0 or treatment.n == 0:
        return NO_COMPARISON
    relative = inference.relative(control, treatment, confidence, sequential=sequential)
    return _comparison(relative, inference.normal_chance_to_beat(control, treatment), higher_is_better)


def _comparison(
    relative: inference.Inference | None, chance: float | None, higher_is_better: bool
) -> Comparison:
    if chance is not None and not higher_is_better:
        chance = 1.0 - chance
    if relative is None:
        return Comparison(None, None, None, None, chance)
    return Comparison(relative.lift, relative.ci_low, relative.ci_high, relative.p_value, chance)


def sample_ratio_mismatch(users: Sequence[int], weights: Sequence[float] | None = None) -> SrmCheck:
    """Chi-square goodness of fit of ``users`` per variant against ``weights`` (equal when None).

    No p-value without users or with fewer than two variants that should get any. Users
    in a variant whose weight is 0 is a mismatch outright.
    """
    shares = _shares(len(users), weights)
    total = sum(users)
    if total == 0:
        return SrmCheck(None, mismatch=False)
    statistic, cells = 0.0, 0
    for observed, share in zip(users, shares, strict=True):
        expected = total * share
        if expected == 0:
            if observed > 0:
                return SrmCheck(0.0, mismatch=True)
            continue
        statistic += (observed - expected) ** 2 / expected
        cells += 1
    if cells < 2:
        return SrmCheck(None, mismatch=False)
    p_value = float(scipy_stats.chi2.sf(statistic, cells - 1))
    return SrmCheck(p_value, mismatch=p_value < SRM_P_THRESHOLD)


def _shares(count: int, weights: Sequence[float] | None) -> list[float]:
    if weights is None:
        return [1 / count] * count if count else []
    if len(weights) != count:
        raise Invalid(f"{len(weights)} weights for {count} variants")
    if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise Invalid("weights must be finite, non-negative and not all zero")
    total = sum(weights)
    return [w / total for w in weights]


def binomial_results(
    variants: Sequence[VariantData],
    weights: Sequence[float] | None = None,
    confidence: float = 0.95,
    *,
    higher_is_better: bool = True,
    sequential: bool = False,
) -> ExperimentResults:
    """Results of a binomial metric; ``variants[0]`` is the control, ``weights`` as configured."""
    _check_variants(variants)
    control = variants[0]
    rows = tuple(
        VariantResult(
            name=v.name,
            users=v.users,
            conversions=v.conversions,
            mean=v.conversions / v.users if v.users else None,
            comparison=NO_COMPARISON if i == 0 else compare_binomial(
                control, v, confidence, higher_is_better=higher_is_better, sequential=sequential
            ),
        )
        for i, v in enumerate(variants)
    )
    srm = sample_ratio_mismatch([v.users for v in variants], weights)
    warnings = [*_srm_warnings(srm), *_sample_warnings(variants)]
    return ExperimentResults("binomial", rows, srm, tuple(warnings))


def numeric_results(
    variants: Sequence[NumericVariantData],
    weights: Sequence[float] | None = None,
    confidence: float = 0.95,
    *,
    higher_is_better: bool = True,
    sequential: bool = False,
) -> ExperimentResults:
    """Results of a numeric metric; ``variants[0]`` is the control, ``weights`` as configured."""
    _check_variants(variants)
    control = variants[0]
    rows = tuple(
        VariantResult(
            name=v.name,
            users=v.n,
            conversions=None,
            mean=v.mean if v.n else None,
            comparison=NO_COMPARISON if i == 0 else compare_numeric(
                control, v, confidence, higher_is_better=higher_is_better, sequential=sequential
            ),
        )
        for i, v in enumerate(variants)
    )
    srm = sample_ratio_mismatch([v.n for v in variants], weights)
    warnings = [*_srm_warnings(srm), *_sample_warnings(variants)]
    return ExperimentResults("numeric", rows, srm, tuple(warnings))


def cuped_results(
    kind: MetricKind,
    variants: Sequence[tuple[str, inference.Moments]],
    weights: Sequence[float] | None = None,
    confidence: float = 0.95,
    *,
    higher_is_better: bool = True,
    sequential: bool = False,
) -> ExperimentResults:
    """Results with CUPED: raw rates or means shown, lift, interval and p-value on the adjusted means.

    Each variant is ``(name, Moments)`` with ``y`` the metric (0/1 for a binomial metric) and
    ``x`` the same metric before the user's first exposure.
    """
    plain = (
        [VariantData(name, m.n, round(m.sum_y)) for name, m in variants] if kind == "binomial"
        else [NumericVariantData(name, m.n, *_mean_variance(m)) for name, m in variants]
    )
    _check_variants(plain)
    adjusted = inference.cuped([m for _, m in variants])
    rows = tuple(
        VariantResult(
            name=name,
            users=m.n,
            conversions=round(m.sum_y) if kind == "binomial" else None,
            mean=m.sum_y / m.n if m.n else None,
            comparison=NO_COMPARISON if i == 0 else compare_estimates(
                adjusted[0], adjusted[i], confidence, higher_is_better=higher_is_better, sequential=sequential
            ),
        )
        for i, (name, m) in enumerate(variants)
    )
    srm = sample_ratio_mismatch([m.n for _, m in variants], weights)
    warnings = [*_srm_warnings(srm), *_sample_warnings(plain)]
    return ExperimentResults(kind, rows, srm, tuple(warnings))


def _mean_variance(moments: inference.Moments) -> tuple[float, float]:
    estimate = inference.plain(moments)
    return estimate.mean, estimate.var_of_mean * estimate.n


def _check_variants(variants: Sequence[VariantData] | Sequence[NumericVariantData]) -> None:
    if len(variants) < 2:
        raise Invalid("results need a control and at least one treatment")
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        raise Invalid(f"variant names repeat: {names}")


def _srm_warnings(srm: SrmCheck) -> list[str]:
    if not srm.mismatch:
        return []
    return [
        f"sample ratio mismatch (p = {srm.p_value:.2g} < {SRM_P_THRESHOLD}): users are not split as configured, "
        "so the assignment or the event collection is broken and these results cannot be trusted"
    ]


def _sample_warnings(variants: Sequence[VariantData] | Sequence[NumericVariantData]) -> list[str]:
    warnings = []
    for v in variants:
        users = v.users if isinstance(v, VariantData) else v.n
        if users < MIN_USERS_PER_VARIANT:
            warnings.append(f"variant {v.name!r} has {users} users, fewer than {MIN_USERS_PER_VARIANT}")
        if isinstance(v, VariantData) and v.conversions < MIN_CONVERSIONS_PER_VARIANT:
            warnings.append(
                f"variant {v.name!r} has {v.conversions} conversions, fewer than {MIN_CONVERSIONS_PER_VARIANT}"
            )
    return warnings


def binomial_breakdown(
    segment: Sequence[VariantData],
    everyone: Sequence[VariantData],
    weights: Sequence[float] | None = None,
    confidence: float = 0.95,
) -> Breakdown:
    """Results for a segment and for everyone else, from the segment's and everyone's aggregates."""
    rest = []
    for part, whole in _paired(segment, everyone):
        if part.users > whole.users or part.conversions > whole.conversions:
            raise Invalid(f"variant {part.name!r}: a segment cannot have more users or conversions than everyone")
        rest.append(VariantData(part.name, whole.users - part.users, whole.conversions - part.conversions))
    return Breakdown(binomial_results(segment, weights, confidence), binomial_results(rest, weights, confidence))


def numeric_breakdown(
    segment: Sequence[NumericVariantData],
    everyone: Sequence[NumericVariantData],
    weights: Sequence[float] | None = None,
    confidence: float = 0.95,
) -> Breakdown:
    """Results for a segment and for everyone else; the rest's mean and variance come from the pooled sums."""
    rest = [_numeric_difference(s, e) for s, e in _paired(segment, everyone)]
    return Breakdown(numeric_results(segment, weights, confidence), numeric_results(rest, weights, confidence))


def _paired(segment: Sequence[_Data], everyone: Sequence[_Data]) -> list[tuple[_Data, _Data]]:
    if [s.name for s in segment] != [e.name for e in everyone]:
        raise Invalid("a segment must list the same variants, in the same order, as everyone")
    return list(zip(segment, everyone, strict=True))


def _numeric_difference(part: NumericVariantData, whole: NumericVariantData) -> NumericVariantData:
    """The aggregate of ``whole`` without ``part``: n, mean, and variance from the sums of squares."""
    n = whole.n - part.n
    if n < 0:
        raise Invalid(f"variant {part.name!r}: a segment cannot have more values than everyone")
    if n == 0:
        return NumericVariantData(part.name, 0, 0.0, 0.0)
    mean = (whole.mean * whole.n - part.mean * part.n) / n
    if n == 1:
        return NumericVariantData(part.name, 1, mean, 0.0)
    # Sums of squared deviations about the overall mean add up across the two groups:
    # (N-1)s² = (n_p-1)s_p² + n_p(m_p-m)² + (n_r-1)s_r² + n_r(m_r-m)². Centred sums keep precision.
    squares = (
        (whole.n - 1) * whole.variance
        - (part.n - 1) * part.variance
        - part.n * (part.mean - whole.mean) ** 2
        - n * (mean - whole.mean) ** 2
    )
    return NumericVariantData(part.name, n, mean, max(0.0, squares / (n - 1)))
