"""Sequential test: the confidence sequence survives peeking; the naive test does not."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import ndtr

from experiments.stats.frequentist import two_sided_test
from experiments.stats.sequential import (
    anytime_p_value,
    halfwidth,
    mixture_rho,
    sequential_test,
)
from experiments.stats.statistics import ProportionStatistic, SampleMeanStatistic


def _peeked_aa(runs: int, peeks: int, batch: int, p: float, seed: int):
    """Cumulative conversions of ``runs`` A/A experiments looked at ``peeks`` times."""
    rng = np.random.default_rng(seed)
    conv = rng.binomial(batch, p, size=(runs, peeks, 2)).cumsum(axis=1)
    n = batch * np.arange(1, peeks + 1)[None, :]  # units per arm at each look
    p_c, p_t = conv[..., 0] / n, conv[..., 1] / n
    estimate = p_t - p_c
    se = np.sqrt((p_c * (1 - p_c) + p_t * (1 - p_t)) / n)
    return conv, n, estimate, se


@pytest.mark.slow
def test_peeking_aa_false_positives_sequential_vs_naive() -> None:
    """1,000 seeded A/A runs, each peeked 20 times, stop at the first significant look.

    Vectorized over runs and looks with the sufficient statistics; the loop below the
    simulation checks the vectorized numbers are exactly what the public test returns.
    """
    runs, peeks, batch, alpha = 1000, 20, 250, 0.05
    conv, n, estimate, se = _peeked_aa(runs, peeks, batch, p=0.1, seed=2024)
    naive_p = 2 * ndtr(-np.abs(estimate / se))
    seq_p = anytime_p_value(estimate, se, 2 * n, alpha)
    naive_fpr = np.mean((naive_p < alpha).any(axis=1))
    seq_fpr = np.mean((seq_p < alpha).any(axis=1))
    print(f"A/A false positives with 20 peeks: naive {naive_fpr:.3f}, sequential {seq_fpr:.3f}")
    assert seq_fpr <= 0.05
    assert naive_fpr >= 0.12  # peeking inflates the naive test well beyond alpha
    assert naive_fpr >= 3 * max(seq_fpr, 0.01)

    for run, look in [(0, 0), (3, 7), (999, 19), (500, 10)]:
        nn = int(n[0, look])
        c = ProportionStatistic(nn, int(conv[run, look, 0]))
        t = ProportionStatistic(nn, int(conv[run, look, 1]))
        assert sequential_test(c, t, alpha).abs.p_value == pytest.approx(seq_p[run, look])
        assert two_sided_test(c, t, alpha).abs.p_value == pytest.approx(naive_p[run, look])


@pytest.mark.slow
def test_confidence_sequence_covers_a_real_effect_at_all_looks() -> None:
    """With a true effect, the sequence excludes it at some look in <= 5 % of runs."""
    runs, peeks, batch, alpha = 1000, 20, 250, 0.05
    rng = np.random.default_rng(11)
    conv_c = rng.binomial(batch, 0.10, size=(runs, peeks)).cumsum(axis=1)
    conv_t = rng.binomial(batch, 0.12, size=(runs, peeks)).cumsum(axis=1)
    n = batch * np.arange(1, peeks + 1)[None, :]
    p_c, p_t = conv_c / n, conv_t / n
    estimate = p_t - p_c
    se = np.sqrt((p_c * (1 - p_c) + p_t * (1 - p_t)) / n)
    half = halfwidth(se, 2 * n, alpha)
    missed = np.abs(estimate - 0.02) > half
    assert np.mean(missed.any(axis=1)) <= 0.05


def test_interval_is_wider_than_fixed_horizon_and_shrinks_with_n() -> None:
    c, t = ProportionStatistic(5000, 500), ProportionStatistic(5000, 560)
    seq, fixed = sequential_test(c, t), two_sided_test(c, t)
    assert seq.abs.estimate == fixed.abs.estimate
    assert seq.abs.ci_high - seq.abs.ci_low > fixed.abs.ci_high - fixed.abs.ci_low
    assert seq.abs.p_value > fixed.abs.p_value
    widths = [float(halfwidth(1 / np.sqrt(n), n)) for n in (1_000, 10_000, 100_000)]
    assert widths[0] > widths[1] > widths[2]


def test_rho_matches_growthbook_formula() -> None:
    a, m = 0.05, 5000.0
    expected = np.sqrt((-2 * np.log(a) + np.log(-2 * np.log(a) + 1)) / m)
    assert mixture_rho(a, m) == pytest.approx(expected)
    with pytest.raises(ValueError, match="sequential_tuning_parameter"):
        mixture_rho(a, 0)


def test_tuning_parameter_moves_where_the_sequence_is_tightest() -> None:
    se = 1.0 / np.sqrt(np.array([2_000.0, 200_000.0]))  # SE of a unit-variance mean
    near_small = halfwidth(se, [2_000, 200_000], tuning_parameter=2_000)
    near_large = halfwidth(se, [2_000, 200_000], tuning_parameter=200_000)
    assert near_small[0] < near_large[0]
    assert near_large[1] < near_small[1]


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(10, 1_000_000),
    z=st.floats(-8.0, 8.0),
    alpha=st.floats(0.001, 0.3),
    m=st.floats(100.0, 1e6),
)
def test_p_value_is_dual_to_the_confidence_sequence(
    n: int, z: float, alpha: float, m: float
) -> None:
    """The anytime-valid p-value is below alpha exactly when the sequence excludes 0."""
    se = 0.01
    est = z * se
    half = float(halfwidth(se, n, alpha, m))
    p = float(anytime_p_value(est, se, n, alpha, m))
    assert 0.0 < p <= 1.0
    if abs(abs(est) - half) > 1e-9 * half:
        assert (abs(est) > half) == (p < alpha)


@settings(max_examples=100, deadline=None)
@given(
    n_c=st.integers(2, 100_000),
    n_t=st.integers(2, 100_000),
    mean=st.floats(1.0, 100.0),
    sd=st.floats(0.1, 30.0),
    diff=st.floats(-5.0, 5.0),
)
def test_ci_contains_estimate(n_c: int, n_t: int, mean: float, sd: float, diff: float) -> None:
    def stat(n: int, mu: float) -> SampleMeanStatistic:
        return SampleMeanStatistic(n, n * mu, (n - 1) * sd**2 + n * mu**2)

    r = sequential_test(stat(n_c, mean), stat(n_t, mean + diff))
    for e in (r.abs, r.rel):
        assert e.ci_low <= e.estimate <= e.ci_high
        assert 0.0 <= e.p_value <= 1.0
