"""One inference per comparison: the relative lift, its interval and its p-value from the same estimate.

A treatment's relative lift ``m_t / m_c - 1`` gets its variance by the delta method (two
independent means), and both its interval and its p-value come from that one estimate and
standard error, so that ``p < 1 - confidence`` exactly when the interval excludes 0:

- fixed horizon: ``lift ± q · se`` and ``p = 2 · P(|Z| > |lift| / se)``, with ``q`` the normal
  quantile (or Student's t with Welch's degrees of freedom for a numeric metric);
- sequential (always valid, the mixture SPRT of Johari et al. as GrowthBook and Eppo use it):
  the normal mixture with variance ``τ² = V · n · ρ²`` over the effect gives the likelihood
  ratio ``Λ = sqrt(V / (V + τ²)) · exp(τ² lift² / (2 V (V + τ²)))``; the p-value is ``min(1, 1/Λ)``
  and the confidence sequence is the set of effects it does not reject:
  ``lift ± sqrt(V (V + τ²) / τ² · (ln((V + τ²) / V) - 2 ln alpha))``. ``rho`` is tuned so that the
  sequence is narrowest at ``tuning`` users (GrowthBook's default 5,000).

CUPED (Deng et al. 2013) replaces each user's value ``y`` by ``y - θ (x - x̄)``, where ``x`` is
the same metric before the user's first exposure and ``θ = cov(x, y) / var(x)`` over all
users: the mean is unbiased (exposure is random, so ``x`` does not depend on the variant) and
its variance shrinks by the factor ``1 - corr(x, y)²``.

Pure functions of aggregates; numbers that cannot be computed are None.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats as scipy_stats

Array = npt.NDArray[np.float64] | np.float64

SEQUENTIAL_TUNING = 5_000
"""Users at which the confidence sequence is narrowest (GrowthBook's default)."""


@dataclass(frozen=True, slots=True)
class Estimate:
    """A variant's mean, the variance of that mean, and its number of users."""

    mean: float
    var_of_mean: float
    n: int


@dataclass(frozen=True, slots=True)
class Inference:
    """The relative lift with its interval and p-value, all from one standard error."""

    lift: float
    ci_low: float | None
    ci_high: float | None
    p_value: float | None


@dataclass(frozen=True, slots=True)
class Moments:
    """One variant's sums over its users of the metric ``y`` and its pre-exposure value ``x``."""

    n: int
    sum_y: float
    sum_y2: float
    sum_x: float = 0.0
    sum_x2: float = 0.0
    sum_xy: float = 0.0


def relative(
    control: Estimate,
    treatment: Estimate,
    confidence: float = 0.95,
    *,
    df: float | None = None,
    sequential: bool = False,
    tuning: int = SEQUENTIAL_TUNING,
) -> Inference | None:
    """The lift ``treatment.mean / control.mean - 1`` with its interval and p-value; None when the control mean is 0.

    ``df`` uses Student's t instead of the normal (fixed horizon only); ``sequential`` gives
    the always-valid p-value and confidence sequence instead.
    """
    if control.mean == 0 or control.n == 0 or treatment.n == 0:
        return None
    lift = treatment.mean / control.mean - 1
    variance = treatment.var_of_mean / control.mean**2 + treatment.mean**2 * control.var_of_mean / control.mean**4
    if not variance > 0 or not math.isfinite(variance):
        return Inference(lift, None, None, None)
    alpha = 1 - confidence
    if sequential:
        half, p_value = _sequential(lift, variance, control.n + treatment.n, alpha, tuning)
    else:
        se = math.sqrt(variance)
        if df is not None and df > 0:
            half = float(scipy_stats.t.ppf(1 - alpha / 2, df)) * se
            p_value = float(2 * scipy_stats.t.sf(abs(lift) / se, df))
        else:
            half = float(scipy_stats.norm.ppf(1 - alpha / 2)) * se
            p_value = float(2 * scipy_stats.norm.sf(abs(lift) / se))
    return Inference(lift, lift - half, lift + half, p_value)


def sequential_rho_squared(alpha: float, tuning: int = SEQUENTIAL_TUNING) -> float:
    """``rho²`` that makes the confidence sequence narrowest at ``tuning`` users."""
    log_alpha = -2 * math.log(alpha)
    return (log_alpha + math.log(log_alpha + 1)) / tuning


def _sequential(estimate: float, variance: float, n: int, alpha: float, tuning: int) -> tuple[float, float]:
    """(half-width of the confidence sequence, always-valid p-value) of an estimate with ``variance``, ``n`` users."""
    half = sequential_half_width(np.float64(variance), np.float64(n), alpha, tuning)
    p_value = sequential_p_value(np.float64(estimate), np.float64(variance), np.float64(n), alpha, tuning)
    return float(half), float(p_value)


def sequential_half_width(variance: Array, n: Array, alpha: float, tuning: int = SEQUENTIAL_TUNING) -> Array:
    """Half-width of the ``1 - alpha`` confidence sequence of an estimate with ``variance``, ``n`` users (or arrays)."""
    ratio = n * sequential_rho_squared(alpha, tuning)  # τ² / V
    return np.sqrt(variance * (1 + ratio) / ratio * (np.log1p(ratio) - 2 * math.log(alpha)))


def sequential_p_value(
    estimate: Array, variance: Array, n: Array, alpha: float = 0.05, tuning: int = SEQUENTIAL_TUNING
) -> Array:
    """Always-valid p-value ``min(1, 1/Λ)`` of the mixture SPRT (arrays too); ``alpha`` tunes the mixture."""
    ratio = n * sequential_rho_squared(alpha, tuning)
    log_lr = -0.5 * np.log1p(ratio) + estimate**2 * ratio / (2 * variance * (1 + ratio))
    return np.exp(-np.maximum(log_lr, 0.0))


def welch_df(control: Estimate, treatment: Estimate) -> float | None:
    """Welch-Satterthwaite degrees of freedom of two means' variances; None when undefined."""
    if control.n < 2 or treatment.n < 2:
        return None
    vc, vt = control.var_of_mean, treatment.var_of_mean
    denominator = vc**2 / (control.n - 1) + vt**2 / (treatment.n - 1)
    return (vc + vt) ** 2 / denominator if denominator > 0 else None


def plain(moments: Moments) -> Estimate:
    """The mean of ``y`` and the variance of that mean (sample variance, n - 1)."""
    n = moments.n
    if n == 0:
        return Estimate(0.0, 0.0, 0)
    mean = moments.sum_y / n
    variance = max(0.0, (moments.sum_y2 - n * mean * mean) / (n - 1)) if n > 1 else 0.0
    return Estimate(mean, variance / n, n)


def cuped_theta(variants: Sequence[Moments]) -> float:
    """``cov(x, y) / var(x)`` over every user of every variant; 0 when ``x`` does not vary."""
    n = sum(m.n for m in variants)
    if n < 2:
        return 0.0
    sx, sy = sum(m.sum_x for m in variants), sum(m.sum_y for m in variants)
    sxx, sxy = sum(m.sum_x2 for m in variants), sum(m.sum_xy for m in variants)
    var_x = sxx - sx * sx / n
    if var_x <= 1e-12 * max(1.0, sxx):
        return 0.0
    return (sxy - sx * sy / n) / var_x


def cuped(variants: Sequence[Moments]) -> list[Estimate]:
    """Each variant's CUPED-adjusted mean of ``y`` and the variance of that mean."""
    theta = cuped_theta(variants)
    total = sum(m.n for m in variants)
    x_bar = sum(m.sum_x for m in variants) / total if total else 0.0
    out = []
    for m in variants:
        if m.n == 0:
            out.append(Estimate(0.0, 0.0, 0))
            continue
        mean_y, mean_x = m.sum_y / m.n, m.sum_x / m.n
        if m.n < 2:
            out.append(Estimate(mean_y - theta * (mean_x - x_bar), 0.0, m.n))
            continue
        var_y = (m.sum_y2 - m.n * mean_y**2) / (m.n - 1)
        var_x = (m.sum_x2 - m.n * mean_x**2) / (m.n - 1)
        cov = (m.sum_xy - m.n * mean_x * mean_y) / (m.n - 1)
        adjusted = max(0.0, var_y + theta**2 * var_x - 2 * theta * cov)
        out.append(Estimate(mean_y - theta * (mean_x - x_bar), adjusted / m.n, m.n))
    return out


def normal_chance_to_beat(control: Estimate, treatment: Estimate) -> float | None:
    """``P(μ_t > μ_c)`` by the normal approximation; None without variance."""
    se2 = control.var_of_mean + treatment.var_of_mean
    if control.n == 0 or treatment.n == 0 or not se2 > 0:
        return None
    return float(scipy_stats.norm.cdf((treatment.mean - control.mean) / math.sqrt(se2)))
