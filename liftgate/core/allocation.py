"""Allocation: which scored action to take, with the exact probability of taking it.

The greedy-ε policy (Sutton & Barto 2018, §2.2) takes the best expected value with
probability 1 − ε and a uniformly random eligible action with probability ε, so every
eligible action has propensity ≥ ε/K and off-policy evaluation of any other policy on the
log is possible. Ties break by catalogue order. The random draw is a hash of the decision
id, so a decision can be replayed exactly.

>>> choice = greedy_epsilon(np.array([1.0, 3.0, 2.0]), epsilon=0.1, draw=0.5)
>>> choice.index, round(choice.propensity, 4), [round(p, 4) for p in choice.propensities]
(1, 0.9333, [0.0333, 0.9333, 0.0333])
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

POLICY_GREEDY_EPSILON = "greedy_epsilon"
POLICY_UNIFORM = "uniform_random"  # an experiment arm: ε = 1
POLICY_RULES = "rules"  # an experiment arm: the catalogue's fallback order, unscored
POLICY_FALLBACK = "rules_fallback"  # the same order, because scoring failed


@dataclass(frozen=True)
class Choice:
    index: int  # position in the scored candidates
    propensity: float
    propensities: list[float]


def unit_draw(key: str) -> float:
    """A uniform number in [0, 1) that is a pure function of `key`."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def greedy_epsilon(expected_values: np.ndarray, epsilon: float, draw: float) -> Choice:
    """Choose among candidates (in catalogue order) given a uniform `draw`."""
    k = len(expected_values)
    greedy = int(np.argmax(expected_values))  # first maximum: catalogue order breaks ties
    propensities = np.full(k, epsilon / k)
    propensities[greedy] += 1.0 - epsilon
    if draw < 1.0 - epsilon:
        index = greedy
    else:
        index = min(int((draw - (1.0 - epsilon)) / epsilon * k), k - 1)
    return Choice(index, float(propensities[index]), propensities.tolist())


def ranked_order(expected_values: np.ndarray) -> np.ndarray:
    """Candidate positions best first; ties keep catalogue order (a stable sort)."""
    return np.argsort(-expected_values, kind="stable")
