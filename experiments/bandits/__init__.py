"""Bandit policies for adaptive allocation, and their simulation on the synthetic world.

Every policy implements :class:`experiments.bandits.base.Policy`: ``select(context,
candidates) -> (action code, propensities)`` and ``update(batch)``, with a probability
floor, a burn-in and a JSON-able ``state_dict``. Importing this package needs only NumPy;
:mod:`liftgate.sim.bandit_arena` imports the world and the configuration.

A ``kind: bandit`` experiment serves one of these policies to its ``policy: bandit`` arms:
:mod:`~experiments.bandits.spec` builds it from the YAML, :mod:`~experiments.bandits.store`
shares its state between replicas, :mod:`~experiments.bandits.updater` learns the decisions
whose attribution window has closed, and :mod:`~serving.bandit_arm` allocates.
"""

from experiments.bandits.base import Batch, Policy
from experiments.bandits.epsilon_greedy import EpsilonGreedy
from experiments.bandits.gaussian_thompson import GaussianThompson
from experiments.bandits.lin_thompson import LinearThompson
from experiments.bandits.linucb import LinUCB
from experiments.bandits.model_based import ModelBased
from experiments.bandits.thompson import BetaThompson
from experiments.bandits.ucb import UCB
from experiments.bandits.uniform import UniformRandom

__all__ = [
    "UCB",
    "Batch",
    "BetaThompson",
    "EpsilonGreedy",
    "GaussianThompson",
    "LinUCB",
    "LinearThompson",
    "ModelBased",
    "Policy",
    "UniformRandom",
]
