"""The reward of a decision, by kind: the one formula of the bandits, OPE and the arena.

With ``converted`` ∈ {0, 1} (any conversion in the attribution window), ``revenue`` (the
revenue it brought; 0 without a conversion) and ``cost`` (the chosen action's contact cost):

- ``converted``: converted;
- ``revenue``: revenue;
- ``profit``: revenue − cost.

Every kind is linear in (converted, revenue), so the same function gives the expected
reward from P(convert) and the expected revenue P(convert) × order value.

>>> reward_of(PROFIT, converted=np.array([1, 0]), revenue=np.array([40.0, 0.0]),
...           cost=np.array([2.0, 0.5])).tolist()
[38.0, -0.5]
>>> reward_of(CONVERTED, np.array([0.2]), np.array([9.0]), np.array([1.0])).tolist()  # expected
[0.2]

Reference: Li, Chu, Langford & Schapire (2010), "A Contextual-Bandit Approach to
Personalized News Article Recommendation", WWW 2010 (a 0/1 response as the reward); the
other kinds value the response in money, net of the contact cost for profit.
"""

from __future__ import annotations

import numpy as np

from liftgate.core.vocabulary import CONVERTED, PROFIT, REVENUE, REWARD_KINDS


def reward_of(
    kind: str, converted: np.ndarray, revenue: np.ndarray, cost: np.ndarray
) -> np.ndarray:
    """The reward of each decision (or its expectation), as float64; arrays broadcast."""
    if kind == CONVERTED:
        return np.asarray(converted, dtype=np.float64)
    if kind == REVENUE:
        return np.asarray(revenue, dtype=np.float64)
    if kind == PROFIT:
        return np.asarray(revenue, dtype=np.float64) - np.asarray(cost, dtype=np.float64)
    raise ValueError(f"reward must be one of {', '.join(REWARD_KINDS)}; got {kind!r}")
