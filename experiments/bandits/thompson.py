"""Beta–Bernoulli Thompson sampling: play each action with the probability that it is best.

Each action's conversion rate has a Beta(α, β) posterior, starting from the prior
Beta(`prior_alpha`, `prior_beta`) and adding successes to α and failures to β (a reward in
[0, 1] adds r and 1 − r, the usual fractional update). Thompson sampling plays an action
with its posterior probability of being the best one. That probability has no closed form
for k Betas, so `select` estimates it from `n_draws` joint posterior draws (the share of
draws in which each candidate is the argmax) and then draws the action *from that estimate*:
the returned propensities are exactly what the action was drawn from (good for off-policy
evaluation), and `stderr_` holds their Monte-Carlo standard error sqrt(p(1 − p)/M) as
estimates of the ideal Thompson probabilities. With ``n_draws=1`` this is classic Thompson
sampling (one draw, its argmax), whose propensity is then 0/1 and useless for a log. The
behaviour does not depend on `n_draws` (picking one of M i.i.d. draws at random and playing
its argmax *is* Thompson sampling); only the precision of the logged probabilities does, so
the default M = 64 (standard error ≤ 0.0625, ~0.03 at p = 0.1) keeps `select` under 100 µs.

>>> from experiments.bandits.base import Batch
>>> rng = np.random.default_rng(2024)
>>> true_p = np.array([0.10, 0.20, 0.45])
>>> policy = BetaThompson(n_actions=3, seed=1)
>>> for _ in range(1_000):
...     action, _ = policy.select(None, np.arange(3))
...     policy.update(Batch(None, [action], [float(rng.random() < true_p[action])]))
>>> policy.alpha_.round().tolist(), policy.beta_.round().tolist()
([3.0, 9.0, 419.0], [18.0, 29.0, 528.0])
>>> bool(policy.stderr_.max() < 0.03)
True

References: Thompson (1933), "On the likelihood that one unknown probability exceeds another
in view of the evidence of two samples", Biometrika 25, 285–294; Chapelle & Li (2011), "An
Empirical Evaluation of Thompson Sampling", NeurIPS 24.
"""

from __future__ import annotations

import numpy as np

from experiments.bandits.base import Batch, Policy, mc_argmax_distribution


class BetaThompson(Policy):
    """Thompson sampling with Beta posteriors; rewards must lie in [0, 1]."""

    _state = ("alpha_", "beta_")

    def __init__(
        self,
        n_actions: int,
        prior_alpha: float = 1.0,
        prior_beta: float = 1.0,
        n_draws: int = 64,
        floor: float = 0.01,
        burn_in: int = 0,
        seed: int | None = None,
    ):
        super().__init__(n_actions, floor, burn_in, seed)
        if prior_alpha <= 0 or prior_beta <= 0:
            raise ValueError(f"prior must be positive; got ({prior_alpha}, {prior_beta})")
        if n_draws < 1:
            raise ValueError(f"n_draws must be ≥ 1; got {n_draws}")
        self.prior_alpha = prior_alpha
        self.prior_beta = prior_beta
        self.n_draws = n_draws
        self.alpha_ = np.full(n_actions, float(prior_alpha))
        self.beta_ = np.full(n_actions, float(prior_beta))

    @property
    def means(self) -> np.ndarray:
        """Posterior mean conversion rate per action code."""
        return self.alpha_ / (self.alpha_ + self.beta_)

    def _distribution(self, context, candidates):
        size = (self.n_draws, len(candidates))
        draws = self.rng_.beta(self.alpha_[candidates], self.beta_[candidates], size=size)
        return mc_argmax_distribution(draws)

    def _learn(self, batch: Batch) -> None:
        r = batch.rewards
        if r.min() < 0.0 or r.max() > 1.0:
            raise ValueError("BetaThompson needs rewards in [0, 1] (conversions)")
        self.alpha_ += np.bincount(batch.actions, r, minlength=self.n_actions)
        self.beta_ += np.bincount(batch.actions, 1.0 - r, minlength=self.n_actions)
