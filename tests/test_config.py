"""Tests for the configuration files and `liftgate config check` (configs/loader.py, schema.py).

Each failure case copies the packaged YAML files into a temporary directory, breaks one
thing, and checks that the error names the file, the key path, what was expected and what
was found, with exit code 2.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from configs.loader import DEFAULT_DIR, ConfigError, load_config
from liftgate.app.cli.main import app

runner = CliRunner()


@pytest.fixture
def config_copy(tmp_path: Path) -> Path:
    for path in DEFAULT_DIR.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


def edit(directory: Path, filename: str, change: Callable[[dict], None]) -> Path:
    """Load one YAML file of `directory`, apply `change` to it, and write it back."""
    path = directory / filename
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def feature(data: dict, name: str) -> dict:
    return next(f for f in data["features"] if f["name"] == name)


def check(directory: Path, as_json: bool = True):
    args = ["config", "check", "--dir", str(directory)]
    return runner.invoke(app, [*args, "--json"] if as_json else args)


def errors_of(result) -> list[str]:
    """The errors of a failed `config check --json`: exactly one JSON document on stdout."""
    assert result.exit_code == 2, result.output
    document = json.loads(result.stdout)
    assert document["ok"] is False
    assert document["errors"], document
    return document["errors"]


# --- the defaults ----------------------------------------------------------------------------


def test_default_configs_load() -> None:
    config = load_config()
    names = [f.name for f in config.features.features]
    assert len(names) == len(set(names)) >= 10
    assert "no_action" in [a.id for a in config.actions.actions]
    assert config.models.scorer.name == "liftgate-scorer"
    assert 0 < config.models.scorer.validation_fraction < 1


def test_config_check_json_succeeds_on_the_defaults() -> None:
    result = runner.invoke(app, ["config", "check", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["ok"] is True
    assert document["features"] == len(load_config().features.features)
    assert document["actions"][0] == "no_action"


def test_config_check_reads_the_directory_from_the_environment(
    config_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    edit(config_copy, "models.yaml", lambda d: d["scorer"].update(name="from-env"))
    monkeypatch.setenv("LIFTGATE_CONFIG_DIR", str(config_copy))
    result = runner.invoke(app, ["config", "check", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["model"] == "from-env"


def test_copied_defaults_pass_and_text_output_is_a_summary(config_copy: Path) -> None:
    result = check(config_copy, as_json=False)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("ok: ")


# --- one broken thing at a time ---------------------------------------------------------------


def test_unknown_key_names_file_key_path_and_value(config_copy: Path) -> None:
    path = edit(config_copy, "features.yaml", lambda d: d["features"][0].update(colour="red"))
    [error] = errors_of(check(config_copy))
    assert error.startswith(str(path))
    assert "features.0.colour" in error
    assert "unknown key" in error
    assert "'red'" in error


def test_wrong_dtype_value_names_the_choices_and_the_value(config_copy: Path) -> None:
    path = edit(
        config_copy, "features.yaml", lambda d: feature(d, "recency_days").update(dtype="double")
    )
    [error] = errors_of(check(config_copy))
    assert error.startswith(str(path))
    assert "features.0.dtype" in error
    for expected in ("'float'", "'int'", "'bool'", "'category'"):
        assert expected in error
    assert "found 'double'" in error


def test_value_of_the_wrong_type_is_named(config_copy: Path) -> None:
    path = edit(config_copy, "actions.yaml", lambda d: d["actions"][1].update(cost="cheap"))
    [error] = errors_of(check(config_copy))
    assert error.startswith(str(path))
    assert "actions.1.cost" in error
    assert "number" in error
    assert "found 'cheap'" in error


def test_category_default_must_be_a_category(config_copy: Path) -> None:
    def change(data: dict) -> None:
        feature(data, "channel_pref")["default"] = "sms"

    path = edit(config_copy, "features.yaml", change)
    index = [f["name"] for f in yaml.safe_load(path.read_text())["features"]].index("channel_pref")
    [error] = errors_of(check(config_copy))
    assert error.startswith(str(path))
    assert f"features.{index}" in error
    assert "default 'sms'" in error
    assert "['email', 'push', 'web']" in error


def test_range_default_must_be_inside_the_range(config_copy: Path) -> None:
    path = edit(
        config_copy, "features.yaml", lambda d: feature(d, "recency_days").update(default=1000)
    )
    [error] = errors_of(check(config_copy))
    assert error.startswith(str(path))
    assert "features.0" in error
    assert "default 1000" in error
    assert "[0.0, 730.0]" in error


def test_duplicate_feature_names_are_reported(config_copy: Path) -> None:
    def change(data: dict) -> None:
        data["features"].append(dict(feature(data, "orders_12m")))

    path = edit(config_copy, "features.yaml", change)
    [error] = errors_of(check(config_copy))
    assert error.startswith(str(path))
    assert "unique" in error
    assert "'orders_12m'" in error


def test_eligibility_rule_must_name_a_contract_feature(config_copy: Path) -> None:
    def change(data: dict) -> None:
        data["actions"][4]["eligibility"][0]["feature"] = "os"

    path = edit(config_copy, "actions.yaml", change)
    [error] = errors_of(check(config_copy))
    assert error.startswith(str(path))
    assert "actions.4.eligibility.0.feature" in error
    assert "features.yaml" in error
    assert "found 'os'" in error


def test_eligibility_rule_must_name_known_categories(config_copy: Path) -> None:
    def change(data: dict) -> None:
        data["actions"][4]["eligibility"][0]["in"] = ["ios", "tablet"]

    path = edit(config_copy, "actions.yaml", change)
    [error] = errors_of(check(config_copy))
    assert error.startswith(str(path))
    assert "actions.4.eligibility.0.in" in error
    assert "['ios', 'android', 'desktop']" in error
    assert "found ['tablet']" in error


def test_invalid_yaml_names_the_line(config_copy: Path) -> None:
    path = config_copy / "models.yaml"
    path.write_text("scorer:\n  name: liftgate-scorer\n  conversion: num_leaves: 15\n")
    [error] = errors_of(check(config_copy))
    assert error.startswith(str(path))
    assert "line 3" in error
    assert "not valid YAML" in error


def test_missing_file_is_named(config_copy: Path) -> None:
    (config_copy / "models.yaml").unlink()
    [error] = errors_of(check(config_copy))
    assert error == f"{config_copy / 'models.yaml'}: file not found"


def test_missing_directory_exits_2(tmp_path: Path) -> None:
    [error] = errors_of(check(tmp_path / "nowhere"))
    assert "not a directory" in error


def test_every_broken_file_is_reported_in_one_run(config_copy: Path) -> None:
    edit(config_copy, "features.yaml", lambda d: d["features"][0].update(colour="red"))
    edit(config_copy, "models.yaml", lambda d: d["gate"].update(min_auc=1.5))
    errors = errors_of(check(config_copy))
    assert len(errors) == 2
    assert any("features.yaml" in e and "features.0.colour" in e for e in errors)
    assert any("models.yaml" in e and "gate.min_auc" in e and "1.5" in e for e in errors)


def test_failure_without_json_goes_to_stderr(config_copy: Path) -> None:
    edit(config_copy, "features.yaml", lambda d: d["features"][0].update(colour="red"))
    result = check(config_copy, as_json=False)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "configuration error" in result.stderr
    assert "features.0.colour" in result.stderr


def test_load_config_raises_config_error_with_the_problems(config_copy: Path) -> None:
    edit(config_copy, "features.yaml", lambda d: d["features"][0].update(colour="red"))
    with pytest.raises(ConfigError) as caught:
        load_config(config_copy)
    assert len(caught.value.problems) == 1
    assert "features.0.colour" in str(caught.value)
