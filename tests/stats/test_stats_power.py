"""Power planning, checked without the statsmodels solver the code calls.

Independent checks: published sample sizes (Cohen 1992), the closed-form normal
approximation and the z-test's power computed with the standard library, laws of the plan,
and simulated A/B tests at the planned size, run with the test this package reports.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from experiments.stats.frequentist import two_sided_test
from experiments.stats.power import duration_days, sample_size_per_arm, standardized_effect
from experiments.stats.statistics import ProportionStatistic, SampleMeanStatistic

STANDARD_NORMAL = NormalDist()
effects = st.floats(0.005, 0.5)  # standardized: plans of a dozen units per arm or more


def normal_approximation(d: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """n per arm = 2 (z_{1-alpha/2} + z_{power})^2 / d^2, the two-sample z-test's size.

    Kohavi, Tang, Xu (2020), "Trustworthy Online Controlled Experiments", ch. 17; van Belle
    (2008), "Statistical Rules of Thumb", 2nd ed., rule 2.3 rounds it to 16 / d^2 for
    alpha = 0.05 and power = 0.8. It omits the far tail's rejections, negligible unless the
    power is near 0.5.
    """
    z = STANDARD_NORMAL.inv_cdf(1 - alpha / 2) + STANDARD_NORMAL.inv_cdf(power)
    return 2 * z**2 / d**2


def proportion_with_cohens_h(p0: float, h: float) -> float:
    """p1 with 2 asin(sqrt(p1)) - 2 asin(sqrt(p0)) = h."""
    return math.sin(math.asin(math.sqrt(p0)) + h / 2) ** 2


# Cohen (1992), "A Power Primer", Psychological Bulletin 112(1), Table 2, alpha = .05
# two-sided, power = .80, small / medium / large effects, units per group (rounded to the
# nearest unit): test 1, difference of means (t-test), and test 5, difference of proportions
# (normal test on Cohen's h).
COHEN_1992_MEANS = {0.2: 393, 0.5: 64, 0.8: 26}
COHEN_1992_PROPORTIONS = {0.2: 392, 0.5: 63, 0.8: 25}


@pytest.mark.parametrize(("h", "published"), COHEN_1992_PROPORTIONS.items())
def test_proportions_match_cohens_table(h: float, published: int) -> None:
    p1 = proportion_with_cohens_h(0.5, h)
    n = sample_size_per_arm("binomial", baseline=0.5, mde=p1 - 0.5, relative=False)
    assert 0 <= n - published <= 1  # we round up, Cohen to the nearest unit


@pytest.mark.parametrize(("d", "published"), COHEN_1992_MEANS.items())
def test_means_are_at_most_cohens_t_test_sizes(d: float, published: int) -> None:
    n = sample_size_per_arm("mean", baseline=100.0, mde=10.0 * d, std=10.0, relative=False)
    # our z-test needs no more units than Cohen's t-test, and at most one fewer here
    assert published - 1 <= n <= published


def test_textbook_plan_is_the_normal_approximation_rounded_up() -> None:
    for d in (0.01, 0.05, 0.1, 0.2):
        n = sample_size_per_arm("mean", 0.0, d, std=1.0, relative=False)
        assert n == math.ceil(normal_approximation(d))
        assert n == pytest.approx(16 / d**2, rel=0.03)  # van Belle's rule of thumb


def z_test_power(d: float, n: int, alpha: float) -> float:
    """Power of the two-sided two-sample z-test with n units per arm, both tails counted."""
    shift = d * math.sqrt(n / 2)
    z = STANDARD_NORMAL.inv_cdf(1 - alpha / 2)
    return STANDARD_NORMAL.cdf(shift - z) + STANDARD_NORMAL.cdf(-shift - z)


@settings(max_examples=60, deadline=None)
@given(
    d=effects,
    alpha=st.floats(0.001, 0.2),
    power=st.floats(0.5, 0.99),
)
def test_plan_is_the_smallest_n_with_the_target_power(d: float, alpha: float, power: float) -> None:
    n = sample_size_per_arm("mean", 0.0, d, std=1.0, alpha=alpha, power=power, relative=False)
    slack = 1e-6  # the solver's root is exact to about this much power
    assert z_test_power(d, n, alpha) >= power - slack
    assert z_test_power(d, n - 1, alpha) < power + slack


def test_binomial_effect_is_cohens_h() -> None:
    # h = 2 asin(sqrt(0.11)) - 2 asin(sqrt(0.10)), worked with the standard library
    h = 2 * math.asin(math.sqrt(0.11)) - 2 * math.asin(math.sqrt(0.10))
    assert standardized_effect("binomial", 0.10, 0.10) == pytest.approx(h, rel=1e-12)
    assert standardized_effect("binomial", 0.10, 0.01, relative=False) == pytest.approx(h)
    assert standardized_effect("mean", 20.0, 0.05, std=10.0) == pytest.approx(0.1)


# ------------------------------------------------------------------------------------- laws

baselines = st.floats(0.02, 0.9)
relative_mdes = st.floats(0.02, 0.5)


@settings(max_examples=60, deadline=None)
@given(baseline=baselines, small=relative_mdes, large=relative_mdes)
def test_smaller_effects_need_more_units(baseline: float, small: float, large: float) -> None:
    small, large = sorted((small, large))
    assume(baseline * (1 + large) < 1)
    assert sample_size_per_arm("binomial", baseline, small) >= sample_size_per_arm(
        "binomial", baseline, large
    )


@settings(max_examples=60, deadline=None)
@given(
    d=effects,
    low=st.floats(0.5, 0.99),
    high=st.floats(0.5, 0.99),
    strict=st.floats(0.001, 0.2),
    loose=st.floats(0.001, 0.2),
)
def test_more_power_or_a_stricter_alpha_needs_more_units(
    d: float, low: float, high: float, strict: float, loose: float
) -> None:
    low, high = sorted((low, high))
    strict, loose = sorted((strict, loose))

    def n(alpha: float, power: float) -> int:
        return sample_size_per_arm(
            "mean", 0.0, d, std=1.0, alpha=alpha, power=power, relative=False
        )

    assert n(0.05, high) >= n(0.05, low)
    assert n(strict, 0.8) >= n(loose, 0.8)


@settings(max_examples=60, deadline=None)
@given(
    baseline=st.floats(1.0, 1e4),
    mde=st.floats(0.01, 0.5),
    d=effects,
    scale=st.floats(1e-3, 1e3),
)
def test_mean_plan_depends_only_on_the_standardized_effect(
    baseline: float, mde: float, d: float, scale: float
) -> None:
    std = baseline * mde / d
    n = sample_size_per_arm("mean", baseline, mde, std=std)
    # a relative mde is the absolute one baseline * mde; rescaling the metric changes nothing;
    # a drop is as hard to detect as a rise (one unit of slack for rounding the effect)
    absolute = sample_size_per_arm("mean", baseline, baseline * mde, std=std, relative=False)
    assert abs(n - absolute) <= 1
    assert abs(n - sample_size_per_arm("mean", scale * baseline, mde, std=scale * std)) <= 1
    assert n == sample_size_per_arm("mean", baseline, -mde, std=std)


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


# ------------------------------------------------------------------------------- simulation

SIMULATED_TESTS = 4_000


def assert_rejection_rate_is(rejections: np.ndarray, power: float) -> None:
    """The share of rejections is ``power`` within 4 binomial standard errors."""
    tolerance = 4 * math.sqrt(power * (1 - power) / len(rejections))
    assert rejections.mean() == pytest.approx(power, abs=tolerance)


def test_simulated_power_at_planned_n_binomial() -> None:
    n = sample_size_per_arm("binomial", baseline=0.10, mde=0.10, power=0.8)
    rng = np.random.default_rng(5)
    control = rng.binomial(n, 0.10, SIMULATED_TESTS)
    treatment = rng.binomial(n, 0.11, SIMULATED_TESTS)
    p_values = np.array(
        [
            two_sided_test(
                ProportionStatistic(n, int(c)), ProportionStatistic(n, int(t))
            ).abs.p_value
            for c, t in zip(control, treatment, strict=True)
        ]
    )
    assert_rejection_rate_is(p_values < 0.05, 0.8)


def test_simulated_power_at_planned_n_mean() -> None:
    """Normal data drawn through its exact sufficient statistics (mean, chi-square)."""
    mu, sd = 50.0, 20.0
    n = sample_size_per_arm("mean", baseline=mu, mde=0.04, std=sd, power=0.9)
    rng = np.random.default_rng(6)

    def draw(m: float) -> list[SampleMeanStatistic]:
        means = rng.normal(m, sd / np.sqrt(n), SIMULATED_TESTS)
        ss_dev = sd**2 * rng.chisquare(n - 1, SIMULATED_TESTS)
        return [
            SampleMeanStatistic(n, n * a, s + n * a**2) for a, s in zip(means, ss_dev, strict=True)
        ]

    p_values = np.array(
        [two_sided_test(a, b).abs.p_value for a, b in zip(draw(mu), draw(mu * 1.04), strict=True)]
    )
    assert_rejection_rate_is(p_values < 0.05, 0.9)


@pytest.mark.parametrize("d", [1.5, 2.0, 3.0, 10.0])
def test_huge_effects_plan_a_few_units_instead_of_failing(d: float) -> None:
    # statsmodels returns NaN below ~2 units per arm; the plan is still the closed form.
    n = sample_size_per_arm("mean", baseline=0.0, mde=d, std=1.0, relative=False)
    assert 2 <= n <= math.ceil(2 * (1.959964 + 0.841621) ** 2 / d**2) + 1
