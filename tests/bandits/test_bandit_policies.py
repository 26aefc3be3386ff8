"""The Policy contract, checked on every policy: propensities, floor, burn-in, update, state."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.bandits import (
    UCB,
    Batch,
    BetaThompson,
    EpsilonGreedy,
    GaussianThompson,
    LinearThompson,
    LinUCB,
    ModelBased,
    Policy,
    UniformRandom,
)
from experiments.bandits.base import apply_floor, argmax_distribution, mc_argmax_distribution

K, D = 5, 4


def make(cls: type[Policy], **kwargs) -> Policy:
    if cls in (LinUCB, LinearThompson):
        return cls(n_actions=K, n_features=D, **kwargs)
    return cls(n_actions=K, **kwargs)


ALL = [
    EpsilonGreedy,
    UCB,
    BetaThompson,
    GaussianThompson,
    LinUCB,
    LinearThompson,
    ModelBased,
    UniformRandom,
]


def context_for(policy: Policy, rng: np.random.Generator) -> np.ndarray | None:
    if policy.context_kind == "features":
        return np.r_[1.0, rng.normal(size=D - 1)]
    if policy.context_kind == "scores":
        return rng.random(K)
    return None


def trained(cls: type[Policy], n: int = 200, seed: int = 0, **kwargs) -> Policy:
    """A policy after one batch of `n` random outcomes (conversions)."""
    rng = np.random.default_rng(seed)
    policy = make(cls, seed=seed, **kwargs)
    contexts = np.c_[np.ones(n), rng.normal(size=(n, D - 1))]
    actions = rng.integers(0, K, n)
    rewards = (rng.random(n) < 0.1 + 0.1 * actions).astype(float)
    policy.update(Batch(contexts if policy.context_kind == "features" else None, actions, rewards))
    return policy


@pytest.mark.parametrize("cls", ALL)
def test_propensities_are_a_distribution_with_the_floor(cls) -> None:
    policy = trained(cls, floor=0.02)
    rng = np.random.default_rng(1)
    for candidates in (np.arange(K), np.array([0, 3]), np.array([4]), np.array([1, 2, 4])):
        action, p = policy.select(context_for(policy, rng), candidates)
        assert p.shape == candidates.shape
        assert p.sum() == pytest.approx(1.0)
        assert (p >= 0.02 - 1e-12).all()
        assert action in candidates
        assert p[list(candidates).index(action)] > 0


EXACT = [EpsilonGreedy, UCB, LinUCB, ModelBased, UniformRandom]  # no Monte-Carlo inside


@pytest.mark.parametrize("cls", EXACT)
def test_chosen_action_follows_its_propensities(cls) -> None:
    """The returned propensities are what the action is drawn from: frequencies match them.

    (Sampling policies re-estimate theirs on each call; `draw` checks them one at a time.)
    """
    policy = trained(cls, floor=0.05)
    context = context_for(policy, np.random.default_rng(2))
    candidates = np.array([0, 2, 3, 4])
    p, _ = policy.distribution(context, candidates)
    counts = np.zeros(len(candidates))
    for _ in range(2_000):
        action, q = policy.select(context, candidates)
        np.testing.assert_allclose(q, p)
        counts[list(candidates).index(action)] += 1
    assert np.abs(counts / 2_000 - p).max() < 0.04


@pytest.mark.parametrize("cls", ALL)
def test_draw_selects_by_inverse_cdf_of_the_returned_propensities(cls) -> None:
    policy = trained(cls, floor=0.05)
    context = context_for(policy, np.random.default_rng(3))
    candidates = np.arange(K)
    for draw in (0.0, 0.3, 0.7, 0.999999):
        action, p = policy.select(context, candidates, draw=draw)
        expected = min(int(np.searchsorted(np.cumsum(p), draw, side="right")), K - 1)
        assert action == candidates[expected]


@pytest.mark.parametrize("cls", ALL)
def test_burn_in_is_uniform_then_ends(cls) -> None:
    policy = trained(cls, burn_in=3, floor=0.0)
    rng = np.random.default_rng(4)
    candidates = np.array([1, 2, 4])
    for _ in range(3):
        _, p = policy.select(context_for(policy, rng), candidates)
        np.testing.assert_allclose(p, 1 / 3)
    assert policy.n_selected_ == 3
    policy.select(context_for(policy, rng), candidates)
    assert policy.n_selected_ == 4


@pytest.mark.parametrize("cls", ALL)
def test_state_round_trips_through_json(cls) -> None:
    policy = trained(cls, floor=0.03, burn_in=1)
    rng = np.random.default_rng(5)
    contexts = [context_for(policy, rng) for _ in range(5)]
    clone = Policy.from_state_dict(json.loads(json.dumps(policy.state_dict())))
    assert type(clone) is cls
    assert clone.get_params() == policy.get_params()
    for context in contexts:
        a, p = policy.select(context, np.arange(K))
        b, q = clone.select(context, np.arange(K))
        assert a == b
        np.testing.assert_allclose(p, q)
    with pytest.raises(ValueError, match="unknown policy"):
        Policy.from_state_dict({**policy.state_dict(), "policy": "Nope"})


def test_count_policies_update_their_sufficient_statistics() -> None:
    batch = Batch(None, np.array([0, 0, 2, 2, 2]), np.array([1.0, 0.0, 1.0, 1.0, 0.0]))
    eg = EpsilonGreedy(3)
    eg.update(batch)
    assert eg.counts_.tolist() == [2, 0, 3] and eg.sums_.tolist() == [1.0, 0.0, 2.0]
    ts = BetaThompson(3, prior_alpha=1, prior_beta=1)
    ts.update(batch)
    assert ts.alpha_.tolist() == [2.0, 1.0, 3.0] and ts.beta_.tolist() == [2.0, 1.0, 2.0]
    with pytest.raises(ValueError, match=r"rewards in \[0, 1\]"):
        ts.update(Batch(None, np.array([0]), np.array([2.0])))
    ucb = UCB(3)
    ucb.update(batch)
    assert np.isinf(ucb.upper_bounds(np.arange(3))[1])  # never played: tried first
    assert ucb.n_updates_ == 5


@given(
    st.lists(st.integers(0, 2), min_size=1, max_size=40),
    st.integers(1, 5),
    st.floats(-5, 5),
)
@settings(max_examples=40, deadline=None)
def test_gaussian_statistics_merge_like_one_batch(actions, splits, shift) -> None:
    """Batches in any split give the mean and squared deviations of all rewards at once."""
    actions = np.array(actions)
    rewards = np.sin(np.arange(len(actions))) * 3 + shift
    whole = GaussianThompson(3)
    whole.update(Batch(None, actions, rewards))
    parts = GaussianThompson(3)
    for chunk in np.array_split(np.arange(len(actions)), splits):
        parts.update(Batch(None, actions[chunk], rewards[chunk]))
    for a in range(3):
        r = rewards[actions == a]
        assert parts.count_[a] == len(r)
        if len(r):
            assert parts.mean_[a] == pytest.approx(r.mean(), abs=1e-9)
            assert parts.m2_[a] == pytest.approx(((r - r.mean()) ** 2).sum(), abs=1e-7)
    np.testing.assert_allclose(parts.mean_, whole.mean_, atol=1e-9)


def test_gaussian_posterior_concentrates_on_the_sample_mean() -> None:
    policy = GaussianThompson(2, prior_count=1e-6)
    rewards = np.random.default_rng(0).normal(5.0, 2.0, 10_000)
    policy.update(Batch(None, np.zeros(10_000, dtype=int), rewards))
    loc, scale, dof = policy.posterior()
    assert loc[0] == pytest.approx(rewards.mean(), abs=1e-3)
    assert scale[0] == pytest.approx(rewards.std() / 100, rel=0.02)  # σ/√n
    assert dof[0] == pytest.approx(2 + 10_000)


@given(
    st.lists(st.floats(0, 1), min_size=1, max_size=8),
    st.floats(0, 0.2),
)
def test_floor_mixing_law(weights, floor) -> None:
    w = np.array(weights) + 1e-9
    p = apply_floor(w / w.sum(), floor)
    assert p.sum() == pytest.approx(1.0)
    assert p.min() >= min(floor, 1 / len(p)) - 1e-12


@given(st.lists(st.integers(-3, 3), min_size=1, max_size=8))
def test_argmax_distribution_splits_ties(values) -> None:
    p = argmax_distribution(np.array(values, dtype=float))
    best = np.array(values) == max(values)
    np.testing.assert_allclose(p[best], 1 / best.sum())
    assert p[~best].sum() == 0


def test_mc_standard_error_covers_the_true_probability() -> None:
    """Two independent normals N(0.1, 1) vs N(0, 1): P(first is max) = Φ(0.1/√2) = 0.5282."""
    rng = np.random.default_rng(0)
    p, se = mc_argmax_distribution(rng.normal([0.1, 0.0], 1.0, size=(20_000, 2)))
    assert abs(p[0] - 0.5282) < 3 * se[0]
    assert se[0] == pytest.approx(np.sqrt(0.25 / 20_000), rel=0.01)


def test_thompson_exposes_its_monte_carlo_error() -> None:
    policy = BetaThompson(3, n_draws=100, floor=0.0, seed=0)
    policy.update(Batch(None, np.array([0, 1, 2] * 20), np.array([1.0, 0.0, 0.0] * 20)))
    _, p = policy.select(None, np.arange(3))
    np.testing.assert_allclose(policy.stderr_, np.sqrt(p * (1 - p) / 100))


def test_model_based_reads_the_scores_of_the_candidates() -> None:
    policy = ModelBased(4, method="epsilon", epsilon=0.2, floor=0.0)
    _, p = policy.select(np.array([9.0, 1.0, 3.0, 2.0]), np.array([1, 2, 3]))
    np.testing.assert_allclose(p, [0.2 / 3, 0.8 + 0.2 / 3, 0.2 / 3])
    with pytest.raises(ValueError, match="scores as context"):
        policy.select(np.array([1.0, 2.0]), np.array([0, 1]))
    soft = ModelBased(3, temperature=1.0, floor=0.0)
    _, p = soft.select(np.array([0.0, np.log(3.0), 0.0]), np.arange(3))
    np.testing.assert_allclose(p, [0.2, 0.6, 0.2])


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="candidates is empty"):
        EpsilonGreedy(3).select(None, np.array([], dtype=int))
    with pytest.raises(ValueError, match="action codes"):
        EpsilonGreedy(3).update(Batch(None, np.array([3]), np.array([1.0])))
    with pytest.raises(ValueError, match="context must have shape"):
        LinUCB(3, n_features=2).select(np.ones(3), np.arange(3))
    with pytest.raises(ValueError, match="needs contexts"):
        LinUCB(3, n_features=2).update(Batch(None, np.array([0]), np.array([1.0])))
    with pytest.raises(ValueError, match="floor"):
        EpsilonGreedy(3, floor=1.5)
