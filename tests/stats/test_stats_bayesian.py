"""Bayesian test: conjugate update, chance to win and expected loss against scipy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from experiments.stats.bayesian import GaussianPrior, bayesian_test
from experiments.stats.effect import effect_moments
from experiments.stats.frequentist import two_sided_test
from experiments.stats.statistics import ProportionStatistic, SampleMeanStatistic

C, T = ProportionStatistic(8000, 800), ProportionStatistic(8000, 870)


def test_flat_prior_posterior_is_the_likelihood() -> None:
    b, f = bayesian_test(C, T), two_sided_test(C, T)
    for be, fe in ((b.abs, f.abs), (b.rel, f.rel)):
        assert be.estimate == pytest.approx(fe.estimate)
        assert (be.ci_low, be.ci_high) == pytest.approx((fe.ci_low, fe.ci_high))
        assert be.p_value is None
    # P(lift > 0) under the flat prior is 1 - one-sided p-value
    assert b.chance_to_win == pytest.approx(1 - f.rel.p_value / 2)


def test_proper_prior_is_the_normal_normal_conjugate_update() -> None:
    prior = GaussianPrior(mean=0.02, variance=0.05**2, proper=True)
    b = bayesian_test(C, T, prior=prior)
    m = effect_moments(C, T, relative=True)
    v = m.standard_error**2
    post_var = 1 / (1 / v + 1 / prior.variance)
    post_mean = post_var * (m.estimate / v + prior.mean / prior.variance)
    assert b.rel.estimate == pytest.approx(post_mean)
    lo, hi = stats.norm.interval(0.95, post_mean, np.sqrt(post_var))
    assert (b.rel.ci_low, b.rel.ci_high) == pytest.approx((lo, hi))
    assert b.chance_to_win == pytest.approx(stats.norm.sf(0, post_mean, np.sqrt(post_var)))


def test_absolute_scale_uses_the_prior_rescaled_by_the_control_mean() -> None:
    prior = GaussianPrior(mean=0.0, variance=0.1**2, proper=True)
    rel = bayesian_test(C, T, prior=prior, prior_type="relative")
    absolute = bayesian_test(
        C, T, prior=GaussianPrior(0.0, (0.1 * C.mean) ** 2, True), prior_type="absolute"
    )
    assert rel.abs.estimate == pytest.approx(absolute.abs.estimate)
    assert rel.rel.estimate == pytest.approx(absolute.rel.estimate)


@pytest.mark.parametrize(("mu", "sd"), [(0.01, 0.02), (-0.03, 0.01), (0.0, 0.5), (0.2, 0.01)])
def test_expected_loss_matches_numerical_integration(mu: float, sd: float) -> None:
    from experiments.stats.bayesian import Posterior

    loss, _ = integrate.quad(lambda x: -x * stats.norm.pdf(x, mu, sd), -np.inf, 0)
    assert Posterior(mu, sd).expected_loss() == pytest.approx(loss, rel=1e-6, abs=1e-12)
    assert Posterior(mu, sd).chance_to_win() == pytest.approx(stats.norm.sf(0, mu, sd))


def test_proper_prior_shrinks_towards_prior_mean() -> None:
    flat = bayesian_test(C, T)
    tight = bayesian_test(C, T, prior=GaussianPrior(0.0, 0.01**2, True))
    assert abs(tight.rel.estimate) < abs(flat.rel.estimate)
    assert tight.rel.ci_high - tight.rel.ci_low < flat.rel.ci_high - flat.rel.ci_low


def test_bad_prior_is_rejected() -> None:
    with pytest.raises(ValueError, match="variance > 0"):
        bayesian_test(C, T, prior=GaussianPrior(0.0, 0.0, True))
    with pytest.raises(ValueError, match="prior_type"):
        bayesian_test(C, T, prior_type="log")  # type: ignore[arg-type]


def test_undefined_input_gives_nones() -> None:
    r = bayesian_test(ProportionStatistic(100, 0), ProportionStatistic(100, 0))
    assert r.chance_to_win is None and r.expected_loss is None
    assert r.rel.ci_low is None


@settings(max_examples=100, deadline=None)
@given(
    n=st.integers(20, 100_000),
    mean=st.floats(1.0, 100.0),
    sd=st.floats(0.1, 30.0),
    lift=st.floats(-0.5, 0.5),
    prior_sd=st.floats(0.01, 1.0),
    proper=st.booleans(),
)
def test_credible_interval_contains_posterior_mean_and_probabilities_are_valid(
    n: int, mean: float, sd: float, lift: float, prior_sd: float, proper: bool
) -> None:
    def stat(mu: float) -> SampleMeanStatistic:
        return SampleMeanStatistic(n, n * mu, (n - 1) * sd**2 + n * mu**2)

    r = bayesian_test(
        stat(mean), stat(mean * (1 + lift)), prior=GaussianPrior(0.0, prior_sd**2, proper)
    )
    for e in (r.abs, r.rel):
        assert e.ci_low <= e.estimate <= e.ci_high
    assert 0.0 <= r.chance_to_win <= 1.0
    assert r.expected_loss >= 0.0
