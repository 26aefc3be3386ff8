"""What the guard sees of a rollout: the logs since it began, as verdict inputs.

Decisions of the rollout (experiment ``rollout/<name>``) are joined with their outcomes
inside the attribution window and aggregated into units — one per customer and variant,
since a growing canary takes customers from the stable group — then into the sufficient
statistics of each KPI (`verdict.kpi_observations`). Operations are the latest
interval's decisions of each group: errors (scoring failed or no model), fallbacks
(any rules fallback) and the 95th percentile of the logged service latency.
The comparison group is the baseline when the rollout has one, else the stable group.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from configs.schema import RolloutConfig
from experiments.logs.reader import read_decisions, read_outcomes
from experiments.units import experiment_units
from liftgate.core.home import Home
from liftgate.core.vocabulary import BASELINE, CANARY, ROLLOUT_PREFIX, STABLE
from liftgate.guard.verdict import (
    GroupOperations,
    KpiObservation,
    OperationsObservation,
    StepProgress,
    kpi_observations,
)

ERROR_REASONS = ("scoring_error", "model_unavailable")


@dataclass(frozen=True)
class RolloutObservation:
    progress: StepProgress
    kpis: list[KpiObservation]
    operations: OperationsObservation
    decisions: int  # of the rollout since it began
    units: dict[str, int]  # per variant


def comparison_group(rollout: RolloutConfig) -> str:
    return BASELINE if rollout.baseline else STABLE


def group_operations(decisions: pa.Table) -> GroupOperations:
    n = decisions.num_rows
    if n == 0:
        return GroupOperations(0, 0, 0, None)
    reasons = decisions["fallback_reason"]
    errors = pc.sum(pc.is_in(reasons, value_set=pa.array(ERROR_REASONS))).as_py() or 0
    fallbacks = pc.sum(decisions["fallback"]).as_py() or 0
    latency = float(np.percentile(decisions["latency_ms"].to_numpy(), 95))
    return GroupOperations(n, int(errors), int(fallbacks), latency)


def observe_tables(
    rollout: RolloutConfig,
    decisions: pa.Table,
    outcomes: pa.Table,
    step_index: int,
    step_started: datetime,
    now: datetime,
) -> RolloutObservation:
    """The verdict inputs from the rollout's decision and outcome tables (pure)."""
    experiment = ROLLOUT_PREFIX + rollout.name
    decisions = decisions.filter(pc.equal(decisions["experiment"], experiment))
    window_s = rollout.analysis.attribution_window_hours * 3600
    units = experiment_units(decisions, outcomes, experiment, window_s, per_arm=True)
    comparison = comparison_group(rollout)
    compared = units.filter(pc.is_in(units["arm"], value_set=pa.array([CANARY, comparison])))
    kpis = kpi_observations(compared, rollout.metrics)
    counts = {row["values"]: row["counts"] for row in pc.value_counts(units["arm"]).to_pylist()}
    recent = decisions.filter(
        pc.greater_equal(
            decisions["ts"], pa.scalar(now - timedelta(seconds=rollout.analysis.interval_s))
        )
    )
    operations = OperationsObservation(
        canary=group_operations(recent.filter(pc.equal(recent["arm"], CANARY))),
        comparison=group_operations(recent.filter(pc.equal(recent["arm"], comparison))),
    )
    progress = StepProgress(
        step_index=step_index,
        canary_units=int(counts.get(CANARY, 0)),
        comparison_units=int(counts.get(comparison, 0)),
        elapsed_s=(now - step_started).total_seconds(),
    )
    return RolloutObservation(progress, kpis, operations, decisions.num_rows, counts)


def observe(
    home: Home,
    rollout: RolloutConfig,
    started: datetime,
    step_index: int,
    step_started: datetime,
    now: datetime,
) -> RolloutObservation:
    """Read the logs since the rollout started and observe them."""
    decisions = read_decisions(home.decision_log, start=started)
    outcomes = read_outcomes(home.outcome_log, start=started)
    return observe_tables(rollout, decisions, outcomes, step_index, step_started, now)
