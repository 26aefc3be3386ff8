"""CUPED: theta is the regression slope pooled over the two arms of each comparison;
variance shrinks; the estimate is unbiased."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from experiments.stats.aggregate import MetricSpec
from experiments.stats.analysis import analyze
from experiments.stats.cuped import adjust_pair, pooled_theta, variance_reduction
from experiments.stats.frequentist import two_sided_test
from experiments.stats.statistics import ProportionStatistic, RegressionAdjustedStatistic


def _arms(rng: np.random.Generator, n: int, effect: float, noise: float = 1.0):
    pre = rng.gamma(2.0, 2.0, size=(2, n))
    post = 1.0 + 0.8 * pre + rng.normal(0.0, noise, size=(2, n))
    post[1] += effect
    return pre, post


def _pair(pre: np.ndarray, post: np.ndarray, binomial: bool = False):
    """Control (row 0) and treatment (row 1), adjusted with their pooled theta."""
    return adjust_pair(
        *(RegressionAdjustedStatistic.from_arrays(post[i], pre[i], binomial) for i in range(2))
    )


def test_theta_is_the_pooled_ols_slope() -> None:
    pre, post = _arms(np.random.default_rng(0), 3000, effect=0.0)
    stats = [RegressionAdjustedStatistic.from_arrays(post[i], pre[i]) for i in range(2)]
    slope = np.polyfit(pre.ravel(), post.ravel(), 1)[0]
    assert pooled_theta(stats) == pytest.approx(slope, rel=1e-6)


def test_variance_reduction_is_squared_correlation() -> None:
    pre, post = _arms(np.random.default_rng(1), 20_000, effect=0.3)
    c, t = _pair(pre, post)
    rho2 = np.corrcoef(pre.ravel(), post.ravel())[0, 1] ** 2
    vr = variance_reduction(c, t)
    assert vr == pytest.approx(rho2, abs=0.01)
    adjusted = two_sided_test(c, t)
    unadjusted = two_sided_test(c.with_theta(None), t.with_theta(None))
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
        r = two_sided_test(*_pair(pre, post))
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
    c, t = _pair(pre, post, binomial=True)
    assert isinstance(c.post, ProportionStatistic)
    assert 0.0 < variance_reduction(c, t) < 1.0


def test_no_correlation_or_no_variance_means_no_adjustment() -> None:
    s = RegressionAdjustedStatistic.from_arrays(np.array([1.0, 2.0, 3.0]), np.ones(3))
    assert pooled_theta([s, s]) == 0.0
    assert variance_reduction(s.with_theta(0.0), s.with_theta(0.0)) == pytest.approx(0.0)


# ------------------------------------------------------------------------ more than two arms


def _abn_arms(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Control, a treatment that shifts the metric, one that changes its slope on pre."""
    pre = rng.gamma(2.0, 2.0, size=(3, n))
    slope = np.array([[0.8], [0.8], [2.0]])
    shift = np.array([[1.0], [1.5], [1.0]])
    return pre, shift + slope * pre + rng.normal(0.0, 1.0, size=(3, n))


def test_theta_is_pooled_per_comparison_with_more_than_two_arms() -> None:
    pre, post = _abn_arms(np.random.default_rng(4), 5_000)
    stats = [RegressionAdjustedStatistic.from_arrays(post[i], pre[i]) for i in range(3)]
    all_arms = pooled_theta(stats)
    for arm in (1, 2):
        c, t = adjust_pair(stats[0], stats[arm])
        rows = [0, arm]  # the OLS slope over the control's and this treatment's units only
        slope = np.polyfit(pre[rows].ravel(), post[rows].ravel(), 1)[0]
        assert c.theta == t.theta
        assert c.theta == pytest.approx(slope, rel=1e-9)
        assert abs(c.theta - all_arms) > 0.1  # about 0.8 and 1.4 against 1.2 over all arms


def test_a_comparison_in_an_abn_report_does_not_depend_on_the_other_arms() -> None:
    pre, post = _abn_arms(np.random.default_rng(5), 4_000)
    arm = np.repeat(["control", "shift", "slope"], pre.shape[1])
    table = pa.table({"arm": arm, "y": post.ravel(), "x": pre.ravel()})
    spec = MetricSpec("y", "y", "mean", covariate_column="x")
    for row in analyze(table, "arm", "control", [spec])["results"]:
        alone = table.filter(pc.is_in(table["arm"], pa.array(["control", row["arm"]])))
        expected = analyze(alone, "arm", "control", [spec])["results"][0]
        assert row["abs"] == pytest.approx(expected["abs"], rel=1e-9)
        assert row["rel"] == pytest.approx(expected["rel"], rel=1e-9)
        assert row["variance_reduction"] == pytest.approx(expected["variance_reduction"], rel=1e-9)
