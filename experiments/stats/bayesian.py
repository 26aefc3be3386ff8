"""Bayesian test: a Gaussian posterior of the effect, chance to win and expected loss.

The likelihood of the effect is the normal approximation used by the frequentist test
(estimate and unpooled, delta-method standard error, see :mod:`experiments.stats.effect`).
The prior is a normal on the effect, stated on the **relative** scale by default (a lift of
``mean`` with variance ``variance``), or on the absolute scale with ``prior_type="absolute"``;
it is rescaled by the control mean for the other scale. ``proper=False`` (the default, as
in gbstats) is the flat prior, so the posterior equals the likelihood. With a proper prior
the normal–normal conjugate update gives

    precision = 1 / v_data + 1 / v_prior,
    mean = (m_data / v_data + m_prior / v_prior) / precision.

From the posterior N(mu, sigma^2) of the relative lift:

- chance to win = P(lift > 0) = Phi(mu / sigma);
- expected loss (risk) of shipping the treatment = E[max(-lift, 0)]
  = sigma phi(mu / sigma) - mu Phi(-mu / sigma), in units of the control mean;
- the credible interval is the central 1 - alpha posterior interval.

This is gbstats' ``EffectBayesianABTest`` (growthbook/growthbook,
``gbstats/bayesian/tests.py``) with the closed form of its truncated-normal risk.

>>> from experiments.stats.statistics import ProportionStatistic
>>> c, t = ProportionStatistic(5000, 500), ProportionStatistic(5000, 580)
>>> r = bayesian_test(c, t)
>>> round(r.chance_to_win, 3), round(r.expected_loss, 5)
(0.992, 0.00019)
>>> r2 = bayesian_test(c, t, prior=GaussianPrior(mean=0.0, variance=0.05**2, proper=True))
>>> r2.rel.estimate < r.rel.estimate  # the proper prior shrinks the lift towards 0
True

References: Gelman et al. (2013), "Bayesian Data Analysis", 3rd ed., section 2.5
(normal mean with known variance); Stucchio (2015), "Bayesian A/B Testing at VWO"
(expected loss as the decision criterion).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from scipy.special import ndtr, ndtri

from experiments.stats.effect import Effect, EffectMoments, effect_moments
from experiments.stats.statistics import Statistic


@dataclass(frozen=True)
class GaussianPrior:
    """Normal prior on the effect; ``proper=False`` means flat (improper)."""

    mean: float = 0.0
    variance: float = 0.3**2
    proper: bool = False


@dataclass(frozen=True)
class BayesianResult:
    """Posterior summaries; ``abs``/``rel`` hold posterior mean and credible interval
    (``p_value`` is None); chance to win and expected loss are for the relative lift."""

    abs: Effect
    rel: Effect
    chance_to_win: float | None
    expected_loss: float | None


@dataclass(frozen=True)
class Posterior:
    mean: float
    sd: float

    def chance_to_win(self) -> float:
        return float(ndtr(self.mean / self.sd))

    def expected_loss(self) -> float:
        z = self.mean / self.sd
        pdf = math.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
        return float(self.sd * pdf - self.mean * ndtr(-z))

    def credible_interval(self, alpha: float) -> tuple[float, float]:
        q = float(ndtri(1.0 - alpha / 2.0))
        return self.mean - q * self.sd, self.mean + q * self.sd


def posterior(moments: EffectMoments, prior: GaussianPrior) -> Posterior | None:
    """Normal–normal update of the effect; None when the likelihood is undefined."""
    if not moments.defined:
        return None
    v_data = moments.standard_error**2
    if not prior.proper:
        return Posterior(moments.estimate, moments.standard_error)
    precision = 1.0 / v_data + 1.0 / prior.variance
    mean = (moments.estimate / v_data + prior.mean / prior.variance) / precision
    return Posterior(mean, math.sqrt(1.0 / precision))


def _rescale(prior: GaussianPrior, factor: float) -> GaussianPrior:
    return GaussianPrior(prior.mean * factor, prior.variance * factor**2, prior.proper)


def _effect(post: Posterior | None, moments: EffectMoments, alpha: float) -> Effect:
    if post is None:
        return Effect(moments.estimate, None, None, None)
    lo, hi = post.credible_interval(alpha)
    return Effect(post.mean, lo, hi, None)


def bayesian_test(
    control: Statistic,
    treatment: Statistic,
    prior: GaussianPrior | None = None,
    prior_type: Literal["relative", "absolute"] = "relative",
    alpha: float = 0.05,
) -> BayesianResult:
    """Posterior of the absolute and relative effect of treatment over control."""
    prior = prior or GaussianPrior()
    if prior.proper and prior.variance <= 0:
        raise ValueError(f"a proper prior needs variance > 0, got {prior.variance}")
    if prior_type not in ("relative", "absolute"):
        raise ValueError(f"prior_type must be 'relative' or 'absolute', got {prior_type!r}")
    base = abs(control.unadjusted_mean)
    if prior_type == "relative":
        rel_prior, abs_prior = prior, _rescale(prior, base)
    else:
        rel_prior = _rescale(prior, 1.0 / base) if base > 0 else prior
        abs_prior = prior
    m_abs = effect_moments(control, treatment, relative=False)
    m_rel = effect_moments(control, treatment, relative=True)
    post_abs = posterior(m_abs, abs_prior)
    post_rel = posterior(m_rel, rel_prior)
    return BayesianResult(
        abs=_effect(post_abs, m_abs, alpha),
        rel=_effect(post_rel, m_rel, alpha),
        chance_to_win=post_rel.chance_to_win() if post_rel else None,
        expected_loss=post_rel.expected_loss() if post_rel else None,
    )
