"""The bandit policies by the name configuration, the CLI and the arena use for them.

>>> sorted(POLICY_CLASSES)[:3]
['egreedy', 'gaussian_ts', 'lints']
"""

from __future__ import annotations

from experiments.bandits.base import Policy
from experiments.bandits.epsilon_greedy import EpsilonGreedy
from experiments.bandits.gaussian_thompson import GaussianThompson
from experiments.bandits.lin_thompson import LinearThompson
from experiments.bandits.linucb import LinUCB
from experiments.bandits.model_based import ModelBased
from experiments.bandits.thompson import BetaThompson
from experiments.bandits.ucb import UCB
from experiments.bandits.uniform import UniformRandom

POLICY_CLASSES: dict[str, type[Policy]] = {
    "thompson": BetaThompson,
    "ucb": UCB,
    "egreedy": EpsilonGreedy,
    "linucb": LinUCB,
    "lints": LinearThompson,
    "gaussian_ts": GaussianThompson,
    "model": ModelBased,
    "random": UniformRandom,
}
