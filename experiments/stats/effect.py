"""The treatment effect and its standard error, absolute or relative, from two statistics.

Every test in this package (frequentist, sequential, Bayesian) starts from the same two
moments: the point estimate of the effect of ``treatment`` versus ``control`` and its
standard error, with unpooled variances (each arm keeps its own variance).

- absolute: ``mean_t - mean_c`` with variance ``var_t / n_t + var_c / n_c``;
- relative: ``(mean_t - mean_c) / |mean_c|`` with the delta-method variance of the
  ratio of two independent means, ``var_t / (n_t m_c^2) + var_c m_t^2 / (n_c m_c^4)``.

For CUPED statistics the means are the adjusted ones and the relative effect is divided
by the *unadjusted* control mean, as gbstats does (``frequentist_diff`` and
``frequentist_variance`` in ``gbstats/utils.py``, growthbook/growthbook).

>>> from experiments.stats.statistics import ProportionStatistic
>>> m = effect_moments(ProportionStatistic(1000, 100), ProportionStatistic(1000, 120))
>>> round(m.estimate, 3), round(m.standard_error, 4)
(0.02, 0.014)
>>> round(effect_moments(ProportionStatistic(1000, 100), ProportionStatistic(1000, 120),
...                      relative=True).estimate, 3)
0.2

Reference: Deng, Knoblich, Lu (2018), "Applying the Delta Method in Metric Analytics",
KDD, section 3.3 (relative difference of two independent means).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from experiments.stats.statistics import Statistic


@dataclass(frozen=True)
class EffectMoments:
    """Point estimate and standard error; ``defined`` is False when the test is undefined
    (an empty arm, a zero control mean for a relative effect, or zero variance)."""

    estimate: float
    standard_error: float
    n: int  # units in both arms, used by the sequential test

    @property
    def defined(self) -> bool:
        return (
            math.isfinite(self.estimate)
            and math.isfinite(self.standard_error)
            and self.standard_error > 0
        )


@dataclass(frozen=True)
class Effect:
    """One effect as reported: estimate, interval and p-value; None where not produced."""

    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None

    def to_dict(self) -> dict[str, float | None]:
        return {
            "estimate": _finite(self.estimate),
            "ci_low": _finite(self.ci_low),
            "ci_high": _finite(self.ci_high),
            "p_value": _finite(self.p_value),
        }


def _finite(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def effect_moments(
    control: Statistic, treatment: Statistic, relative: bool = False
) -> EffectMoments:
    """Estimate and standard error of the effect of ``treatment`` over ``control``."""
    n = control.n + treatment.n
    if control.n == 0 or treatment.n == 0:
        return EffectMoments(math.nan, math.nan, n)
    var_c = control.variance / control.n
    var_t = treatment.variance / treatment.n
    diff = treatment.mean - control.mean
    if not relative:
        return EffectMoments(diff, math.sqrt(var_c + var_t), n)
    base = control.unadjusted_mean
    if base == 0:
        return EffectMoments(math.nan, math.nan, n)
    ratio = treatment.unadjusted_mean / base
    try:
        variance = (var_t + var_c * ratio**2) / base**2
        return EffectMoments(diff / abs(base), math.sqrt(variance), n)
    except (ZeroDivisionError, OverflowError):  # a control mean too close to 0
        return EffectMoments(math.nan, math.nan, n)
