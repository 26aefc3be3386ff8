"""Sample ratio mismatch, checked without the scipy call the code makes.

A published example, Pearson statistics worked by hand with closed-form tails, laws, and
seeded simulations of the false-alarm rate of a healthy split and of the detection rate of a
broken one against the noncentral chi-square power.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chi2, ncx2

from experiments.stats.srm import SRM_THRESHOLD, srm_check


def test_kohavi_tang_xu_example() -> None:
    # Kohavi, Tang, Xu (2020), "Trustworthy Online Controlled Experiments", ch. 3 (sample
    # ratio mismatch): 821,588 control vs 815,482 treatment users on a 50/50 design, a
    # ratio of 0.993, has p-value 1.8e-6.
    r = srm_check({"control": 821_588, "treatment": 815_482})
    assert r.p_value == pytest.approx(1.8e-6, rel=0.05)
    assert r.flag


def test_two_arms_by_hand() -> None:
    # 60 / 40 against 50 / 50: X^2 = 2 x 10^2 / 50 = 4 on 1 df, p = P(|Z| > 2) = erfc(2 / sqrt 2)
    r = srm_check({"a": 60, "b": 40})
    assert r.p_value == pytest.approx(math.erfc(2 / math.sqrt(2)), rel=1e-9)
    assert not r.flag


def test_three_arms_by_hand() -> None:
    # 110 / 90 / 100 against 1:1:1: X^2 = (100 + 100 + 0) / 100 = 2 on 2 df, whose tail is
    # exactly exp(-X^2 / 2)
    assert srm_check({"a": 110, "b": 90, "c": 100}).p_value == pytest.approx(
        math.exp(-1.0), rel=1e-9
    )
    # 1000 / 2100 / 950 against 1:2:1 (expected 1012.5 / 2025 / 1012.5)
    x2 = 12.5**2 / 1012.5 + 75**2 / 2025 + 62.5**2 / 1012.5
    r = srm_check({"a": 1000, "b": 2100, "c": 950}, {"a": 1, "b": 2, "c": 1})
    assert r.p_value == pytest.approx(math.exp(-x2 / 2), rel=1e-9)
    assert r.expected_share == pytest.approx({"a": 0.25, "b": 0.5, "c": 0.25})


def test_flags_a_broken_split_and_not_a_healthy_one() -> None:
    assert srm_check({"a": 50_800, "b": 49_200}).flag
    assert not srm_check({"a": 50_100, "b": 49_900}).flag


# ------------------------------------------------------------------------------------- laws

counts = st.integers(1, 100_000)


@settings(max_examples=50, deadline=None)
@given(a=counts, b=counts, c=counts, wa=st.integers(1, 5), wb=st.integers(1, 5))
def test_arm_order_and_weight_scale_do_not_matter(a: int, b: int, c: int, wa: int, wb: int):
    p = srm_check({"a": a, "b": b, "c": c}, {"a": wa, "b": wb, "c": 1}).p_value
    reordered = srm_check({"c": c, "a": a, "b": b}, {"c": 10, "b": 10 * wb, "a": 10 * wa})
    assert reordered.p_value == pytest.approx(p, rel=1e-9, abs=1e-300)


@settings(max_examples=50, deadline=None)
@given(a=st.integers(1, 10_000), b=st.integers(1, 10_000), factor=st.integers(2, 50))
def test_the_same_shares_on_more_units_are_stronger_evidence(a: int, b: int, factor: int):
    small = srm_check({"a": a, "b": b}).p_value
    large = srm_check({"a": factor * a, "b": factor * b}).p_value
    if a == b:
        assert small == large == 1.0
    else:
        assert large < small or large == small == 0.0  # both beyond double precision


@given(n=st.integers(1, 10**6), weights=st.lists(st.integers(1, 9), min_size=2, max_size=5))
def test_counts_exactly_on_the_weights_are_not_flagged(n: int, weights: list[int]) -> None:
    arms = {f"arm{i}": w for i, w in enumerate(weights)}
    r = srm_check({arm: n * w for arm, w in arms.items()}, arms)
    assert r.p_value == pytest.approx(1.0)
    assert not r.flag


# ------------------------------------------------------------------------------- simulation

SHARES = {"a": 0.5, "b": 0.3, "c": 0.2}


def simulated_p_values(true_shares: list[float], n: int, runs: int, seed: int) -> np.ndarray:
    counts = np.random.default_rng(seed).multinomial(n, true_shares, size=runs)
    return np.array(
        [srm_check(dict(zip(SHARES, map(int, row), strict=True)), SHARES).p_value for row in counts]
    )


def binomial_bound(rate: float, runs: int) -> float:
    """Tolerance of an observed rate: 4 binomial standard errors."""
    return 4 * math.sqrt(rate * (1 - rate) / runs)


def test_false_alarm_rate_of_a_healthy_split_is_alpha() -> None:
    runs = 2_000
    p = simulated_p_values(list(SHARES.values()), 10_000, runs, seed=0)
    for level in (0.01, 0.05, 0.2, 0.5):
        assert np.mean(p < level) == pytest.approx(level, abs=binomial_bound(level, runs))
    # the flag's own rate: 2 expected in 2,000; 9 or more has probability < 1e-4
    assert np.sum(p < SRM_THRESHOLD) <= 8


def test_detection_rate_of_a_broken_split_is_the_noncentral_chi_square_power() -> None:
    # Configured 50/30/20, delivered 49/31/20: Pearson's X^2 is noncentral chi-square with 2 df
    # and lambda = n sum (true - configured)^2 / configured (Cochran 1952, "The chi-square
    # test of goodness of fit", Ann. Math. Stat.), so the flag's power is known.
    n, runs, broken = 40_000, 1_000, [0.49, 0.31, 0.20]
    noncentrality = n * sum((t - s) ** 2 / s for t, s in zip(broken, SHARES.values(), strict=True))
    power = float(ncx2.sf(chi2.isf(SRM_THRESHOLD, 2), 2, noncentrality))
    assert 0.3 < power < 0.9  # a mismatch that is neither always nor never caught
    flagged = simulated_p_values(broken, n, runs, seed=1) < SRM_THRESHOLD
    assert flagged.mean() == pytest.approx(power, abs=binomial_bound(power, runs))


def test_configured_arm_without_units_counts_as_zero() -> None:
    r = srm_check({"a": 1000}, {"a": 1, "b": 1})
    assert r.observed == {"a": 1000, "b": 0}
    assert r.flag


def test_observed_arm_missing_from_weights_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"arm\(s\) \['c'\] observed"):
        srm_check({"a": 10, "c": 10}, {"a": 1, "b": 1})
    with pytest.raises(ValueError, match="weights must be > 0"):
        srm_check({"a": 10, "b": 10}, {"a": 1, "b": 0})
