"""Tests for journeys in the configuration: the example journey, the loader's cross-checks
(configs/loader.py) and `liftgate config check` on a broken journey file."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from configs.loader import DEFAULT_DIR, ConfigError, config_digest, load_config
from liftgate.app.cli.main import app

runner = CliRunner()
EXAMPLE = "journeys/cart_abandonment.yaml"


@pytest.fixture
def config_copy(tmp_path: Path) -> Path:
    """The packaged YAML files, folders included."""
    directory = tmp_path / "configs"
    shutil.copytree(DEFAULT_DIR, directory, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return directory


def edit(directory: Path, filename: str, change: Callable[[dict], None]) -> Path:
    path = directory / filename
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def step(data: dict, step_id: str) -> dict:
    return next(s for s in data["steps"] if s["id"] == step_id)


def errors_of(directory: Path) -> list[str]:
    result = runner.invoke(app, ["config", "check", "--dir", str(directory), "--json"])
    assert result.exit_code == 2, result.output
    document = json.loads(result.stdout)
    assert document["ok"] is False
    return document["errors"]


def test_the_example_journey_is_the_demos() -> None:
    journey = load_config().journeys["cart-abandonment"]
    assert [(s.id, s.kind) for s in journey.steps] == [
        ("wait_1h", "wait"),
        ("offer", "decide"),
        ("route", "branch"),
        ("send_offer", "act"),
        ("wait_purchase", "wait"),
        ("remind_offer", "decide"),
        ("remind", "act"),
        ("done", "exit"),
        ("call", "handoff"),
        ("called", "exit"),
    ]
    assert (journey.group, journey.trigger.event) == ("cart-recovery", "cart_abandoned")
    assert (journey.entry.consent, journey.entry.cooldown) == ("email", dt.timedelta(days=7))
    assert journey.exit_on == ["purchase", "unsubscribe"]
    assert journey.holdout_arms == {"holdout"}
    assert journey.goal is not None and journey.goal.window == dt.timedelta(days=3)
    assert [case.goto for case in journey.step("route").branch or ()] == ["wait_purchase", "call"]


def test_config_check_lists_the_journeys(config_copy: Path) -> None:
    result = runner.invoke(app, ["config", "check", "--dir", str(config_copy), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["journeys"] == ["cart-abandonment"]
    text = runner.invoke(app, ["config", "check", "--dir", str(config_copy)])
    assert text.exit_code == 0, text.output
    assert "journeys: cart-abandonment" in text.stdout


def test_a_bad_goto_fails_config_check_naming_file_and_key(config_copy: Path) -> None:
    path = edit(config_copy, EXAMPLE, lambda d: step(d, "route")["branch"][1].update(goto="cal"))
    [error] = errors_of(config_copy)
    assert error.startswith(f"{path}: steps.2.branch.1.goto: expected a step id of this journey")
    assert error.endswith("found 'cal'")


def test_an_unknown_key_in_a_journey_fails_config_check(config_copy: Path) -> None:
    path = edit(config_copy, EXAMPLE, lambda d: d["entry"].update(cooldwn="7d"))
    [error] = errors_of(config_copy)
    assert error == f"{path}: entry.cooldwn: unknown key (not in the schema); found '7d'"


def test_not_valid_yaml_names_the_journey_file(config_copy: Path) -> None:
    path = config_copy / EXAMPLE
    path.write_text("name: [unclosed\n")
    [error] = errors_of(config_copy)
    assert error.startswith(f"{path} (line ")


def test_candidates_are_actions_of_actions_yaml(config_copy: Path) -> None:
    path = edit(
        config_copy, EXAMPLE, lambda d: step(d, "remind_offer")["decide"].update(candidates=["sms"])
    )
    with pytest.raises(ConfigError) as caught:
        load_config(config_copy)
    [error] = caught.value.problems
    assert error.startswith(f"{path}: steps.5.decide.candidates: expected action ids of actions")
    assert error.endswith("found ['sms']")


def test_entry_consent_is_a_channel_of_actions_yaml(config_copy: Path) -> None:
    path = edit(config_copy, EXAMPLE, lambda d: d["entry"].update(consent="fax"))
    [error] = errors_of(config_copy)
    assert error == (
        f"{path}: entry.consent: expected a channel of actions.yaml ['email', 'push']; found 'fax'"
    )


def test_a_journey_name_is_defined_once(config_copy: Path) -> None:
    shutil.copy(config_copy / EXAMPLE, config_copy / "journeys" / "copy.yaml")
    [error] = errors_of(config_copy)
    assert "name: 'cart-abandonment' is already defined by another file" in error


def test_no_journeys_folder_is_no_journeys(config_copy: Path) -> None:
    shutil.rmtree(config_copy / "journeys")
    assert load_config(config_copy).journeys == {}


def test_the_config_digest_covers_the_journeys(config_copy: Path) -> None:
    before = config_digest(config_copy)
    edit(config_copy, EXAMPLE, lambda d: d.update(max_duration="5d"))
    assert config_digest(config_copy) != before
