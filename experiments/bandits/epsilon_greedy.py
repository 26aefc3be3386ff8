"""ε-greedy: take the best mean reward so far, and explore uniformly with probability ε.

With probability 1 − ε the policy plays the candidate with the highest empirical mean reward
(ties split equally; a candidate never played counts as best, so each is tried), otherwise a
uniformly random candidate. Every candidate therefore has propensity ≥ ε/k, and the
propensities are exact. Exploration never stops, so the regret grows linearly at rate
ε × (mean gap): the simple baseline the other policies must beat.

>>> from experiments.bandits.base import Batch
>>> rng = np.random.default_rng(2024)
>>> true_p = np.array([0.10, 0.20, 0.45])
>>> policy = EpsilonGreedy(n_actions=3, epsilon=0.1, seed=1)
>>> for _ in range(1_000):
...     action, _ = policy.select(None, np.arange(3))
...     policy.update(Batch(None, [action], [float(rng.random() < true_p[action])]))
>>> policy.counts_.tolist(), policy.means.round(2).tolist()
([40, 43, 917], [0.15, 0.16, 0.44])

References: Sutton & Barto (2018), "Reinforcement Learning: An Introduction", 2nd ed.,
section 2.2 (action-value methods); Watkins (1989), "Learning from Delayed Rewards".
"""

from __future__ import annotations

import numpy as np

from experiments.bandits.base import Batch, Policy, argmax_distribution


class EpsilonGreedy(Policy):
    """Greedy on the empirical mean with probability 1 − `epsilon`, uniform otherwise."""

    _state = ("counts_", "sums_")

    def __init__(
        self,
        n_actions: int,
        epsilon: float = 0.1,
        floor: float = 0.01,
        burn_in: int = 0,
        seed: int | None = None,
    ):
        super().__init__(n_actions, floor, burn_in, seed)
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1]; got {epsilon}")
        self.epsilon = epsilon
        self.counts_ = np.zeros(n_actions, dtype=np.int64)
        self.sums_ = np.zeros(n_actions, dtype=np.float64)

    @property
    def means(self) -> np.ndarray:
        """Empirical mean reward per action code (NaN if never played)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.sums_ / self.counts_

    def _distribution(self, context, candidates):
        counts = self.counts_[candidates]
        values = np.where(counts > 0, self.sums_[candidates] / np.maximum(counts, 1), np.inf)
        k = len(candidates)
        return (1.0 - self.epsilon) * argmax_distribution(values) + self.epsilon / k, None

    def _learn(self, batch: Batch) -> None:
        self.counts_ += np.bincount(batch.actions, minlength=self.n_actions)
        self.sums_ += np.bincount(batch.actions, batch.rewards, minlength=self.n_actions)
