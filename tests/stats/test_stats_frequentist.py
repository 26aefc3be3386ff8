"""Frequentist test against statsmodels, and the laws its intervals obey."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from statsmodels.stats import proportion as smp
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from experiments.stats.effect import effect_moments
from experiments.stats.frequentist import two_sided_test
from experiments.stats.statistics import (
    ProportionStatistic,
    RatioStatistic,
    SampleMeanStatistic,
)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_means_match_statsmodels_unequal_variance_ztest(seed: int) -> None:
    rng = np.random.default_rng(seed)
    control = rng.gamma(2.0, 10.0, 3000)
    treatment = rng.gamma(2.0, 10.5, 2500) + rng.normal(0, 5, 2500)
    r = two_sided_test(
        SampleMeanStatistic.from_array(control), SampleMeanStatistic.from_array(treatment)
    )
    cm = CompareMeans(DescrStatsW(treatment), DescrStatsW(control))
    _, p = cm.ztest_ind(usevar="unequal")
    lo, hi = cm.zconfint_diff(alpha=0.05, usevar="unequal")
    assert r.abs.estimate == pytest.approx(treatment.mean() - control.mean())
    assert r.abs.p_value == pytest.approx(p, rel=1e-9)
    assert (r.abs.ci_low, r.abs.ci_high) == pytest.approx((lo, hi), rel=1e-9)


@pytest.mark.parametrize(("c", "t"), [(500, 560), (100, 100), (1200, 1100)])
def test_proportions_match_statsmodels_wald(c: int, t: int) -> None:
    n_c, n_t = 10_000, 9_800
    r = two_sided_test(ProportionStatistic(n_c, c), ProportionStatistic(n_t, t), alpha=0.1)
    res = smp.test_proportions_2indep(t, n_t, c, n_c, method="wald", compare="diff")
    lo, hi = smp.confint_proportions_2indep(
        t, n_t, c, n_c, method="wald", compare="diff", alpha=0.1
    )
    assert r.abs.estimate == pytest.approx(t / n_t - c / n_c)
    assert r.abs.p_value == pytest.approx(res.pvalue, rel=1e-9)
    assert (r.abs.ci_low, r.abs.ci_high) == pytest.approx((lo, hi), rel=1e-9)


def test_relative_ci_covers_the_true_lift() -> None:
    """Delta-method interval for the relative lift: ~95 % coverage in simulation."""
    rng = np.random.default_rng(7)
    sims, n, p_c, p_t = 3000, 4000, 0.10, 0.11
    c = rng.binomial(n, p_c, sims)
    t = rng.binomial(n, p_t, sims)
    true_lift = p_t / p_c - 1
    covered = 0
    for ci, ti in zip(c, t, strict=True):
        r = two_sided_test(ProportionStatistic(n, int(ci)), ProportionStatistic(n, int(ti)))
        covered += r.rel.ci_low <= true_lift <= r.rel.ci_high
    assert 0.93 <= covered / sims <= 0.97


def test_relative_p_value_is_uniform_under_the_null() -> None:
    rng = np.random.default_rng(8)
    sims, n = 4000, 2000
    c, t = rng.binomial(n, 0.2, sims), rng.binomial(n, 0.2, sims)
    p = np.array(
        [
            two_sided_test(
                ProportionStatistic(n, int(a)), ProportionStatistic(n, int(b))
            ).rel.p_value
            for a, b in zip(c, t, strict=True)
        ]
    )
    assert 0.04 <= np.mean(p < 0.05) <= 0.06
    assert 0.18 <= np.mean(p < 0.2) <= 0.22


def test_ratio_metric_interval_covers_the_population_ratio() -> None:
    """Revenue per converting customer, by the delta method, has ~95 % coverage."""
    rng = np.random.default_rng(9)
    sims, n = 600, 2000
    covered = 0
    for _ in range(sims):
        dc, dt = (rng.random((2, n)) < 0.2).astype(float)
        mc = dc * rng.gamma(2.0, 25.0, n)
        mt = dt * rng.gamma(2.0, 25.0, n)
        r = two_sided_test(RatioStatistic.from_arrays(mc, dc), RatioStatistic.from_arrays(mt, dt))
        covered += r.abs.ci_low <= 0.0 <= r.abs.ci_high
    assert 0.92 <= covered / sims <= 0.98


def test_undefined_effects_are_none_not_nan() -> None:
    zero = ProportionStatistic(100, 0)
    r = two_sided_test(zero, ProportionStatistic(100, 0))
    assert r.abs.estimate == 0.0 and r.abs.p_value is None and r.abs.ci_low is None
    assert r.rel.to_dict() == {"estimate": None, "ci_low": None, "ci_high": None, "p_value": None}
    empty = two_sided_test(ProportionStatistic(0, 0), ProportionStatistic(10, 3))
    assert empty.abs.to_dict()["p_value"] is None


counts = st.integers(min_value=2, max_value=100_000)


@settings(max_examples=200, deadline=None)
@given(
    n_c=counts,
    n_t=counts,
    p_c=st.floats(0.001, 0.999),
    p_t=st.floats(0.001, 0.999),
    alpha=st.floats(0.001, 0.5),
)
def test_ci_contains_estimate_and_agrees_with_p_value(
    n_c: int, n_t: int, p_c: float, p_t: float, alpha: float
) -> None:
    c = ProportionStatistic(n_c, round(p_c * n_c))
    t = ProportionStatistic(n_t, round(p_t * n_t))
    r = two_sided_test(c, t, alpha)
    for e in (r.abs, r.rel):
        if e.p_value is None:
            continue
        assert e.ci_low <= e.estimate <= e.ci_high
        assert 0.0 <= e.p_value <= 1.0
        excludes_zero = e.ci_low > 0 or e.ci_high < 0
        if abs(e.p_value - alpha) > 1e-9:
            assert excludes_zero == (e.p_value < alpha)


@settings(max_examples=100, deadline=None)
@given(
    a=st.tuples(counts, st.floats(0.0, 100.0), st.floats(0.1, 50.0)),
    b=st.tuples(counts, st.floats(0.0, 100.0), st.floats(0.1, 50.0)),
)
def test_swapping_arms_negates_the_absolute_effect(a: tuple, b: tuple) -> None:
    def stat(n: int, mean: float, sd: float) -> SampleMeanStatistic:
        return SampleMeanStatistic(n, n * mean, (n - 1) * sd**2 + n * mean**2)

    sa, sb = stat(*a), stat(*b)
    ab, ba = two_sided_test(sa, sb), two_sided_test(sb, sa)
    assert ab.abs.estimate == pytest.approx(-ba.abs.estimate, abs=1e-9)
    assert ab.abs.p_value == pytest.approx(ba.abs.p_value, abs=1e-9)
    assert effect_moments(sa, sb).standard_error == pytest.approx(
        effect_moments(sb, sa).standard_error
    )
