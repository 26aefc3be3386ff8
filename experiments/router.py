"""Which experiment and arm a decision belongs to: a pure function of the running set.

Each running experiment owns `layer_range` of its layer (a hash of the unit with the layer
name); inside it, a `holdout` share (a hash with the experiment's salt and "holdout") is
kept out and logged as arm `holdout`, and the rest is split by the arm ranges
(`experiments.assignment`). One experiment applies per decision: the first running one
(by start time) whose layer range holds the unit. Experiments that must not interact
share a layer with disjoint ranges.

>>> from configs.schema import ExperimentConfig
>>> from experiments.assignment import initial_ranges
>>> config = ExperimentConfig.model_validate({
...     "name": "e", "arms": [{"name": "a", "weight": 0.5}, {"name": "b", "weight": 0.5}],
...     "primary_metric": {"name": "conversion", "kind": "binomial", "column": "converted"}})
>>> router = ExperimentRouter([RunningExperiment(config, initial_ranges({"a": .5, "b": .5}))])
>>> router.assign("customer-1").arm.name in {"a", "b"}
True
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from configs.schema import ArmConfig, ExperimentConfig
from experiments.assignment import ArmRanges, arm_of, unit_point
from liftgate.core.vocabulary import HOLDOUT

HOLDOUT_ARM = ArmConfig(name="holdout-arm", weight=0.0)  # the service's default treatment


@dataclass(frozen=True)
class RunningExperiment:
    config: ExperimentConfig
    ranges: ArmRanges


@dataclass(frozen=True)
class Assignment:
    experiment: str
    arm_name: str
    arm: ArmConfig


def layer_point(layer: str, unit_id: str) -> float:
    return unit_point(f"layer:{layer}", unit_id)


class ExperimentRouter:
    def __init__(self, running: list[RunningExperiment]):
        self.running = tuple(running)

    def assign(self, unit_id: str, now: datetime | None = None) -> Assignment | None:
        """The unit's experiment and arm; experiments outside their `start`/`stop` schedule
        (if the YAML sets one) do not apply."""
        for experiment in self.running:
            config = experiment.config
            if config.start is not None or config.stop is not None:
                now = now or datetime.now(UTC)
                if (config.start and now < config.start) or (config.stop and now >= config.stop):
                    continue
            low, high = config.layer_range
            if not low <= layer_point(config.layer_name, unit_id) < high:
                continue
            if config.holdout and unit_point(f"{config.salt_value}:holdout", unit_id) < (
                config.holdout
            ):
                return Assignment(config.name, HOLDOUT, HOLDOUT_ARM)
            name = arm_of(experiment.ranges, unit_point(config.salt_value, unit_id))
            arm = next(a for a in config.arms if a.name == name)
            return Assignment(config.name, name, arm)
        return None


def overlapping(a: ExperimentConfig, b: ExperimentConfig) -> bool:
    """Whether two experiments could claim the same unit in the same layer."""
    if a.layer_name != b.layer_name:
        return False
    return a.layer_range[0] < b.layer_range[1] and b.layer_range[0] < a.layer_range[1]
