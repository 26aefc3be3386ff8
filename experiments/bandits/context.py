"""The context a linear bandit policy sees: one encoder for the served bandit and the arena.

A contract vector (one row of `FeatureContract.transform`: categories as codes, booleans
0/1, numbers clipped to their range, after ``log1p`` where the contract applies it) becomes

    x = [1, then per feature in contract order: one-hot(code) for a category, 0/1 for a
         boolean, (v − low) / (high − low) for a number]

with ``low``, ``high`` the feature's contract range (after ``log1p`` where it applies; a
number without a range is left as it is, one with a one-point range becomes 0). The scaling
needs no statistics of a population, so a row gives the same context at decision time,
from the decision log when the bandit learns, and in the simulation
(`liftgate.sim.bandit_arena`), whose regret figures therefore describe the served policy.

>>> from configs.loader import load_config
>>> features = load_config().features
>>> encoder = LinearContext(features)
>>> x = encoder.encode(np.zeros((1, len(features.features))))
>>> encoder.dimension, x.shape, float(x[0, 0])  # column 0: the intercept
(25, (1, 25), 1.0)

Reference: Li, Chu, Langford & Schapire (2010), "A Contextual-Bandit Approach to
Personalized News Article Recommendation", WWW 2010, section 5.2 (a context of an
intercept, binary user features and scaled numeric ones).
"""

from __future__ import annotations

import numpy as np

from configs.schema import FeaturesConfig


class LinearContext:
    """Contract vectors (rows × features, as `FeatureContract.transform` makes them) → the
    context of a linear policy: intercept, one-hot categories, 0/1 booleans, scaled numbers."""

    def __init__(self, features: FeaturesConfig):
        self.n_features = len(features.features)
        numeric: list[tuple[int, int, float, float]] = []  # (source, target, low, span)
        categories: list[tuple[int, int, int]] = []  # (source, first target, width)
        at = 1  # column 0 is the intercept
        for j, spec in enumerate(features.features):
            if spec.dtype == "category":
                categories.append((j, at, len(spec.categories)))
                at += len(spec.categories)
                continue
            low, span = 0.0, 1.0
            if spec.dtype != "bool" and spec.range is not None:
                low, high = (np.log1p(v) if spec.transform == "log1p" else v for v in spec.range)
                low, span = float(low), float(high - low) or 1.0
            numeric.append((j, at, low, span))
            at += 1
        self.dimension = at
        numbers = np.array(numeric, dtype=np.float64).reshape(-1, 4)
        self._numeric_source, self._numeric_target = numbers[:, :2].astype(np.int64).T
        self._low, self._span = numbers[:, 2], numbers[:, 3]
        self._category_source, self._category_first, self._category_width = (
            np.array(categories, dtype=np.int64).reshape(-1, 3).T
        )

    def encode(self, rows: np.ndarray) -> np.ndarray:
        """(rows × contract features) → (rows × `dimension`) contexts."""
        rows = np.atleast_2d(np.asarray(rows, dtype=np.float64))
        if rows.shape[1] != self.n_features:
            raise ValueError(
                f"a contract vector has {self.n_features} features; got {rows.shape[1]}"
            )
        out = np.zeros((len(rows), self.dimension))
        out[:, 0] = 1.0
        out[:, self._numeric_target] = (rows[:, self._numeric_source] - self._low) / self._span
        codes = rows[:, self._category_source].astype(np.int64)
        np.clip(codes, 0, self._category_width - 1, out=codes)
        out[np.arange(len(rows))[:, None], self._category_first + codes] = 1.0
        return out
