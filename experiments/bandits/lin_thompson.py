"""Linear Thompson sampling (disjoint): sample each action's linear model from its posterior.

Each action has a ridge regression of reward on the context (see
:mod:`experiments.bandits.ridge`) and the Gaussian posterior θ_a ~ N(θ̂_a, v² A_a⁻¹), with
`v` the scale of the reward noise. Thompson sampling plays the action whose sampled model
scores the context highest. For a fixed context the sampled score xᵀθ_a is exactly
N(xᵀθ̂_a, v² xᵀA_a⁻¹x), and the actions are independent, so the policy samples those k
scalars instead of k d-dimensional vectors: O(k d²) per decision and no Cholesky factor.
P(candidate is best) is estimated from `n_draws` joint draws and the action is drawn from
that estimate, so the returned propensities are exact for the draw and `stderr_` states
their Monte-Carlo error (as in :mod:`experiments.bandits.thompson`). Agrawal & Goyal's
theoretical v = R sqrt(24 d ln(1/δ)/ε) is far too wide in practice; `v` is a tuning
parameter of the order of the reward noise.

>>> from experiments.bandits.base import Batch
>>> rng = np.random.default_rng(2024)
>>> weights = np.array([[0.3, 0.0], [0.1, 0.4]])  # action 1 is better when x[1] is large
>>> policy = LinearThompson(n_actions=2, n_features=2, v=0.3, seed=1)
>>> for _ in range(2_000):
...     x = np.array([1.0, rng.random()])
...     action, _ = policy.select(x, np.arange(2))
...     reward = float(rng.random() < weights[action] @ x)
...     policy.update(Batch(x[None], [action], [reward]))
>>> [int(policy.select(np.array([1.0, x1]), np.arange(2))[0]) for x1 in (0.05, 0.95)]
[0, 1]

References: Agrawal & Goyal (2013), "Thompson Sampling for Contextual Bandits with Linear
Payoffs", ICML 2013, Algorithm 1 (here with one model per action, as in disjoint LinUCB).
"""

from __future__ import annotations

import numpy as np

from experiments.bandits.base import mc_argmax_distribution
from experiments.bandits.ridge import DisjointRidgePolicy


class LinearThompson(DisjointRidgePolicy):
    """Disjoint linear Thompson sampling over a feature context of length `n_features`."""

    def __init__(
        self,
        n_actions: int,
        n_features: int,
        v: float = 0.1,
        ridge: float = 1.0,
        n_draws: int = 64,
        floor: float = 0.01,
        burn_in: int = 0,
        seed: int | None = None,
    ):
        super().__init__(n_actions, n_features, ridge, floor, burn_in, seed)
        if v < 0:
            raise ValueError(f"v must be ≥ 0; got {v}")
        if n_draws < 1:
            raise ValueError(f"n_draws must be ≥ 1; got {n_draws}")
        self.v = v
        self.n_draws = n_draws

    def _distribution(self, context, candidates):
        mean, quad = self.predict(context, candidates)
        z = self.rng_.standard_normal((self.n_draws, len(candidates)))
        return mc_argmax_distribution(mean + self.v * np.sqrt(quad) * z)
