"""A bandit is an experiment kind: schema rules and load-time checks of `bandit:`."""

from __future__ import annotations

import json
import shutil
import typing
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError
from served_helpers import bandit_experiment
from typer.testing import CliRunner

from configs.loader import DEFAULT_DIR, load_config
from configs.schema import BanditConfig, ExperimentConfig
from experiments.bandits.policies import POLICY_CLASSES
from liftgate.app.cli.main import app

EXAMPLE = "bandit-offers.yaml"


@pytest.fixture
def config_copy(tmp_path: Path) -> Path:
    shutil.copytree(DEFAULT_DIR, tmp_path / "configs", ignore=shutil.ignore_patterns("*.py", "__*"))
    return tmp_path / "configs"


def edit_example(directory: Path, change) -> None:
    path = directory / "experiments" / EXAMPLE
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def check_errors(directory: Path) -> list[str]:
    result = CliRunner().invoke(app, ["config", "check", "--dir", str(directory), "--json"])
    assert result.exit_code == 2, result.output
    return json.loads(result.stdout)["errors"]


def test_the_schema_names_exactly_the_simulated_policies() -> None:
    names = typing.get_args(BanditConfig.model_fields["policy"].annotation)
    assert set(names) == set(POLICY_CLASSES)


def test_the_packaged_example_loads_with_its_defaults() -> None:
    experiment = load_config().experiments["bandit-offers"]
    assert experiment.kind == "bandit" and experiment.bandit.policy == "thompson"
    assert [a.policy for a in experiment.arms] == ["uniform_random", "bandit"]
    defaults = BanditConfig(policy="ucb")
    assert (defaults.floor, defaults.burn_in, defaults.reward) == (0.01, 0, "converted")
    assert (defaults.update_every_s, defaults.batch_size) == (60.0, 10_000)
    assert defaults.attribution_window_hours is None  # the experiment's


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e.pop("bandit"), "kind bandit needs `bandit:`"),
        (lambda e: e["arms"][1].update(policy="epsilon_greedy"), "at least one arm with policy"),
        (lambda e: e.update(kind="ab"), "need kind: bandit"),
        (lambda e: e["bandit"].update(reward="revenue"), "thompson (Beta–Bernoulli) needs"),
        (lambda e: e["bandit"].update(policy="softmax"), "bandit.policy"),
        (lambda e: e["bandit"].update(floor=2), "bandit.floor"),
    ],
)
def test_schema_errors_name_the_file_and_the_rule(config_copy: Path, change, message) -> None:
    edit_example(config_copy, change)
    errors = check_errors(config_copy)
    assert len(errors) == 1 and EXAMPLE in errors[0] and message in errors[0], errors


@pytest.mark.parametrize(
    ("bandit", "message"),
    [
        ({"policy": "linucb", "params": {"alpah": 1}}, "bandit.params.alpah: not a parameter of"),
        ({"policy": "linucb", "params": {"n_features": 3}}, "bandit.params.n_features: set by"),
        ({"policy": "linucb", "params": {"alpha": -1}}, "bandit.params: alpha must be ≥ 0"),
        ({"policy": "epsilon_greedy", "params": {"epsilon": "lots"}}, "params.epsilon: expected a"),
        ({"policy": "thompson", "params": {"n_draws": 0.5}}, "params.n_draws: expected an"),
    ],
)
def test_params_are_checked_by_building_the_policy(config_copy: Path, bandit, message) -> None:
    edit_example(config_copy, lambda e: e.update(bandit=bandit))
    errors = check_errors(config_copy)
    assert len(errors) == 1 and EXAMPLE in errors[0] and message in errors[0], errors


def test_an_ab_experiment_takes_no_bandit_block() -> None:
    raw = bandit_experiment().model_dump()
    raw["kind"] = "ab"
    with pytest.raises(ValidationError, match="need kind: bandit"):
        ExperimentConfig.model_validate(raw)
