"""Disjoint ridge regression per action, the shared state of LinUCB and linear Thompson sampling.

Each action a keeps ``A_a = λ I + Σ x xᵀ`` and ``b_a = Σ r x`` over the contexts x in which
it was played, and its ridge estimate ``θ_a = A_a⁻¹ b_a``. The inverse is maintained, never
recomputed at decision time, so scoring a context costs O(d²) per action: a batch adds its
rows to A⁻¹ one at a time by the Sherman–Morrison identity

    (A + x xᵀ)⁻¹ = A⁻¹ − (A⁻¹ x)(A⁻¹ x)ᵀ / (1 + xᵀ A⁻¹ x),

O(d²) per row, and when an action receives more than `d` rows in one batch (where d
Sherman–Morrison steps would cost more than one inversion) A is accumulated with one matrix
product and inverted once, O(m d² + d³). Both paths give the same A⁻¹ up to rounding.

>>> from experiments.bandits.base import Batch
>>> from experiments.bandits.linucb import LinUCB
>>> policy = LinUCB(n_actions=2, n_features=3, seed=0)
>>> X = np.random.default_rng(0).normal(size=(5, 3))
>>> policy.update(Batch(X, np.array([0, 0, 1, 0, 1]), np.ones(5)))
>>> bool(np.allclose(policy.A_inv_[0], np.linalg.inv(policy.A_[0])))
True

References: Hoerl & Kennard (1970), "Ridge regression"; Sherman & Morrison (1950),
"Adjustment of an inverse matrix corresponding to a change in one element of a given
matrix", Annals of Mathematical Statistics 21, 124–127.
"""

from __future__ import annotations

import abc

import numpy as np

from experiments.bandits.base import Batch, Policy


def sherman_morrison(a_inv: np.ndarray, x: np.ndarray) -> None:
    """Update `a_inv` (symmetric, in place) to the inverse of A + x xᵀ."""
    u = a_inv @ x
    a_inv -= np.outer(u, u) / (1.0 + x @ u)


class DisjointRidgePolicy(Policy, abc.ABC):
    """A policy with one ridge regression per action on a context of `n_features` values."""

    context_kind = "features"
    _state = ("A_", "A_inv_", "b_")

    def __init__(
        self,
        n_actions: int,
        n_features: int,
        ridge: float = 1.0,
        floor: float = 0.01,
        burn_in: int = 0,
        seed: int | None = None,
    ):
        super().__init__(n_actions, floor, burn_in, seed)
        if n_features < 1:
            raise ValueError(f"n_features must be ≥ 1; got {n_features}")
        if ridge <= 0:
            raise ValueError(f"ridge must be positive; got {ridge}")
        self.n_features = n_features
        self.ridge = ridge
        eye = np.eye(n_features)
        self.A_ = np.repeat(eye[None] * ridge, n_actions, axis=0)
        self.A_inv_ = np.repeat(eye[None] / ridge, n_actions, axis=0)
        self.b_ = np.zeros((n_actions, n_features))
        self.theta_ = np.zeros((n_actions, n_features))

    def _context(self, context: np.ndarray | None) -> np.ndarray:
        x = np.asarray(context, dtype=np.float64)
        if x.shape != (self.n_features,):
            raise ValueError(f"context must have shape ({self.n_features},); got {x.shape}")
        return x

    def predict(self, context: np.ndarray, candidates: np.ndarray):
        """Ridge estimate xᵀθ and the quadratic form xᵀA⁻¹x for each candidate (no mutation)."""
        x = self._context(context)
        a_inv_x = self.A_inv_[candidates] @ x
        return self.theta_[candidates] @ x, np.maximum(a_inv_x @ x, 0.0)

    def _learn(self, batch: Batch) -> None:
        if batch.contexts is None or batch.contexts.shape[1] != self.n_features:
            raise ValueError(
                f"{type(self).__name__} needs contexts of shape (n, {self.n_features})"
            )
        X, actions, rewards = batch.contexts, batch.actions, batch.rewards
        for a in np.unique(actions):
            rows = actions == a
            Xa = X[rows]
            self.A_[a] += Xa.T @ Xa
            self.b_[a] += Xa.T @ rewards[rows]
            if len(Xa) <= self.n_features:
                for x in Xa:
                    sherman_morrison(self.A_inv_[a], x)
            else:
                self.A_inv_[a] = np.linalg.inv(self.A_[a])
            self.theta_[a] = self.A_inv_[a] @ self.b_[a]

    def _restored(self) -> None:
        self.theta_ = np.einsum("kij,kj->ki", self.A_inv_, self.b_)
