"""Planning: units per arm to detect a minimum detectable effect, and how many days.

For a two-sided test at level ``alpha`` to detect an effect with probability ``power``,
each arm needs about ``((z_{1-alpha/2} + z_{power}) / d)^2 * 2`` units, where ``d`` is the
standardized effect. We solve this with ``statsmodels.stats.power.NormalIndPower`` (the
z-test this package runs), with ``d`` as:

- binomial metrics: Cohen's h, ``2 asin(sqrt(p1)) - 2 asin(sqrt(p0))``
  (``statsmodels.stats.proportion.proportion_effectsize``), the variance-stabilized
  difference of proportions;
- mean metrics: the difference divided by the per-unit standard deviation (Cohen's d).

The effect is relative to the baseline (``relative=True``, the default: 0.05 is a 5 % lift)
or absolute. The duration is the days needed for every arm to reach that size when
``daily_traffic`` units a day are split evenly over ``n_arms`` arms.

>>> n = sample_size_per_arm("binomial", baseline=0.10, mde=0.10)
>>> n
14745
>>> duration_days(n, daily_traffic=5000, n_arms=2)
6

References: Cohen (1988), "Statistical Power Analysis for the Behavioral Sciences", 2nd ed.,
chapters 2 and 6; Kohavi, Tang, Xu (2020), "Trustworthy Online Controlled Experiments",
chapter 17.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Literal

from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize

from liftgate.core.errors import InputError


def standardized_effect(
    kind: Literal["binomial", "mean"],
    baseline: float,
    mde: float,
    std: float | None = None,
    relative: bool = True,
) -> float:
    """Cohen's h (binomial) or d (mean) of the minimum detectable effect."""
    target = baseline * (1.0 + mde) if relative else baseline + mde
    if kind == "binomial":
        if not (0.0 < baseline < 1.0 and 0.0 < target < 1.0):
            raise InputError(
                f"binomial baseline and baseline + effect must be in (0, 1), "
                f"got {baseline} and {target}",
                parameter="baseline",
            )
        return abs(float(proportion_effectsize(target, baseline)))
    if kind == "mean":
        if std is None or not std > 0:
            raise InputError(
                f"mean metrics need std > 0 (per-unit standard deviation), got {std}",
                parameter="std",
            )
        return abs(target - baseline) / std
    raise ValueError(f"kind must be 'binomial' or 'mean', got {kind!r}")


def sample_size_per_arm(
    kind: Literal["binomial", "mean"],
    baseline: float,
    mde: float,
    std: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    relative: bool = True,
) -> int:
    """Units per arm (rounded up) for a two-sided test comparing one arm with control."""
    if mde == 0:
        raise InputError("must be non-zero", parameter="mde")
    for parameter, value in (("alpha", alpha), ("power", power)):
        if not 0.0 < value < 1.0:
            raise InputError(f"must be in (0, 1), got {value}", parameter=parameter)
    effect = standardized_effect(kind, baseline, mde, std, relative)
    n = NormalIndPower().solve_power(
        effect_size=effect, alpha=alpha, power=power, ratio=1.0, alternative="two-sided"
    )
    if not math.isfinite(n):
        # statsmodels' root finder does not converge below ~2 units per arm (effects of a few
        # standard deviations); there the far tail is negligible and the one-tail closed form
        # n = 2 (z_{1-α/2} + z_{power})² / d² is the answer (Cohen 1988, §12.3).
        z = NormalDist().inv_cdf
        n = 2 * (z(1 - alpha / 2) + z(power)) ** 2 / effect**2
    return max(2, math.ceil(float(n)))


def duration_days(n_per_arm: int, daily_traffic: float, n_arms: int = 2) -> int:
    """Days until each of ``n_arms`` equal arms has ``n_per_arm`` units."""
    if daily_traffic <= 0 or n_arms < 2:
        raise InputError(
            f"need daily_traffic > 0 and n_arms >= 2, got {daily_traffic} and {n_arms}",
            parameter="daily_traffic",
        )
    return math.ceil(n_per_arm * n_arms / daily_traffic)
