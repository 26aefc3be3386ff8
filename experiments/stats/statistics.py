"""Sufficient statistics: everything a test needs about one arm and one metric.

Each metric kind is a small frozen dataclass holding sums only, with ``mean`` and
``variance`` (the per-unit variance, so the variance of the mean is ``variance / n``) as
properties and ``__add__`` so that partial aggregates of disjoint partitions (days, files,
Ray blocks) merge by addition. Every test in this package is O(1) over these objects.

The design follows GrowthBook's gbstats (``packages/stats/gbstats/models/statistics.py`` in
growthbook/growthbook): ``SampleMeanStatistic(n, sum, sum_squares)``,
``ProportionStatistic(n, sum)`` whose variance is p(1 - p), ``RatioStatistic`` whose
variance comes from the delta method, and ``RegressionAdjustedStatistic`` for CUPED.

>>> import numpy as np
>>> a = SampleMeanStatistic.from_array(np.array([1.0, 2.0, 3.0]))
>>> b = SampleMeanStatistic.from_array(np.array([4.0, 5.0]))
>>> (a + b).mean, (a + b).variance
(3.0, 2.5)
>>> ProportionStatistic(n=10, sum=3).variance  # p(1 - p)
0.21

References: Deng, Knoblich, Lu (2018), "Applying the Delta Method in Metric Analytics: A
Practical Guide with Novel Ideas", KDD; Deng, Xu, Kohavi, Walker (2013), "Improving the
Sensitivity of Online Controlled Experiments by Utilizing Pre-Experiment Data", WSDM.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True)
class SampleMeanStatistic:
    """n units, the sum of the metric and the sum of its squares.

    ``variance`` is the unbiased sample variance (divisor n - 1).
    """

    n: int
    sum: float
    sum_squares: float

    @property
    def mean(self) -> float:
        return self.sum / self.n if self.n > 0 else 0.0

    @property
    def unadjusted_mean(self) -> float:
        return self.mean

    @property
    def variance(self) -> float:
        if self.n <= 1:
            return 0.0
        return max((self.sum_squares - self.sum**2 / self.n) / (self.n - 1), 0.0)

    def __add__(self, other: SampleMeanStatistic) -> SampleMeanStatistic:
        if not isinstance(other, SampleMeanStatistic):
            return NotImplemented
        return SampleMeanStatistic(
            self.n + other.n, self.sum + other.sum, self.sum_squares + other.sum_squares
        )

    @classmethod
    def from_array(cls, x: np.ndarray) -> SampleMeanStatistic:
        x = np.asarray(x, dtype=float)
        return cls(n=int(x.size), sum=float(x.sum()), sum_squares=float(x @ x))


@dataclass(frozen=True)
class ProportionStatistic:
    """n units of which ``sum`` converted (a 0/1 metric); ``variance`` is p(1 - p)."""

    n: int
    sum: float

    @property
    def sum_squares(self) -> float:
        return self.sum  # x**2 == x for 0/1 data

    @property
    def mean(self) -> float:
        return self.sum / self.n if self.n > 0 else 0.0

    @property
    def unadjusted_mean(self) -> float:
        return self.mean

    @property
    def variance(self) -> float:
        p = self.mean
        return p * (1.0 - p)

    def __add__(self, other: ProportionStatistic) -> ProportionStatistic:
        if not isinstance(other, ProportionStatistic):
            return NotImplemented
        return ProportionStatistic(self.n + other.n, self.sum + other.sum)

    @classmethod
    def from_array(cls, x: np.ndarray) -> ProportionStatistic:
        x = np.asarray(x, dtype=float)
        return cls(n=int(x.size), sum=float(x.sum()))


MomentStatistic = SampleMeanStatistic | ProportionStatistic


def covariance(a: MomentStatistic, b: MomentStatistic, sum_of_products: float, n: int) -> float:
    """Sample covariance of two metrics measured on the same n units, from their sums."""
    if n <= 1:
        return 0.0
    if isinstance(a, ProportionStatistic) and isinstance(b, ProportionStatistic):
        return sum_of_products / n - a.sum * b.sum / n**2  # same convention as p(1 - p)
    return (sum_of_products - a.sum * b.sum / n) / (n - 1)


def variance_of_ratio(
    mean_m: float, var_m: float, mean_d: float, var_d: float, cov_m_d: float
) -> float:
    """Delta-method variance of M / D (Deng, Knoblich, Lu 2018, section 3)."""
    return var_m / mean_d**2 + var_d * mean_m**2 / mean_d**4 - 2.0 * cov_m_d * mean_m / mean_d**3


@dataclass(frozen=True)
class RatioStatistic:
    """A ratio metric sum(m) / sum(d) over n units, e.g. revenue per converting customer.

    ``variance`` is the per-unit delta-method variance of mean(m) / mean(d), so that
    ``variance / n`` is the variance of the ratio estimate (Deng, Knoblich, Lu 2018).
    """

    m: MomentStatistic
    d: MomentStatistic
    m_d_sum_of_products: float
    n: int

    @property
    def mean(self) -> float:
        return self.m.sum / self.d.sum if self.d.sum != 0 else 0.0

    @property
    def unadjusted_mean(self) -> float:
        return self.mean

    @property
    def covariance(self) -> float:
        return covariance(self.m, self.d, self.m_d_sum_of_products, self.n)

    @property
    def variance(self) -> float:
        if self.d.mean == 0 or self.n <= 1:
            return 0.0
        v = variance_of_ratio(
            self.m.mean, self.m.variance, self.d.mean, self.d.variance, self.covariance
        )
        return max(v, 0.0)

    def __add__(self, other: RatioStatistic) -> RatioStatistic:
        if not isinstance(other, RatioStatistic):
            return NotImplemented
        return RatioStatistic(
            m=self.m + other.m,
            d=self.d + other.d,
            m_d_sum_of_products=self.m_d_sum_of_products + other.m_d_sum_of_products,
            n=self.n + other.n,
        )

    @classmethod
    def from_arrays(cls, m: np.ndarray, d: np.ndarray) -> RatioStatistic:
        m = np.asarray(m, dtype=float)
        d = np.asarray(d, dtype=float)
        return cls(
            m=SampleMeanStatistic.from_array(m),
            d=SampleMeanStatistic.from_array(d),
            m_d_sum_of_products=float(m @ d),
            n=int(m.size),
        )


@dataclass(frozen=True)
class RegressionAdjustedStatistic:
    """A metric (``post``) with a pre-exposure covariate (``pre``) for CUPED.

    With theta set, ``mean`` is the adjusted mean post - theta * pre and ``variance`` is
    Var(post) + theta^2 Var(pre) - 2 theta Cov(post, pre) (Deng, Xu, Kohavi, Walker 2013).
    ``theta`` is None until the arms are pooled by :func:`experiments.stats.cuped.pooled_theta`;
    ``None`` means no adjustment. ``__add__`` drops theta because it must be re-estimated.
    """

    post: MomentStatistic
    pre: MomentStatistic
    post_pre_sum_of_products: float
    n: int
    theta: float | None = None

    @property
    def _theta(self) -> float:
        return self.theta or 0.0

    @property
    def covariance(self) -> float:
        return covariance(self.post, self.pre, self.post_pre_sum_of_products, self.n)

    @property
    def mean(self) -> float:
        return self.post.mean - self._theta * self.pre.mean

    @property
    def unadjusted_mean(self) -> float:
        return self.post.mean

    @property
    def unadjusted_variance(self) -> float:
        return self.post.variance

    @property
    def variance(self) -> float:
        if self.n <= 1:
            return 0.0
        t = self._theta
        v = self.post.variance + t**2 * self.pre.variance - 2.0 * t * self.covariance
        return max(v, 0.0)

    def with_theta(self, theta: float | None) -> RegressionAdjustedStatistic:
        return replace(self, theta=theta)

    def __add__(self, other: RegressionAdjustedStatistic) -> RegressionAdjustedStatistic:
        if not isinstance(other, RegressionAdjustedStatistic):
            return NotImplemented
        return RegressionAdjustedStatistic(
            post=self.post + other.post,
            pre=self.pre + other.pre,
            post_pre_sum_of_products=self.post_pre_sum_of_products + other.post_pre_sum_of_products,
            n=self.n + other.n,
            theta=None,
        )

    @classmethod
    def from_arrays(
        cls, post: np.ndarray, pre: np.ndarray, binomial: bool = False
    ) -> RegressionAdjustedStatistic:
        post = np.asarray(post, dtype=float)
        pre = np.asarray(pre, dtype=float)
        post_stat: MomentStatistic = (
            ProportionStatistic.from_array(post)
            if binomial
            else SampleMeanStatistic.from_array(post)
        )
        return cls(
            post=post_stat,
            pre=SampleMeanStatistic.from_array(pre),
            post_pre_sum_of_products=float(post @ pre),
            n=int(post.size),
        )


Statistic = SampleMeanStatistic | ProportionStatistic | RatioStatistic | RegressionAdjustedStatistic
