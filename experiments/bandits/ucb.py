"""UCB1: play the candidate with the highest upper confidence bound on its mean reward.

The index of an action played n_a times out of n is ``mean_a + scale · sqrt(2 ln n / n_a)``;
an action never played has an infinite index, so each is tried first. With rewards in
[0, `scale`] the bonus is Hoeffding's bound, and the regret grows as O(log n). The choice is
deterministic given the state, so the propensities are exact (ties split equally) before the
floor. `n` counts the outcomes learned from, so under delayed feedback the bound is computed
on the evidence actually seen.

>>> from experiments.bandits.base import Batch
>>> rng = np.random.default_rng(2024)
>>> true_p = np.array([0.10, 0.20, 0.45])
>>> policy = UCB(n_actions=3, floor=0.0, seed=1)
>>> for _ in range(1_000):
...     action, _ = policy.select(None, np.arange(3))
...     policy.update(Batch(None, [action], [float(rng.random() < true_p[action])]))
>>> policy.counts_.tolist()
[57, 121, 822]

References: Auer, Cesa-Bianchi & Fischer (2002), "Finite-time Analysis of the Multiarmed
Bandit Problem", Machine Learning 47, 235–256 (UCB1).
"""

from __future__ import annotations

import numpy as np

from experiments.bandits.base import Batch, Policy, argmax_distribution


class UCB(Policy):
    """UCB1 with the bonus multiplied by `scale`, the width of the reward range."""

    _state = ("counts_", "sums_")

    def __init__(
        self,
        n_actions: int,
        scale: float = 1.0,
        floor: float = 0.01,
        burn_in: int = 0,
        seed: int | None = None,
    ):
        super().__init__(n_actions, floor, burn_in, seed)
        if scale < 0:
            raise ValueError(f"scale must be ≥ 0; got {scale}")
        self.scale = scale
        self.counts_ = np.zeros(n_actions, dtype=np.int64)
        self.sums_ = np.zeros(n_actions, dtype=np.float64)

    def upper_bounds(self, candidates: np.ndarray) -> np.ndarray:
        """The UCB1 index of each candidate (inf if never played)."""
        counts = self.counts_[candidates]
        n = max(int(self.counts_.sum()), 1)
        played = counts > 0
        safe = np.maximum(counts, 1)
        index = self.sums_[candidates] / safe + self.scale * np.sqrt(2.0 * np.log(n) / safe)
        return np.where(played, index, np.inf)

    def _distribution(self, context, candidates):
        return argmax_distribution(self.upper_bounds(candidates)), None

    def _learn(self, batch: Batch) -> None:
        self.counts_ += np.bincount(batch.actions, minlength=self.n_actions)
        self.sums_ += np.bincount(batch.actions, batch.rewards, minlength=self.n_actions)
