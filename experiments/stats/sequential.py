"""Anytime-valid test: a Gaussian-mixture confidence sequence for the effect.

A fixed-horizon interval covers the effect with probability 1 - alpha at *one* planned
look; checking it every day and stopping at the first significant result inflates false
positives far beyond alpha. A confidence sequence covers the effect at *all* looks at
once, so the experiment may be monitored continuously and stopped at any time.

We use the asymptotic Gaussian-mixture confidence sequence of Howard, Ramdas, McAuliffe
and Sekhon (2021), eq. (14), in the form of Waudby-Smith et al. (2023), as gbstats'
``SequentialTwoSidedTTest`` does (growthbook/growthbook, ``gbstats/frequentist/tests.py``).
With n the units in both arms, s^2 = n * SE^2 and the mixing parameter

    rho^2 = (-2 ln(alpha) + ln(1 - 2 ln(alpha))) / M,

chosen so the sequence is tightest near n = M (``sequential_tuning_parameter``, default
5000 as in GrowthBook), the half-width is

    s * sqrt(2 (n rho^2 + 1) / (n rho)^2 * ln(sqrt(n rho^2 + 1) / alpha)).

The reported p-value is the **anytime-valid p-value** (Waudby-Smith et al. 2023, eq. 155):
the reciprocal of the mixture e-value, capped at 1; it is below alpha exactly when the
confidence sequence excludes 0, and it stays valid under optional stopping.

>>> from experiments.stats.statistics import ProportionStatistic
>>> c, t = ProportionStatistic(5000, 500), ProportionStatistic(5000, 580)
>>> r = sequential_test(c, t)
>>> round(r.abs.ci_low, 4), round(r.abs.ci_high, 4), round(r.abs.p_value, 3)
(-0.003, 0.035, 0.18)

References: Howard, Ramdas, McAuliffe, Sekhon (2021), "Time-uniform, nonparametric,
nonasymptotic confidence sequences", Annals of Statistics 49(2); Waudby-Smith, Arbour,
Sinha, Kennedy, Ramdas (2023), "Time-uniform central limit theory and asymptotic
confidence sequences", arXiv:2103.06476v7.
"""

from __future__ import annotations

import numpy as np

from experiments.stats.effect import Effect, EffectMoments, effect_moments
from experiments.stats.frequentist import TestResult
from experiments.stats.statistics import Statistic

DEFAULT_TUNING_PARAMETER = 5000.0


def mixture_rho(alpha: float, tuning_parameter: float = DEFAULT_TUNING_PARAMETER) -> float:
    """Mixing parameter that makes the two-sided sequence tightest at n = tuning_parameter."""
    if tuning_parameter <= 0:
        raise ValueError(f"sequential_tuning_parameter must be > 0, got {tuning_parameter}")
    log_a = np.log(alpha)
    return float(np.sqrt((-2.0 * log_a + np.log(-2.0 * log_a + 1.0)) / tuning_parameter))


def halfwidth(
    standard_error: np.ndarray | float,
    n: np.ndarray | float,
    alpha: float = 0.05,
    tuning_parameter: float = DEFAULT_TUNING_PARAMETER,
) -> np.ndarray | float:
    """Half-width of the confidence sequence; vectorized over arrays of looks."""
    rho = mixture_rho(alpha, tuning_parameter)
    n = np.asarray(n, dtype=float)
    s2 = np.asarray(standard_error, dtype=float) ** 2 * n
    nr2 = n * rho**2 + 1.0
    return np.sqrt(s2 * 2.0 * nr2 / (n * rho) ** 2 * np.log(np.sqrt(nr2) / alpha))


def anytime_p_value(
    estimate: np.ndarray | float,
    standard_error: np.ndarray | float,
    n: np.ndarray | float,
    alpha: float = 0.05,
    tuning_parameter: float = DEFAULT_TUNING_PARAMETER,
) -> np.ndarray | float:
    """Anytime-valid p-value, min(1, 1 / e-value); vectorized over arrays of looks.

    ``alpha`` only fixes the mixing parameter rho, which must match the interval's.
    """
    rho = mixture_rho(alpha, tuning_parameter)
    n = np.asarray(n, dtype=float)
    z2 = (np.asarray(estimate, dtype=float) / np.asarray(standard_error, dtype=float)) ** 2
    nr2 = n * rho**2 + 1.0
    log_e = rho**2 * n * z2 / (2.0 * nr2) - 0.5 * np.log(nr2)
    return np.minimum(np.exp(-log_e), 1.0)


def sequential_effect(
    moments: EffectMoments,
    alpha: float = 0.05,
    tuning_parameter: float = DEFAULT_TUNING_PARAMETER,
) -> Effect:
    """Confidence-sequence interval and anytime-valid p-value for one effect."""
    if not moments.defined:
        return Effect(moments.estimate, None, None, None)
    se, n, est = moments.standard_error, moments.n, moments.estimate
    half = float(halfwidth(se, n, alpha, tuning_parameter))
    p = float(anytime_p_value(est, se, n, alpha, tuning_parameter))
    return Effect(est, est - half, est + half, p)


def sequential_test(
    control: Statistic,
    treatment: Statistic,
    alpha: float = 0.05,
    sequential_tuning_parameter: float = DEFAULT_TUNING_PARAMETER,
) -> TestResult:
    """Anytime-valid two-sided test of treatment versus control, absolute and relative."""
    m = sequential_tuning_parameter
    return TestResult(
        abs=sequential_effect(effect_moments(control, treatment, relative=False), alpha, m),
        rel=sequential_effect(effect_moments(control, treatment, relative=True), alpha, m),
    )
