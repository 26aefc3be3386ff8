"""Fixed-horizon two-sided test of a difference in means, absolute and relative.

The test statistic is the effect divided by its unpooled standard error (each arm keeps its
own variance, as in Welch's test), referred to the standard normal distribution: at the
sample sizes of online experiments Welch's t and the normal are indistinguishable, and the
normal keeps every test O(1) in the sufficient statistics. Proportions use p(1 - p) as the
per-unit variance. The relative lift's interval and p-value use the delta method.

gbstats' ``TwoSidedTTest`` (``gbstats/frequentist/tests.py`` in growthbook/growthbook) is
the same test with Welch–Satterthwaite degrees of freedom instead of the normal.

>>> from experiments.stats.statistics import ProportionStatistic
>>> r = two_sided_test(ProportionStatistic(5000, 500), ProportionStatistic(5000, 580))
>>> round(r.abs.estimate, 4), round(r.abs.p_value, 4)
(0.016, 0.0099)
>>> r.rel.ci_low < r.rel.estimate < r.rel.ci_high
True

References: Welch (1947), "The generalization of Student's problem when several different
population variances are involved", Biometrika; Deng, Knoblich, Lu (2018), "Applying the
Delta Method in Metric Analytics", KDD.
"""

from __future__ import annotations

from dataclasses import dataclass

from scipy.special import ndtr, ndtri

from experiments.stats.effect import Effect, EffectMoments, effect_moments
from experiments.stats.statistics import Statistic


@dataclass(frozen=True)
class TestResult:
    """The absolute difference and the relative lift of treatment over control."""

    __test__ = False  # not a pytest test class

    abs: Effect
    rel: Effect


def z_effect(moments: EffectMoments, alpha: float = 0.05) -> Effect:
    """Normal-approximation interval and two-sided p-value for one effect."""
    if not moments.defined:
        return Effect(moments.estimate, None, None, None)
    z = moments.estimate / moments.standard_error
    half = float(ndtri(1.0 - alpha / 2.0)) * moments.standard_error
    p = float(2.0 * ndtr(-abs(z)))
    return Effect(moments.estimate, moments.estimate - half, moments.estimate + half, p)


def two_sided_test(control: Statistic, treatment: Statistic, alpha: float = 0.05) -> TestResult:
    """Test H0: mean(treatment) == mean(control), two-sided, at level ``alpha``."""
    return TestResult(
        abs=z_effect(effect_moments(control, treatment, relative=False), alpha),
        rel=z_effect(effect_moments(control, treatment, relative=True), alpha),
    )
