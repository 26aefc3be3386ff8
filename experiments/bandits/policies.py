"""The bandit policies by the name configuration, the CLI and the arena use for them
(`liftgate.core.vocabulary.BANDIT_POLICIES`).

>>> sorted(POLICY_CLASSES)[:3]
['epsilon_greedy', 'gaussian_ts', 'lints']
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
from liftgate.core import vocabulary

POLICY_CLASSES: dict[str, type[Policy]] = {
    vocabulary.THOMPSON: BetaThompson,
    vocabulary.UCB: UCB,
    vocabulary.EPSILON_GREEDY: EpsilonGreedy,
    vocabulary.LINUCB: LinUCB,
    vocabulary.LINTS: LinearThompson,
    vocabulary.GAUSSIAN_TS: GaussianThompson,
    vocabulary.MODEL: ModelBased,
    vocabulary.UNIFORM_RANDOM: UniformRandom,
}
