"""Gaussian Thompson sampling: Normal–inverse-gamma posteriors for real-valued rewards.

For revenue or profit, where a Beta posterior does not apply, each action's rewards are
modelled as Normal(μ, σ²) with the conjugate prior NIG(`prior_mean`, `prior_count`,
`prior_shape`, `prior_rate`): μ | σ² ~ N(μ₀, σ²/κ₀) and σ² ~ InvGamma(α₀, β₀). After n
rewards with mean x̄ and sum of squared deviations S the posterior is NIG with

    κₙ = κ₀ + n,   μₙ = (κ₀ μ₀ + n x̄) / κₙ,   αₙ = α₀ + n/2,
    βₙ = β₀ + S/2 + κ₀ n (x̄ − μ₀)² / (2 κₙ),

and the mean reward μ has the marginal posterior Student-t with 2αₙ degrees of freedom,
location μₙ and scale sqrt(βₙ / (αₙ κₙ)), which is what is sampled. As in
:mod:`experiments.bandits.thompson`, P(candidate is best) is estimated from `n_draws` joint
draws and the action is drawn from that estimate, so the propensities are exact for the draw
and `stderr_` states their Monte-Carlo error. The sufficient statistics (n, mean, S) merge
across batches with Chan et al.'s pairwise update, so a batch of any size is O(n).

>>> from experiments.bandits.base import Batch
>>> rng = np.random.default_rng(2024)
>>> true_mean = np.array([1.0, 2.0, 3.0])
>>> policy = GaussianThompson(n_actions=3, seed=1)
>>> for _ in range(300):
...     action, _ = policy.select(None, np.arange(3))
...     policy.update(Batch(None, [action], [rng.normal(true_mean[action], 2.0)]))
>>> policy.count_.tolist(), policy.mean_.round(1).tolist()
([8, 10, 282], [1.1, 1.7, 3.0])

References: Murphy (2007), "Conjugate Bayesian analysis of the Gaussian distribution",
section 6 (the NIG posterior); Chapelle & Li (2011), "An Empirical Evaluation of Thompson
Sampling"; Chan, Golub & LeVeque (1979), "Updating formulae and a pairwise algorithm for
computing sample variances".
"""

from __future__ import annotations

import numpy as np

from experiments.bandits.base import Batch, Policy, mc_argmax_distribution


class GaussianThompson(Policy):
    """Thompson sampling with Normal–inverse-gamma posteriors on each action's mean reward."""

    _state = ("count_", "mean_", "m2_")

    def __init__(
        self,
        n_actions: int,
        prior_mean: float = 0.0,
        prior_count: float = 1.0,
        prior_shape: float = 1.0,
        prior_rate: float = 1.0,
        n_draws: int = 64,
        floor: float = 0.01,
        burn_in: int = 0,
        seed: int | None = None,
    ):
        super().__init__(n_actions, floor, burn_in, seed)
        if prior_count <= 0 or prior_shape <= 0 or prior_rate <= 0:
            raise ValueError("prior_count, prior_shape and prior_rate must be positive")
        if n_draws < 1:
            raise ValueError(f"n_draws must be ≥ 1; got {n_draws}")
        self.prior_mean = prior_mean
        self.prior_count = prior_count
        self.prior_shape = prior_shape
        self.prior_rate = prior_rate
        self.n_draws = n_draws
        self.count_ = np.zeros(n_actions, dtype=np.int64)
        self.mean_ = np.zeros(n_actions)
        self.m2_ = np.zeros(n_actions)  # sum of squared deviations from the mean

    def posterior(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Student-t marginal of each action's mean: (location, scale, degrees of freedom)."""
        n = self.count_
        kappa = self.prior_count + n
        loc = (self.prior_count * self.prior_mean + n * self.mean_) / kappa
        shape = self.prior_shape + n / 2.0
        rate = (
            self.prior_rate
            + self.m2_ / 2.0
            + self.prior_count * n * (self.mean_ - self.prior_mean) ** 2 / (2.0 * kappa)
        )
        return loc, np.sqrt(rate / (shape * kappa)), 2.0 * shape

    def _distribution(self, context, candidates):
        loc, scale, dof = (v[candidates] for v in self.posterior())
        t = self.rng_.standard_t(dof, size=(self.n_draws, len(candidates)))
        return mc_argmax_distribution(loc + scale * t)

    def _learn(self, batch: Batch) -> None:
        k = self.n_actions
        n_b = np.bincount(batch.actions, minlength=k)
        sums = np.bincount(batch.actions, batch.rewards, minlength=k)
        mean_b = sums / np.maximum(n_b, 1)
        centred = batch.rewards - mean_b[batch.actions]
        m2_b = np.bincount(batch.actions, centred * centred, minlength=k)
        n = self.count_ + n_b
        delta = mean_b - self.mean_
        safe = np.maximum(n, 1)
        self.mean_ = np.where(n > 0, self.mean_ + delta * n_b / safe, self.mean_)
        self.m2_ = self.m2_ + m2_b + delta * delta * self.count_ * n_b / safe
        self.count_ = n
