"""Disjoint LinUCB: an upper confidence bound on a per-action linear model of the reward.

Each action has its own ridge regression of reward on the context x (see
:mod:`experiments.bandits.ridge`); the policy plays the candidate with the highest

    xᵀθ_a + α · sqrt(xᵀ A_a⁻¹ x),

the estimate plus `alpha` standard errors of it (in units of the reward noise). The bound is
deterministic given the state, so the propensities are exact (ties split equally) before the
floor. A⁻¹ is kept up to date by Sherman–Morrison, so `select` is O(k d²) with no inversion.
`alpha` trades exploration for exploitation; Li et al. derive 1 + sqrt(ln(2/δ)/2) for a
δ-confidence bound, which over-explores when rewards are rare conversions (their noise is
far below 1), hence the smaller default.

>>> from experiments.bandits.base import Batch
>>> rng = np.random.default_rng(2024)
>>> weights = np.array([[0.3, 0.0], [0.1, 0.4]])  # action 1 is better when x[1] is large
>>> policy = LinUCB(n_actions=2, n_features=2, alpha=0.5, floor=0.0, seed=1)
>>> for _ in range(2_000):
...     x = np.array([1.0, rng.random()])
...     action, _ = policy.select(x, np.arange(2))
...     reward = float(rng.random() < weights[action] @ x)
...     policy.update(Batch(x[None], [action], [reward]))
>>> [int(policy.select(np.array([1.0, x1]), np.arange(2))[0]) for x1 in (0.05, 0.95)]
[0, 1]

References: Li, Chu, Langford & Schapire (2010), "A Contextual-Bandit Approach to
Personalized News Article Recommendation", WWW 2010, Algorithm 1 (disjoint LinUCB).
"""

from __future__ import annotations

import numpy as np

from experiments.bandits.base import argmax_distribution
from experiments.bandits.ridge import DisjointRidgePolicy


class LinUCB(DisjointRidgePolicy):
    """Disjoint LinUCB over a feature context of length `n_features`."""

    def __init__(
        self,
        n_actions: int,
        n_features: int,
        alpha: float = 0.2,
        ridge: float = 1.0,
        floor: float = 0.01,
        burn_in: int = 0,
        seed: int | None = None,
    ):
        super().__init__(n_actions, n_features, ridge, floor, burn_in, seed)
        if alpha < 0:
            raise ValueError(f"alpha must be ≥ 0; got {alpha}")
        self.alpha = alpha

    def upper_bounds(self, context: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        mean, quad = self.predict(context, candidates)
        return mean + self.alpha * np.sqrt(quad)

    def _distribution(self, context, candidates):
        return argmax_distribution(self.upper_bounds(context, candidates)), None
