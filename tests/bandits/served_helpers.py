"""Shared pieces of the served-bandit tests: a bandit experiment and hand-made log rows
(imported by the test modules of this directory)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from configs.loader import load_config
from configs.schema import ExperimentConfig
from experiments.bandits.spec import BanditSpec
from experiments.logs import (
    DECISION_SCHEMA,
    OUTCOME_SCHEMA,
    LogWriter,
    decision_log_dir,
    outcome_log_dir,
)

CONFIG = load_config()
NOON = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
N_FEATURES = len(CONFIG.features.features)


def bandit_experiment(name: str = "bandit-test", **bandit: Any) -> ExperimentConfig:
    """A bandit experiment: arm `learner` (policy bandit, 90 %) and `uniform` (10 %)."""
    return ExperimentConfig.model_validate(
        {
            "name": name,
            "kind": "bandit",
            "bandit": {"policy": "thompson", "attribution_window_hours": 1, **bandit},
            "arms": [
                {"name": "uniform", "weight": 0.1, "policy": "uniform_random"},
                {"name": "learner", "weight": 0.9, "policy": "bandit"},
            ],
            "primary_metric": {"name": "conversion", "kind": "binomial", "column": "converted"},
        }
    )


def spec_of(experiment: ExperimentConfig) -> BanditSpec:
    return BanditSpec(experiment, CONFIG.features, CONFIG.actions)


def decision(
    decision_id: str,
    ts: dt.datetime,
    chosen: str,
    *,
    experiment: str = "bandit-test",
    arm: str = "learner",
    policy: str = "bandit:thompson",
    features: list[float] | None = None,
) -> dict[str, Any]:
    """A decision-log row of the bandit's arm (override what a test varies)."""
    return dict(
        decision_id=decision_id,
        ts=ts,
        customer_id=f"c-{decision_id}",
        features=features if features is not None else [0.0] * N_FEATURES,
        contract_version="1",
        actions=[chosen],
        scores=[float("nan")],
        probabilities=[float("nan")],
        chosen=chosen,
        propensity=0.5,
        policy=policy,
        model_name="liftgate-scorer",
        model_version="",
        model_alias="champion",
        experiment=experiment,
        arm=arm,
        fallback=False,
        cold_start=False,
        latency_ms=1.0,
        trace_id="t",
    )


def outcome(decision_id: str, ts: dt.datetime, event: str = "conversion", value: float = 1.0):
    return dict(
        outcome_id=f"o-{decision_id}-{event}",
        decision_id=decision_id,
        ts=ts,
        event=event,
        value=value,
        received_ts=ts,
        known_decision=True,
    )


def write_logs(root: Path, decisions=(), outcomes=()) -> None:
    with LogWriter(decision_log_dir(root), DECISION_SCHEMA) as log:
        for row in decisions:
            log.append(row)
    with LogWriter(outcome_log_dir(root), OUTCOME_SCHEMA) as log:
        for row in outcomes:
            log.append(row)
