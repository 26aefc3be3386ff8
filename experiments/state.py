"""Running experiments, persisted under LIFTGATE_HOME/experiments/state.json.

`liftgate experiment start/stop` write it; serving replicas re-read it when it changes
(every couple of seconds), so starting or stopping an experiment needs no restart. The
state keeps a snapshot of each experiment's configuration as it was started and its arm
ranges, so a weight change on restart moves the fewest units (`assignment.rebalance`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from configs.schema import ExperimentConfig
from experiments.assignment import initial_ranges, rebalance
from experiments.router import ExperimentRouter, RunningExperiment, overlapping
from liftgate.core.errors import BAD_INPUT, LiftgateError
from liftgate.core.home import Home
from liftgate.core.jsonstate import locked_json, read_json


def read_state(home: Home) -> dict:
    return read_json(home.experiment_state, {})


@contextmanager
def _locked_state(home: Home) -> Iterator[dict]:
    with locked_json(home.experiment_state, dict, indent=2, sort_keys=True, default=str) as state:
        yield state


class ExperimentStateError(LiftgateError, ValueError):
    """An experiment that cannot start in the running set (exit 1, the default), or that
    was never started (``BAD_INPUT``)."""


def start(home: Home, config: ExperimentConfig) -> dict:
    weights = {arm.name: arm.weight for arm in config.arms}
    with _locked_state(home) as state:
        for name, entry in state.items():
            other = ExperimentConfig.model_validate(entry["config"])
            if name != config.name and entry["status"] == "running" and overlapping(config, other):
                raise ExperimentStateError(
                    f"{config.name} overlaps running experiment {name} in layer "
                    f"{config.layer_name!r} (layer_range {list(config.layer_range)} vs "
                    f"{list(other.layer_range)}); stop it or give them disjoint ranges"
                )
        previous = state.get(config.name)
        ranges = rebalance(previous["ranges"], weights) if previous else initial_ranges(weights)
        now = datetime.now(UTC).isoformat()
        state[config.name] = {
            "status": "running",
            "config": config.model_dump(mode="json"),
            "ranges": ranges,
            "started_at": previous["started_at"] if previous else now,
            "restarted_at": now if previous else None,
            "stopped_at": None,
        }
        return state[config.name]


def stop(home: Home, name: str) -> dict:
    with _locked_state(home) as state:
        if name not in state:
            raise ExperimentStateError(
                f"experiment {name!r} was never started", exit_code=BAD_INPUT
            )
        state[name]["status"] = "stopped"
        state[name]["stopped_at"] = datetime.now(UTC).isoformat()
        return state[name]


def router_from_state(state: dict) -> ExperimentRouter:
    running = sorted(
        (entry for entry in state.values() if entry["status"] == "running"),
        key=lambda entry: entry["started_at"],
    )
    return ExperimentRouter(
        [
            RunningExperiment(
                ExperimentConfig.model_validate(entry["config"]),
                {arm: [tuple(iv) for iv in ivs] for arm, ivs in entry["ranges"].items()},
            )
            for entry in running
        ]
    )
