import numpy as np
import pytest

from configs.schema import ExperimentConfig
from experiments import state
from experiments.assignment import initial_ranges
from experiments.router import ExperimentRouter, RunningExperiment
from liftgate.core.home import Home
from liftgate.core.vocabulary import HOLDOUT


def experiment(name="e", weights=(0.5, 0.5), **extra) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {
            "name": name,
            "arms": [{"name": f"arm{i}", "weight": w} for i, w in enumerate(weights)],
            "primary_metric": {"name": "conversion", "kind": "binomial", "column": "converted"},
            **extra,
        }
    )


def router(*configs: ExperimentConfig) -> ExperimentRouter:
    return ExperimentRouter(
        [RunningExperiment(c, initial_ranges({a.name: a.weight for a in c.arms})) for c in configs]
    )


IDS = [f"c{i:06d}" for i in range(20_000)]


def test_assignment_is_sticky_and_follows_the_weights() -> None:
    r = router(experiment(weights=(0.2, 0.8)))
    arms = [r.assign(u).arm_name for u in IDS]
    assert arms == [r.assign(u).arm_name for u in IDS]
    assert np.mean(np.array(arms) == "arm0") == pytest.approx(0.2, abs=0.015)


def test_experiments_in_one_layer_are_mutually_exclusive() -> None:
    first = experiment("first", layer="promo", layer_range=(0.0, 0.3))
    second = experiment("second", layer="promo", layer_range=(0.3, 1.0))
    r = router(first, second)
    names = [r.assign(u).experiment for u in IDS]
    assert set(names) == {"first", "second"}
    assert np.mean(np.array(names) == "first") == pytest.approx(0.3, abs=0.015)
    only_first = router(first)
    outside = [u for u in IDS if only_first.assign(u) is None]
    assert len(outside) == pytest.approx(0.7 * len(IDS), rel=0.03)


def test_holdout_share_is_kept_out() -> None:
    r = router(experiment(holdout=0.1))
    arms = np.array([r.assign(u).arm_name for u in IDS])
    assert np.mean(arms == HOLDOUT) == pytest.approx(0.1, abs=0.01)


def test_config_rejects_bad_arms() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        experiment(weights=(0.5, 0.6))
    with pytest.raises(ValueError, match="reserved"):
        ExperimentConfig.model_validate(
            {
                "name": "x",
                "arms": [{"name": "holdout", "weight": 0.5}, {"name": "b", "weight": 0.5}],
                "primary_metric": {"name": "c", "kind": "binomial", "column": "converted"},
            }
        )


def test_start_stop_and_restart_with_new_weights_moves_few_units(home: Home) -> None:
    state.start(home, experiment(weights=(0.5, 0.5)))
    before = state.router_from_state(state.read_state(home))
    state.start(home, experiment(weights=(0.4, 0.6)))
    after = state.router_from_state(state.read_state(home))
    moved = np.mean([before.assign(u).arm_name != after.assign(u).arm_name for u in IDS])
    assert moved == pytest.approx(0.1, abs=0.01)  # total variation of the weights
    state.stop(home, "e")
    assert state.router_from_state(state.read_state(home)).assign(IDS[0]) is None


def test_overlapping_experiments_cannot_run_together(home: Home) -> None:
    state.start(home, experiment("a", layer="l", layer_range=(0.0, 0.6)))
    with pytest.raises(state.ExperimentStateError, match="overlaps"):
        state.start(home, experiment("b", layer="l", layer_range=(0.5, 1.0)))
    state.start(home, experiment("c", layer="l", layer_range=(0.6, 1.0)))


def test_the_yaml_schedule_bounds_an_experiment() -> None:
    import datetime as dt

    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    r = router(experiment(start=start, stop=start + dt.timedelta(days=7)))
    assert r.assign("c1", now=start - dt.timedelta(seconds=1)) is None
    assert r.assign("c1", now=start + dt.timedelta(days=1)) is not None
    assert r.assign("c1", now=start + dt.timedelta(days=7)) is None
