"""Seeded rollouts through the verdict: the −10 % challenger is caught, the equal one is not,
and the naive fixed-horizon test checked every interval rolls back equals far more often."""

from __future__ import annotations

import pytest

from configs.loader import DEFAULT_DIR, load_file
from configs.schema import KpiRule, RolloutConfig, RolloutStep
from liftgate.sim.rollout import Challenger, Traffic, simulate_rollout

EXAMPLE = load_file(DEFAULT_DIR / "rollouts" / "scorer-canary.yaml", RolloutConfig)
RUNS = 100


def rolled_back(rollout: RolloutConfig, effect: float, method: str = "sequential") -> float:
    runs = [
        simulate_rollout(rollout, Challenger(conversion_effect=effect), seed=seed, method=method)
        for seed in range(RUNS)
    ]
    return sum(run.outcome == "rolled_back" for run in runs) / RUNS


@pytest.mark.slow
def test_example_config_catches_a_bad_challenger_and_spares_an_equal_one() -> None:
    """At the default 3,000 units/s (see README: the guard's simulation) with the example's
    steps: ≥ 95 % of −10 % challengers rolled back, ≤ 5 % of equal ones; checking a
    fixed-horizon z-test every interval instead rolls back several times as many equals."""
    assert rolled_back(EXAMPLE, -0.10) >= 0.95
    equal = rolled_back(EXAMPLE, 0.0)
    assert equal <= 0.05
    assert rolled_back(EXAMPLE, 0.0, method="frequentist") >= max(3 * equal, 0.06)


def test_a_failing_canary_is_rolled_back_by_operations_after_failure_limit_intervals() -> None:
    run = simulate_rollout(EXAMPLE, Challenger(error_rate=0.05), seed=0)
    assert (run.outcome, run.intervals) == ("rolled_back", EXAMPLE.failure_limit)
    assert run.summary.startswith("operations failed 2 consecutive intervals, latest: error rate")


def test_the_same_seed_gives_the_same_rollout() -> None:
    first = simulate_rollout(EXAMPLE, Challenger(conversion_effect=-0.10), seed=7)
    assert simulate_rollout(EXAMPLE, Challenger(conversion_effect=-0.10), seed=7) == first


def test_against_the_stable_group_and_with_on_inconclusive_rollback() -> None:
    strict = EXAMPLE.model_copy(
        update={
            "baseline": False,
            "steps": [
                RolloutStep(weight=0.1, min_units=1_000, min_duration_s=10, max_duration_s=60)
            ],
            "metrics": [
                KpiRule(
                    name="conversion",
                    kind="binomial",
                    column="converted",
                    require_non_inferiority=True,
                )
            ],
            "on_inconclusive": "rollback",
        }
    )
    run = simulate_rollout(strict, Challenger(), Traffic(units_per_s=500.0), seed=0)
    assert (run.outcome, run.intervals) == ("rolled_back", 6)
    assert "inconclusive after 60 s" in run.summary
    promoting = strict.model_copy(update={"on_inconclusive": "promote"})
    run = simulate_rollout(promoting, Challenger(), Traffic(units_per_s=500.0), seed=0)
    assert run.outcome == "promoted"
    holding = strict.model_copy(update={"on_inconclusive": "hold"})
    run = simulate_rollout(
        holding, Challenger(), Traffic(units_per_s=500.0), seed=0, max_intervals=20
    )
    assert (run.outcome, run.intervals) == ("held", 20)
