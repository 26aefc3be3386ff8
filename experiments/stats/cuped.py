"""CUPED: regression adjustment of a metric with a pre-exposure covariate.

A covariate X measured before exposure (last month's revenue, say) is independent of the
assignment, so ``Y - theta * (X - E[X])`` has the same expected difference between arms
as Y for any theta, and the variance ``Var(Y) + theta^2 Var(X) - 2 theta Cov(Y, X)`` is
smallest at theta = Cov(Y, X) / Var(X), where it is ``Var(Y) (1 - corr(Y, X)^2)``. Both
arms of a comparison must use the same theta, so the adjustment cannot favour one of them.

With more than two arms, theta is pooled per comparison: over the units of the control and
the one treatment compared with it, as GrowthBook's gbstats does (``compute_theta(stat_a,
stat_b)`` for each variation against the baseline, ``gbstats/models/statistics.py`` and
``gbstats/gbstats.py`` in growthbook/growthbook). A comparison then depends on its two arms
only, as it would in an A/B test of those arms: another arm, whose treatment may change the
post-period's relation to the covariate, does not move it. Subtracting ``theta * mean(X)``
instead of ``theta * (X - E[X])`` shifts both arms by the same constant, which cancels in
the difference.

Variance reduction is reported as 1 - Var(adjusted effect) / Var(unadjusted effect).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> pre = rng.normal(10, 2, size=(2, 4000))
>>> post = pre + rng.normal(0, 1, size=(2, 4000))
>>> control, treatment = adjust_pair(
...     *(RegressionAdjustedStatistic.from_arrays(post[i], pre[i]) for i in range(2))
... )
>>> round(control.theta, 2), control.theta == treatment.theta
(1.0, True)
>>> round(variance_reduction(control, treatment), 2)
0.8

Reference: Deng, Xu, Kohavi, Walker (2013), "Improving the Sensitivity of Online
Controlled Experiments by Utilizing Pre-Experiment Data", WSDM.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import reduce

from experiments.stats.statistics import RegressionAdjustedStatistic


def pooled_theta(stats: Iterable[RegressionAdjustedStatistic]) -> float:
    """theta = Cov(post, pre) / Var(pre) over the units of the given arms together.

    It is the OLS slope of post on pre over those units; 0 (no adjustment) when either has
    no variance.
    """
    joint = reduce(lambda a, b: a + b, stats)
    pre_variance = joint.pre.variance
    if pre_variance <= 0 or joint.post.variance <= 0:
        return 0.0
    return joint.covariance / pre_variance


def adjust_pair(
    control: RegressionAdjustedStatistic, treatment: RegressionAdjustedStatistic
) -> tuple[RegressionAdjustedStatistic, RegressionAdjustedStatistic]:
    """Both arms of one comparison with the theta pooled over their units (see module)."""
    theta = pooled_theta((control, treatment))
    return control.with_theta(theta), treatment.with_theta(theta)


def variance_reduction(
    control: RegressionAdjustedStatistic, treatment: RegressionAdjustedStatistic
) -> float | None:
    """1 - Var(adjusted difference) / Var(unadjusted difference); None if undefined."""
    if control.n == 0 or treatment.n == 0:
        return None
    unadjusted = (
        control.unadjusted_variance / control.n + treatment.unadjusted_variance / treatment.n
    )
    if unadjusted <= 0:
        return None
    adjusted = control.variance / control.n + treatment.variance / treatment.n
    return 1.0 - adjusted / unadjusted
