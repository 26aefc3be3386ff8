"""The uniform random policy: every candidate with probability 1/k, nothing learned.

The baseline of a regret comparison (its regret is the mean gap to the oracle, every round)
and the logging policy that makes off-policy evaluation easiest.

>>> policy = UniformRandom(n_actions=4, seed=0)
>>> action, propensities = policy.select(None, np.array([0, 2, 3]))
>>> action in (0, 2, 3), propensities.round(4).tolist()
(True, [0.3333, 0.3333, 0.3333])

References: Li et al. (2011), "Unbiased offline evaluation of contextual-bandit-based news
article recommendation algorithms" (uniform logging for replay evaluation).
"""

from __future__ import annotations

import numpy as np

from experiments.bandits.base import Batch, Policy


class UniformRandom(Policy):
    """Uniform over the candidates; `update` only counts outcomes."""

    def __init__(self, n_actions: int, floor: float = 0.0, burn_in: int = 0, seed=None):
        super().__init__(n_actions, floor, burn_in, seed)

    def _distribution(self, context, candidates):
        return np.full(len(candidates), 1.0 / len(candidates)), None

    def _learn(self, batch: Batch) -> None:
        pass
