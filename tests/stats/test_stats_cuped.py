"""CUPED: theta is the pooled regression slope; variance shrinks; the estimate is unbiased."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.stats.cuped import adjust, pooled_theta, variance_reduction
from experiments.stats.frequentist import two_sided_test
from experiments.stats.statistics import ProportionStatistic, RegressionAdjustedStatistic


def _arms(rng: np.random.Generator, n: int, effect: float, noise: float = 1.0):
    pre = rng.gamma(2.0, 2.0, size=(2, n))
    post = 1.0 + 0.8 * pre + rng.normal(0.0, noise, size=(2, n))
    post[1] += effect
    return pre, post


def test_theta_is_the_pooled_ols_slope() -> None:
    pre, post = _arms(np.random.default_rng(0), 3000, effect=0.0)
    stats = [RegressionAdjustedStatistic.from_arrays(post[i], pre[i]) for i in range(2)]
    slope = np.polyfit(pre.ravel(), post.ravel(), 1)[0]
    assert pooled_theta(stats) == pytest.approx(slope, rel=1e-6)


def test_variance_reduction_is_squared_correlation() -> None:
    pre, post = _arms(np.random.default_rng(1), 20_000, effect=0.3)
    arms = adjust(
        {a: RegressionAdjustedStatistic.from_arrays(post[i], pre[i]) for i, a in enumerate("ct")}
    )
    rho2 = np.corrcoef(pre.ravel(), post.ravel())[0, 1] ** 2
    vr = variance_reduction(arms["c"], arms["t"])
    assert vr == pytest.approx(rho2, abs=0.01)
    adjusted = two_sided_test(arms["c"], arms["t"])
    unadjusted = two_sided_test(arms["c"].with_theta(None), arms["t"].with_theta(None))
    width = adjusted.abs.ci_high - adjusted.abs.ci_low
    assert width == pytest.approx(
        (unadjusted.abs.ci_high - unadjusted.abs.ci_low) * np.sqrt(1 - vr)
    )


def test_adjusted_estimate_is_unbiased_and_less_variable_in_simulation() -> None:
    rng = np.random.default_rng(2)
    sims, n, effect = 2000, 300, 0.25
    adjusted, raw, covered = [], [], 0
    for _ in range(sims):
        pre, post = _arms(rng, n, effect, noise=1.5)
        arms = adjust(
            {
                a: RegressionAdjustedStatistic.from_arrays(post[i], pre[i])
                for i, a in enumerate("ct")
            }
        )
        r = two_sided_test(arms["c"], arms["t"])
        adjusted.append(r.abs.estimate)
        raw.append(post[1].mean() - post[0].mean())
        covered += r.abs.ci_low <= effect <= r.abs.ci_high
    adjusted, raw = np.array(adjusted), np.array(raw)
    se_of_mean = adjusted.std() / np.sqrt(sims)
    assert abs(adjusted.mean() - effect) < 4 * se_of_mean
    assert adjusted.var() < 0.7 * raw.var()
    assert 0.93 <= covered / sims <= 0.97


def test_binomial_metric_with_a_covariate() -> None:
    rng = np.random.default_rng(3)
    pre = rng.gamma(2.0, 2.0, size=(2, 5000))
    post = (rng.random((2, 5000)) < 0.05 + 0.04 * (pre > 4)).astype(float)
    arms = adjust(
        {
            a: RegressionAdjustedStatistic.from_arrays(post[i], pre[i], binomial=True)
            for i, a in enumerate("ct")
        }
    )
    assert isinstance(arms["c"].post, ProportionStatistic)
    assert 0.0 < variance_reduction(arms["c"], arms["t"]) < 1.0


def test_no_correlation_or_no_variance_means_no_adjustment() -> None:
    s = RegressionAdjustedStatistic.from_arrays(np.array([1.0, 2.0, 3.0]), np.ones(3))
    assert pooled_theta([s, s]) == 0.0
    assert variance_reduction(s.with_theta(0.0), s.with_theta(0.0)) == pytest.approx(0.0)
