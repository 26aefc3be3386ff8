"""The one reward formula (liftgate.core.reward): kinds, expectations, and its three users."""

from __future__ import annotations

import numpy as np
import pytest

from configs.loader import load_config
from experiments.bandits.spec import BanditSpec
from liftgate.core.reward import reward_of
from liftgate.core.vocabulary import CONVERTED, PROFIT, REVENUE, REWARD_KINDS
from liftgate.sim.bandit_arena import build_arena

CONVERTED_, REVENUE_, COST = np.array([1, 0, 1]), np.array([30.0, 0.0, 12.5]), np.array([2, 1, 0.5])


def test_each_kind() -> None:
    np.testing.assert_allclose(reward_of(CONVERTED, CONVERTED_, REVENUE_, COST), [1, 0, 1])
    np.testing.assert_allclose(reward_of(REVENUE, CONVERTED_, REVENUE_, COST), [30, 0, 12.5])
    np.testing.assert_allclose(reward_of(PROFIT, CONVERTED_, REVENUE_, COST), [28, -1, 12])
    with pytest.raises(ValueError, match="reward must be one of converted, revenue, profit"):
        reward_of("revenue_minus_cost", CONVERTED_, REVENUE_, COST)


@pytest.mark.parametrize("kind", REWARD_KINDS)
def test_the_reward_of_the_expectations_is_the_expected_reward(kind: str) -> None:
    """Linear in (converted, revenue): the mean of drawn rewards approaches the formula on
    P(convert) and P(convert) × order value, as the arena's regret assumes."""
    rng = np.random.default_rng(0)
    p, order_value, cost = 0.3, 40.0, 1.5
    converted = rng.random(200_000) < p
    drawn = reward_of(kind, converted, converted * order_value, cost)
    expected = float(reward_of(kind, p, p * order_value, cost))
    assert drawn.mean() == pytest.approx(expected, abs=4 * drawn.std() / np.sqrt(len(drawn)))


@pytest.mark.parametrize("kind", REWARD_KINDS)
def test_the_served_bandit_and_the_arena_reward_alike(kind: str) -> None:
    config = load_config()
    experiment = config.experiments["bandit-offers"]
    bandit = experiment.bandit.model_copy(update={"policy": "gaussian_ts", "reward": kind})
    spec = BanditSpec(
        experiment.model_copy(update={"bandit": bandit}), config.features, config.actions
    )
    codes = np.array([0, 1, 2])
    served = spec.rewards(CONVERTED_, REVENUE_, codes)
    arena = build_arena(seed=0, n_customers=50, reward=kind)
    np.testing.assert_array_equal(spec.costs, arena.costs)  # one catalogue, one cost per code
    np.testing.assert_allclose(served, reward_of(kind, CONVERTED_, REVENUE_, arena.costs[codes]))
    p, value = arena.probability, arena.order_value
    np.testing.assert_allclose(arena.expected, reward_of(kind, p, p * value, arena.costs))
