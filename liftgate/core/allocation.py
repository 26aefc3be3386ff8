"""Allocation: which scored action to take, with the exact probability of taking it.

The ε-greedy policy (Sutton & Barto 2018, §2.2) takes the best expected value with
probability 1 − ε and a uniformly random candidate with probability ε: among K candidates,

    π(a) = ε/K + (1 − ε)·[a = the first argmax of the expected values],

so every candidate has propensity ≥ ε/K and off-policy evaluation of any other policy on
the log is possible. Ties break by catalogue order. The served decision draws from π with a
hash of the decision id, so it can be replayed exactly; off-policy evaluation of a
challenger computes π for many logged rows at once (`epsilon_greedy_propensities`; the served
choice computes the same numbers for its one row).

>>> choice = epsilon_greedy(np.array([1.0, 3.0, 2.0]), epsilon=0.1, draw=0.5)
>>> choice.index, round(choice.propensity, 4), [round(p, 4) for p in choice.propensities]
(1, 0.9333, [0.0333, 0.9333, 0.0333])
>>> values = np.array([[1.0, 3.0, 2.0], [5.0, 0.0, 9.0]])
>>> candidates = np.array([[True, True, True], [True, True, False]])  # row 2: no action 2
>>> epsilon_greedy_propensities(values, 0.1, candidates).round(3).tolist()
[[0.033, 0.933, 0.033], [0.95, 0.05, 0.0]]
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Choice:
    index: int  # position in the scored candidates
    propensity: float
    propensities: list[float]


def unit_draw(key: str) -> float:
    """A uniform number in [0, 1) that is a pure function of `key`."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def epsilon_greedy_propensities(
    expected_values: np.ndarray, epsilon: float, candidates: np.ndarray | None = None
) -> np.ndarray:
    """π of the module docstring for each row of (n × K) `expected_values`, over the row's
    `candidates` (an n × K mask; default: every column). 0 off the candidates; rows sum to 1.
    """
    return _greedy_and_propensities(np.asarray(expected_values, np.float64), epsilon, candidates)[1]


def epsilon_greedy(
    expected_values: Sequence[float] | np.ndarray, epsilon: float, draw: float
) -> Choice:
    """Choose among candidates (in catalogue order) given a uniform `draw`: the greedy one
    when ``draw < 1 − ε``, else the candidate at ``(draw − (1 − ε)) / ε`` of the way.

    π for one decision in plain Python, with the float operations of
    `epsilon_greedy_propensities` (ε/K, plus 1 − ε for the first maximum), so the two are
    equal, not close (a test holds them to it): on a decision's few candidates NumPy's
    per-call overhead made this 6-8 µs; it is now under 2.
    """
    values = _floats(expected_values)
    k = len(values)
    greedy = _first_maximum(values)
    explore = epsilon / k
    propensities = [explore] * k
    propensities[greedy] = explore + (1.0 - epsilon)
    if draw < 1.0 - epsilon:
        index = greedy
    else:
        index = min(int((draw - (1.0 - epsilon)) / epsilon * k), k - 1)
    return Choice(index, propensities[index], propensities)


def ranked_order(expected_values: Sequence[float] | np.ndarray) -> list[int]:
    """Candidate positions best first; ties keep catalogue order (a stable sort)."""
    values = _floats(expected_values)
    if _has_nan(values):  # NumPy sorts NaN last
        return np.argsort(-np.asarray(values), kind="stable").tolist()
    return sorted(range(len(values)), key=values.__getitem__, reverse=True)  # stable


def _floats(values: Sequence[float] | np.ndarray) -> list[float]:
    return values if isinstance(values, list) else np.asarray(values, np.float64).tolist()


def _has_nan(values: list[float]) -> bool:
    total = sum(values)  # NaN if any is (or if inf and -inf meet: NumPy's way then, as exact)
    return total != total


def _first_maximum(values: list[float]) -> int:
    """As `np.argmax`: the first maximum, or the first NaN."""
    if _has_nan(values):
        return int(np.argmax(values))
    return max(range(len(values)), key=values.__getitem__)


def _greedy_and_propensities(
    values: np.ndarray, epsilon: float, candidates: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the greedy column (the first maximum: catalogue order breaks ties) and π."""
    if candidates is None:
        greedy = values.argmax(axis=1)
        propensities = np.full(values.shape, epsilon / values.shape[1])
    else:
        greedy = np.where(candidates, values, -np.inf).argmax(axis=1)
        propensities = candidates * (epsilon / candidates.sum(axis=1))[:, None]
    propensities[np.arange(len(values)), greedy] += 1.0 - epsilon
    return greedy, propensities
