"""CUPED: regression adjustment of a metric with a pre-exposure covariate.

A covariate X measured before exposure (last month's revenue, say) is independent of the
assignment, so ``Y - theta * (X - E[X])`` has the same expected difference between arms
as Y for any theta, and the variance ``Var(Y) + theta^2 Var(X) - 2 theta Cov(Y, X)`` is
smallest at theta = Cov(Y, X) / Var(X), where it is ``Var(Y) (1 - corr(Y, X)^2)``. The
same theta must be used in every arm; we pool it over the units of all arms (as gbstats'
``compute_theta`` does for a pair of arms), so the adjustment cannot favour one arm.
Subtracting ``theta * mean(X)`` instead of ``theta * (X - E[X])`` shifts every arm by the
same constant, which cancels in the difference.

Variance reduction is reported as 1 - Var(adjusted effect) / Var(unadjusted effect).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> pre = rng.normal(10, 2, size=(2, 4000))
>>> post = pre + rng.normal(0, 1, size=(2, 4000))
>>> arms = adjust({a: RegressionAdjustedStatistic.from_arrays(post[i], pre[i])
...                for i, a in enumerate(["control", "treatment"])})
>>> round(arms["control"].theta, 2)
1.0
>>> round(variance_reduction(arms["control"], arms["treatment"]), 2)
0.8

Reference: Deng, Xu, Kohavi, Walker (2013), "Improving the Sensitivity of Online
Controlled Experiments by Utilizing Pre-Experiment Data", WSDM.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import reduce
from typing import TypeVar

from experiments.stats.statistics import RegressionAdjustedStatistic

K = TypeVar("K")


def pooled_theta(stats: Iterable[RegressionAdjustedStatistic]) -> float:
    """theta = Cov(post, pre) / Var(pre) over the units of all arms together."""
    joint = reduce(lambda a, b: a + b, stats)
    pre_variance = joint.pre.variance
    if pre_variance <= 0 or joint.post.variance <= 0:
        return 0.0
    return joint.covariance / pre_variance


def adjust(
    stats: Mapping[K, RegressionAdjustedStatistic],
) -> dict[K, RegressionAdjustedStatistic]:
    """Return every arm's statistic with the theta pooled across all arms."""
    theta = pooled_theta(stats.values())
    return {arm: s.with_theta(theta) for arm, s in stats.items()}


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
