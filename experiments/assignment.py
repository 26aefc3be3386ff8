"""Sticky assignment of units to experiment arms: a pure function of (salt, unit id).

A unit hashes to a point in [0, 1) (BLAKE2b of ``"salt:unit"``, the first 8 bytes read as an
integer over 2^64); each arm owns a set of intervals of [0, 1) whose total length is its
weight. The same unit gets the same arm on every request and every replica, and experiments
with different salts are independent.

Changing the weights moves as few units as possible: `rebalance` keeps every interval an
arm already owns, trims arms that shrink (from the end of their last interval) and hands
the freed intervals to arms that grow. The share of units that change arm is then exactly
the total variation distance between the old and new weights, the least any reassignment
can move (Kohavi, Tang & Xu 2020, ch. 12 discuss why moving units between arms biases an
experiment; GrowthBook keeps ranges stable under coverage changes for the same reason).

Experiments in one layer are mutually exclusive: a second hash with the layer's salt places
each unit in at most one experiment's share of the layer.

>>> ranges = initial_ranges({"control": 0.5, "treatment": 0.5})
>>> arm_of(ranges, unit_point("exp-1", "customer-42"))
'treatment'
>>> rebalance(ranges, {"control": 0.2, "treatment": 0.8})  # control's top 0.3 moves
{'control': [(0.0, 0.2)], 'treatment': [(0.2, 1.0)]}
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

import numpy as np

Interval = tuple[float, float]
ArmRanges = dict[str, list[Interval]]

_TOLERANCE = 1e-9


def unit_point(salt: str, unit_id: str) -> float:
    """Where a unit falls in [0, 1) for this salt."""
    digest = hashlib.blake2b(f"{salt}:{unit_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def unit_points(salt: str, unit_ids: Iterable[str]) -> np.ndarray:
    return np.fromiter((unit_point(salt, u) for u in unit_ids), dtype=np.float64)


def _check_weights(weights: Mapping[str, float]) -> None:
    if not weights:
        raise ValueError("an experiment needs at least one arm")
    if any(w < 0 for w in weights.values()):
        raise ValueError(f"arm weights must be >= 0; got {dict(weights)}")
    if abs(sum(weights.values()) - 1.0) > 1e-6:
        raise ValueError(f"arm weights must sum to 1; got {sum(weights.values())}")


def initial_ranges(weights: Mapping[str, float]) -> ArmRanges:
    """Consecutive intervals in the order of `weights`."""
    _check_weights(weights)
    ranges: ArmRanges = {}
    start = 0.0
    for arm, weight in weights.items():
        ranges[arm] = [(start, start + weight)] if weight > 0 else []
        start += weight
    last = next(reversed(ranges))
    if ranges[last]:  # close the top against float rounding
        ranges[last][-1] = (ranges[last][-1][0], 1.0)
    return ranges


def arm_weight(intervals: list[Interval]) -> float:
    return sum(end - start for start, end in intervals)


def rebalance(ranges: ArmRanges, weights: Mapping[str, float]) -> ArmRanges:
    """New ranges for `weights` that move only the total-variation share of units."""
    _check_weights(weights)
    ranges = {arm: [(float(a), float(b)) for a, b in ivs] for arm, ivs in ranges.items()}
    new: ArmRanges = {arm: list(ranges.get(arm, [])) for arm in weights}
    freed: list[Interval] = [iv for arm, ivs in ranges.items() if arm not in weights for iv in ivs]
    for arm, target in weights.items():
        excess = arm_weight(new[arm]) - target
        while excess > _TOLERANCE:
            start, end = new[arm].pop()
            cut = min(excess, end - start)
            if end - cut > start + _TOLERANCE:
                new[arm].append((start, end - cut))
            freed.append((end - cut, end))
            excess -= cut
    freed.sort()
    for arm, target in weights.items():
        need = target - arm_weight(new[arm])
        while need > _TOLERANCE and freed:
            start, end = freed.pop(0)
            take = min(need, end - start)
            new[arm].append((start, start + take))
            if start + take < end - _TOLERANCE:
                freed.insert(0, (start + take, end))
            need -= take
    return {arm: _merged(ivs) for arm, ivs in new.items()}


def _merged(intervals: list[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and abs(merged[-1][1] - start) <= _TOLERANCE:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def arm_of(ranges: ArmRanges, point: float) -> str | None:
    for arm, intervals in ranges.items():
        for start, end in intervals:
            if start <= point < end:
                return arm
    return None


def arms_of(ranges: ArmRanges, points: np.ndarray) -> np.ndarray:
    """Vectorized `arm_of`: an object array of arm names (None outside every range)."""
    out = np.full(len(points), None, dtype=object)
    for arm, intervals in ranges.items():
        for start, end in intervals:
            out[(points >= start) & (points < end)] = arm
    return out
