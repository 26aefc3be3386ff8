"""Model-based exploration: explore around a registered model's expected value per action.

The context of this policy is **not** features but the scores of the scoring model: an
array of length `n_actions` holding, for this customer, the model's expected reward of every
action code (e.g. P(convert) × order value − cost from the registered scorer; only the
candidates' entries are read). The policy does not learn the reward: the model is retrained
offline, and `update` only keeps per-action counts and mean rewards for monitoring. It turns
the scores into a distribution in one of two ways:

- ``"softmax"`` (Boltzmann exploration): p ∝ exp(score / `temperature`), so actions the
  model rates close to the best are explored more than hopeless ones;
- ``"epsilon"``: the model's best with probability 1 − ε, uniform otherwise (as
  :func:`liftgate.core.allocation.epsilon_greedy`, ties split equally here).

Both are exact, so the logged propensities support off-policy evaluation of the next model.

>>> policy = ModelBased(n_actions=3, method="softmax", temperature=0.5, floor=0.0, seed=0)
>>> _, p = policy.select(np.array([1.0, 2.0, 0.5]), np.array([0, 1, 2]))
>>> p.round(3).tolist()
[0.114, 0.844, 0.042]
>>> _, p = ModelBased(3, method="epsilon", epsilon=0.3, floor=0.0).select(
...     np.array([1.0, 2.0, 0.5]), np.array([0, 2]))
>>> p.round(2).tolist()
[0.85, 0.15]

References: Sutton & Barto (2018), "Reinforcement Learning: An Introduction", 2nd ed.,
section 2.8 (softmax / Boltzmann action preferences); Bietti, Agarwal & Langford (2021), "A
Contextual Bandit Bake-off", JMLR 22 (greedy and ε-greedy on a reward model).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from experiments.bandits.base import Batch, Policy, argmax_distribution


class ModelBased(Policy):
    """Softmax or ε-greedy exploration over model scores passed as the context."""

    context_kind = "scores"
    _state = ("counts_", "sums_")

    def __init__(
        self,
        n_actions: int,
        method: Literal["softmax", "epsilon"] = "softmax",
        temperature: float = 1.0,
        epsilon: float = 0.1,
        floor: float = 0.01,
        burn_in: int = 0,
        seed: int | None = None,
    ):
        super().__init__(n_actions, floor, burn_in, seed)
        if method not in ("softmax", "epsilon"):
            raise ValueError(f"method must be 'softmax' or 'epsilon'; got {method!r}")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive; got {temperature}")
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1]; got {epsilon}")
        self.method = method
        self.temperature = temperature
        self.epsilon = epsilon
        self.counts_ = np.zeros(n_actions, dtype=np.int64)
        self.sums_ = np.zeros(n_actions)

    def _distribution(self, context, candidates):
        scores = np.asarray(context, dtype=np.float64)
        if scores.shape != (self.n_actions,):
            raise ValueError(
                f"ModelBased takes the model's scores as context: shape ({self.n_actions},); "
                f"got {scores.shape}"
            )
        s = scores[candidates]
        if self.method == "epsilon":
            k = len(candidates)
            return (1.0 - self.epsilon) * argmax_distribution(s) + self.epsilon / k, None
        z = np.exp((s - s.max()) / self.temperature)
        return z / z.sum(), None

    def _learn(self, batch: Batch) -> None:
        self.counts_ += np.bincount(batch.actions, minlength=self.n_actions)
        self.sums_ += np.bincount(batch.actions, batch.rewards, minlength=self.n_actions)
