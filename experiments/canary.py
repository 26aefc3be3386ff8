"""The canary router: which model serves a customer during a rollout, as a pure function.

A rollout sends a `weight` share of customers to the challenger model. Customers are placed
by a sticky hash of their id with the rollout's salt (`experiments.assignment.unit_point`),
so a customer keeps seeing one model for the whole rollout, and a customer in the canary
at 5 % stays in it at 25 %: the canary is the points below `weight`. With a baseline
(Kayenta's practice, Spinnaker's automated canary analysis), the same share at the top of
the interval is served by the champion and labelled `baseline`: the comparison group then
has the canary's size and age, not the whole stable population's.

The split is what the serving replicas hold; the guard changes it (experiments/canary_state.py
persists it, Ray Serve delivers it to replicas through `user_config`). Decisions of a
rollout are logged with experiment ``rollout/<name>`` and arm ``canary``, ``baseline`` or
``stable``, so the experiment analysis reads them like any experiment.

>>> split = CanarySplit(rollout="r", salt="r", weight=0.25, baseline=True, challenger="7")
>>> variants = [split.variant(f"customer-{i}") for i in range(10_000)]
>>> round(variants.count(CANARY) / 10_000, 2), round(variants.count(BASELINE) / 10_000, 2)
(0.25, 0.25)
>>> bigger = CanarySplit(rollout="r", salt="r", weight=0.5, baseline=True, challenger="7")
>>> all(bigger.variant(f"customer-{i}") == CANARY
...     for i, v in enumerate(variants) if v == CANARY)  # sticky as the weight grows
True
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from experiments.assignment import unit_point
from liftgate.core.vocabulary import BASELINE, CANARY, ROLLOUT_PREFIX, STABLE


@dataclass(frozen=True)
class CanarySplit:
    rollout: str
    salt: str
    weight: float  # the challenger's share of customers, in (0, 1]
    baseline: bool  # a champion copy at the same weight is labelled `baseline`
    challenger: str  # the challenger's registry version (resolved when the rollout starts)
    revision: int = 0  # increases with every change, so replicas can report what they apply

    def __post_init__(self) -> None:
        if not 0.0 < self.weight <= 1.0:
            raise ValueError(f"weight must be in (0, 1]; got {self.weight}")
        if self.baseline and self.weight > 0.5 and self.weight < 1.0:
            raise ValueError(f"a baseline needs weight ≤ 0.5; got {self.weight}")

    @property
    def experiment(self) -> str:
        return ROLLOUT_PREFIX + self.rollout

    def variant(self, unit_id: str) -> str:
        point = unit_point(f"rollout:{self.salt}", unit_id)
        if point < self.weight:
            return CANARY
        if self.baseline and point >= 1.0 - self.weight:
            return BASELINE
        return STABLE

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> CanarySplit | None:
        return None if not data else cls(**data)
