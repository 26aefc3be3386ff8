"""Power planning against statsmodels, and simulated power at the planned n."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.stats.power import NormalIndPower, TTestIndPower
from statsmodels.stats.proportion import proportion_effectsize

from experiments.stats.frequentist import two_sided_test
from experiments.stats.power import duration_days, sample_size_per_arm, standardized_effect
from experiments.stats.statistics import ProportionStatistic, SampleMeanStatistic


def test_binomial_matches_statsmodels() -> None:
    h = proportion_effectsize(0.055, 0.05)
    expected = NormalIndPower().solve_power(h, alpha=0.05, power=0.9)
    assert sample_size_per_arm("binomial", 0.05, 0.10, power=0.9) == int(np.ceil(expected))
    assert sample_size_per_arm("binomial", 0.05, 0.005, relative=False, power=0.9) == int(
        np.ceil(expected)
    )


def test_mean_matches_statsmodels_and_the_t_test() -> None:
    n = sample_size_per_arm("mean", baseline=20.0, mde=0.05, std=10.0)
    assert n == int(np.ceil(NormalIndPower().solve_power(0.1, alpha=0.05, power=0.8)))
    assert abs(n - TTestIndPower().solve_power(0.1, alpha=0.05, power=0.8)) < 3


def test_smaller_effects_need_more_units() -> None:
    sizes = [sample_size_per_arm("binomial", 0.1, mde) for mde in (0.2, 0.1, 0.05)]
    assert sizes[0] < sizes[1] < sizes[2]
    assert sizes[2] == pytest.approx(4 * sizes[1], rel=0.05)


def test_duration() -> None:
    assert duration_days(10_000, daily_traffic=3_000, n_arms=3) == 10
    assert duration_days(1, daily_traffic=10) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "binomial", "baseline": 1.2, "mde": 0.1}, r"must be in \(0, 1\)"),
        ({"kind": "binomial", "baseline": 0.95, "mde": 0.1}, r"must be in \(0, 1\)"),
        ({"kind": "mean", "baseline": 1.0, "mde": 0.1}, "need std > 0"),
        ({"kind": "median", "baseline": 1.0, "mde": 0.1}, "kind must be"),
    ],
)
def test_bad_plans_are_rejected(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        standardized_effect(**kwargs)
    with pytest.raises(ValueError, match="daily_traffic > 0"):
        duration_days(100, daily_traffic=0)


@pytest.mark.slow
def test_simulated_power_at_planned_n_binomial() -> None:
    n = sample_size_per_arm("binomial", baseline=0.10, mde=0.10, power=0.8)
    rng = np.random.default_rng(5)
    sims = 4000
    c, t = rng.binomial(n, 0.10, sims), rng.binomial(n, 0.11, sims)
    hits = sum(
        two_sided_test(ProportionStatistic(n, int(a)), ProportionStatistic(n, int(b))).abs.p_value
        < 0.05
        for a, b in zip(c, t, strict=True)
    )
    assert hits / sims == pytest.approx(0.8, abs=0.03)


@pytest.mark.slow
def test_simulated_power_at_planned_n_mean() -> None:
    """Normal data drawn through its exact sufficient statistics (mean, chi-square)."""
    mu, sd = 50.0, 20.0
    n = sample_size_per_arm("mean", baseline=mu, mde=0.04, std=sd, power=0.9)
    rng = np.random.default_rng(6)
    sims = 4000

    def draw(m: float) -> list[SampleMeanStatistic]:
        means = rng.normal(m, sd / np.sqrt(n), sims)
        ss_dev = sd**2 * rng.chisquare(n - 1, sims)
        return [
            SampleMeanStatistic(n, n * a, s + n * a**2) for a, s in zip(means, ss_dev, strict=True)
        ]

    hits = sum(
        two_sided_test(a, b).abs.p_value < 0.05
        for a, b in zip(draw(mu), draw(mu * 1.04), strict=True)
    )
    assert hits / sims == pytest.approx(0.9, abs=0.025)
