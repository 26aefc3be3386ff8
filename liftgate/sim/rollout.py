"""A seeded simulation of canary rollouts through the pure verdict: power and false rollbacks.

Every analysis interval (``analysis.interval_s``) new customers arrive, Poisson with mean
``units_per_s * interval_s``, and a sticky hash sends a share ``weight`` of them to the
canary and, with ``baseline: true``, the same share to the champion's baseline copy (else
the comparison is the stable rest, ``1 - weight``). Each unit makes one decision and
converts with probability ``conversion_rate`` (10 % by default), times ``1 + effect`` in
the canary; a converter spends a lognormal amount (median e^3.5 ≈ 33, sigma 1, so
revenue per unit moves with conversion). Outcomes are seen within the interval (no
attribution delay). Errors and fallbacks are binomial, p95 latency 25 ms with 5 % noise.

The units go through :func:`liftgate.guard.verdict.kpi_observations`, as the guard's unit
table does, and accumulate since the rollout started; :func:`judge_interval` then decides:
ROLLBACK ends the run, PROMOTE moves to the next step (after the last step of weight below
1 the challenger is promoted), INCONCLUSIVE follows ``on_inconclusive``. A run still
holding after ``max_intervals`` ends as ``held``. This is the guard without Ray, MLflow or
HTTP, a rollout takes milliseconds, and the rollback rates of a bad and of an equal
challenger are measured, not assumed (``load_tests/bench_guard.py``).

>>> from configs.loader import DEFAULT_DIR, load_file
>>> from configs.schema import RolloutConfig
>>> rollout = load_file(DEFAULT_DIR / "rollouts" / "scorer-canary.yaml", RolloutConfig)
>>> bad = simulate_rollout(rollout, Challenger(conversion_effect=-0.10), seed=3)
>>> bad.outcome, bad.step_index + 1, bad.intervals, bad.canary_decisions
('rolled_back', 2, 7, 16443)
>>> print(bad.summary)
conversion −12.1 % (95 % CS −21.5 % … −2.7 %, anytime p 0.002) below the −2 % limit
>>> equal = simulate_rollout(rollout, Challenger(conversion_effect=0.0), seed=1)
>>> equal.outcome, equal.intervals, equal.seconds
('promoted', 18, 180.0)

Practice: the simulation studies of sequential tests in Johari, Koomen, Pekelis, Walsh
(2017), "Peeking at A/B Tests: Why it matters, and what to do about it", KDD, applied to
Kayenta-style canary steps (a canary and a baseline of equal size, judged every interval).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa

from configs.schema import RolloutConfig
from liftgate.core.vocabulary import BASELINE, CANARY, STABLE
from liftgate.guard.verdict import (
    GroupOperations,
    KpiObservation,
    Method,
    OperationsObservation,
    StepProgress,
    VerdictKind,
    judge_interval,
    kpi_observations,
)

Outcome = Literal["rolled_back", "promoted", "held"]


@dataclass(frozen=True)
class Traffic:
    """The champion's world: arrivals, conversion, spend and operations per decision.

    3,000 new customers a second is the traffic at which the example rollout's 30-second
    steps collect enough units to catch a −10 % challenger in ≥ 95 % of runs.
    """

    units_per_s: float = 3_000.0
    conversion_rate: float = 0.10
    revenue_log_mean: float = 3.5
    revenue_log_sigma: float = 1.0
    error_rate: float = 0.002
    fallback_rate: float = 0.01
    p95_latency_ms: float = 25.0


@dataclass(frozen=True)
class Challenger:
    """How the challenger differs: a relative effect on conversion and its own error rate
    (None: the champion's)."""

    conversion_effect: float = 0.0
    error_rate: float | None = None


@dataclass(frozen=True)
class RolloutRun:
    """One simulated rollout: how it ended, at which step, after how many intervals, canary
    decisions and simulated seconds, and the final verdict's summary."""

    outcome: Outcome
    step_index: int
    intervals: int
    canary_decisions: int
    seconds: float
    summary: str


def simulate_rollout(
    rollout: RolloutConfig,
    challenger: Challenger,
    traffic: Traffic = Traffic(),
    seed: int = 0,
    *,
    method: Method = "sequential",
    max_intervals: int = 1_000,
) -> RolloutRun:
    """One seeded rollout judged every interval; ``method="frequentist"`` is the peeking
    baseline (a fixed-horizon interval checked at every interval)."""
    rng = np.random.default_rng(seed)
    analysed_steps = sum(step.weight < 1.0 for step in rollout.steps)
    interval_s = rollout.analysis.interval_s
    comparison_arm = BASELINE if rollout.baseline else STABLE
    canary_rate = traffic.conversion_rate * (1.0 + challenger.conversion_effect)
    canary_errors = traffic.error_rate if challenger.error_rate is None else challenger.error_rate
    cumulative: list[KpiObservation] | None = None
    step_index, step_began, step_canary, step_comparison = 0, 1, 0, 0
    canary_decisions, failures, summary = 0, 0, ""

    def run(outcome: Outcome, intervals: int) -> RolloutRun:
        return RolloutRun(
            outcome, step_index, intervals, canary_decisions, intervals * interval_s, summary
        )

    for interval in range(1, max_intervals + 1):
        weight = rollout.steps[step_index].weight
        comparison_weight = weight if rollout.baseline else 1.0 - weight
        rest = max(0.0, 1.0 - weight - comparison_weight)
        arrivals = rng.poisson(traffic.units_per_s * interval_s)
        split = rng.multinomial(arrivals, [weight, comparison_weight, rest])
        n_canary, n_comparison = int(split[0]), int(split[1])
        canary_units, canary_ops = _group(rng, n_canary, canary_rate, canary_errors, traffic)
        comparison_units, comparison_ops = _group(
            rng, n_comparison, traffic.conversion_rate, traffic.error_rate, traffic
        )
        arms = pa.array([CANARY, comparison_arm]).take(np.repeat([0, 1], [n_canary, n_comparison]))
        units = pa.table(
            {
                "arm": arms,
                "converted": np.concatenate([canary_units[0], comparison_units[0]]),
                "revenue": np.concatenate([canary_units[1], comparison_units[1]]),
            }
        )
        fresh = kpi_observations(units, rollout.metrics)
        cumulative = fresh if cumulative is None else _merge(cumulative, fresh)
        canary_decisions += n_canary
        step_canary += n_canary
        step_comparison += n_comparison
        progress = StepProgress(
            step_index, step_canary, step_comparison, (interval - step_began + 1) * interval_s
        )
        operations = OperationsObservation(canary_ops, comparison_ops)
        verdict = judge_interval(
            rollout, progress, cumulative, operations, None, failures, method=method
        )
        failures, summary = verdict.operation_failures, verdict.summary
        inconclusive = verdict.kind == VerdictKind.INCONCLUSIVE
        if verdict.kind == VerdictKind.ROLLBACK or (
            inconclusive and rollout.on_inconclusive == "rollback"
        ):
            return run("rolled_back", interval)
        if verdict.kind == VerdictKind.PROMOTE or (
            inconclusive and rollout.on_inconclusive == "promote"
        ):
            if step_index + 1 == analysed_steps:
                return run("promoted", interval)
            step_index, step_began, step_canary, step_comparison = (
                step_index + 1,
                interval + 1,
                0,
                0,
            )
    return run("held", max_intervals)


def _group(
    rng: np.random.Generator, n: int, conversion_rate: float, error_rate: float, traffic: Traffic
) -> tuple[tuple[np.ndarray, np.ndarray], GroupOperations]:
    """One group's units in an interval (converted, revenue) and its operations."""
    converted = rng.random(n) < conversion_rate
    revenue = np.zeros(n)
    revenue[converted] = rng.lognormal(
        traffic.revenue_log_mean, traffic.revenue_log_sigma, int(converted.sum())
    )
    operations = GroupOperations(
        decisions=n,
        errors=int(rng.binomial(n, error_rate)),
        fallbacks=int(rng.binomial(n, traffic.fallback_rate)),
        p95_latency_ms=traffic.p95_latency_ms * float(np.exp(rng.normal(0.0, 0.05))),
    )
    return (converted.astype(np.int8), revenue), operations


def _merge(before: list[KpiObservation], fresh: list[KpiObservation]) -> list[KpiObservation]:
    return [
        KpiObservation(a.metric, a.canary + b.canary, a.comparison + b.comparison)
        for a, b in zip(before, fresh, strict=True)
    ]
