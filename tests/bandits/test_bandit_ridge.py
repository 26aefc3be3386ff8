"""LinUCB / linear TS: the maintained inverse, the ridge estimate and the score distribution."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.bandits import Batch, LinearThompson, LinUCB
from experiments.bandits.ridge import sherman_morrison


def test_sherman_morrison_step_equals_inverse() -> None:
    rng = np.random.default_rng(0)
    a = np.eye(6) * 2.0 + 0.1
    a_inv = np.linalg.inv(a)
    for _ in range(50):
        x = rng.normal(size=6)
        a += np.outer(x, x)
        sherman_morrison(a_inv, x)
    np.testing.assert_allclose(a_inv, np.linalg.inv(a), rtol=1e-9, atol=1e-12)


@given(st.lists(st.integers(1, 40), min_size=1, max_size=6), st.integers(0, 10_000))
@settings(max_examples=30, deadline=None)
def test_inverse_matches_numpy_for_any_batching(batch_sizes, seed) -> None:
    """Small batches go through Sherman–Morrison, large ones through one inversion: same A⁻¹."""
    rng = np.random.default_rng(seed)
    d = 5
    policy = LinUCB(n_actions=3, n_features=d, ridge=0.5)
    for n in batch_sizes:
        X = rng.normal(size=(n, d))
        policy.update(Batch(X, rng.integers(0, 3, n), rng.random(n)))
    for a in range(3):
        np.testing.assert_allclose(policy.A_inv_[a], np.linalg.inv(policy.A_[a]), atol=1e-9)
        np.testing.assert_allclose(
            policy.theta_[a], np.linalg.solve(policy.A_[a], policy.b_[a]), atol=1e-9
        )


def test_ridge_estimate_is_the_closed_form() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 4))
    y = X @ np.array([0.5, -1.0, 0.0, 2.0]) + rng.normal(0, 0.1, 300)
    policy = LinUCB(1, n_features=4, ridge=2.0)
    policy.update(Batch(X, np.zeros(300, dtype=int), y))
    closed = np.linalg.solve(X.T @ X + 2.0 * np.eye(4), X.T @ y)
    np.testing.assert_allclose(policy.theta_[0], closed, atol=1e-10)


def test_linucb_bound_is_estimate_plus_alpha_standard_errors() -> None:
    rng = np.random.default_rng(2)
    policy = LinUCB(2, n_features=3, alpha=0.7)
    X = rng.normal(size=(40, 3))
    policy.update(Batch(X, rng.integers(0, 2, 40), rng.random(40)))
    x = rng.normal(size=3)
    expected = [
        policy.theta_[a] @ x + 0.7 * np.sqrt(x @ np.linalg.inv(policy.A_[a]) @ x) for a in (0, 1)
    ]
    np.testing.assert_allclose(policy.upper_bounds(x, np.arange(2)), expected)
    np.testing.assert_allclose(policy.A_inv_, policy.A_inv_.transpose(0, 2, 1), atol=1e-12)


def test_exploration_bonus_shrinks_with_data() -> None:
    policy = LinUCB(1, n_features=2, alpha=1.0)
    x = np.array([1.0, 0.5])
    before = policy.upper_bounds(x, np.array([0]))[0]
    policy.update(Batch(np.tile(x, (100, 1)), np.zeros(100, dtype=int), np.zeros(100)))
    assert policy.upper_bounds(x, np.array([0]))[0] < before / 5


def test_linear_thompson_scores_have_the_posterior_spread() -> None:
    """With two identical actions P(best) is ½ each; an action with a clearly higher mean wins."""
    policy = LinearThompson(2, n_features=2, v=1.0, n_draws=4_000, floor=0.0, seed=0)
    _, p = policy.select(np.array([1.0, 0.0]), np.arange(2))
    assert abs(p[0] - 0.5) < 3 * policy.stderr_[0]
    X = np.tile([1.0, 0.0], (400, 1))
    policy.update(Batch(X, np.zeros(400, dtype=int), np.ones(400)))
    _, p = policy.select(np.array([1.0, 0.0]), np.arange(2))
    # action 0: N(400/401, 1/401); action 1: prior N(0, 1) → P(0 best) = Φ(0.9975/√(1+1/401))
    assert p[0] == pytest.approx(0.8405, abs=4 * np.sqrt(0.84 * 0.16 / 4_000))
