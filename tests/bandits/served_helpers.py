"""Shared pieces of the served-bandit tests: a bandit experiment and hand-made log records
(imported by the test modules of this directory)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from configs.loader import load_config
from configs.schema import ExperimentConfig
from experiments.bandits.spec import BanditSpec
from experiments.logs.schema import DecisionRecord, OutcomeRecord
from experiments.logs.writer import LogWriter
from liftgate.core.home import Home

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
) -> DecisionRecord:
    """A decision of the bandit's arm (override what a test varies)."""
    return DecisionRecord(
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


def outcome(
    decision_id: str, ts: dt.datetime, event: str = "conversion", value: float = 1.0
) -> OutcomeRecord:
    return OutcomeRecord(
        outcome_id=f"o-{decision_id}-{event}",
        decision_id=decision_id,
        ts=ts,
        event=event,
        value=value,
        received_ts=ts,
        known_decision=True,
    )


def write_logs(
    home: Home, decisions: Iterable[DecisionRecord] = (), outcomes: Iterable[OutcomeRecord] = ()
) -> None:
    with LogWriter(home.decision_log, DecisionRecord) as log:
        for decision_record in decisions:
            log.append(decision_record)
    with LogWriter(home.outcome_log, OutcomeRecord) as log:
        for outcome_record in outcomes:
            log.append(outcome_record)
