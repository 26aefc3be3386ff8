"""Four eyes on a rollout's promotion to champion, on a real MLflow registry (no Ray): the
approver is neither who trained the challenger nor who started the rollout; the guard holds
at the last step, and alerts, until such an approval exists."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from rollout_helpers import NAME, write_config
from typer.testing import CliRunner

from configs.loader import load_config
from liftgate.app.cli.main import app
from liftgate.core import audit
from liftgate.core.home import HOME_ENV, Home
from liftgate.guard.alerts import AlertReceiver
from liftgate.guard.controller import GUARD, RolloutController
from liftgate.guard.state import read_record
from registry.client import ModelRegistry
from registry.errors import RegistryError

pytestmark = pytest.mark.slow


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """The test rollout, and models.yaml requiring approval for champion."""
    directory = write_config(tmp_path / "configs")
    models = yaml.safe_load((directory / "models.yaml").read_text())
    models["registry"] = {"require_approval_for_champion": True}
    (directory / "models.yaml").write_text(yaml.safe_dump(models))
    return directory


@pytest.fixture
def receiver():
    receiver = AlertReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def home(trained: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, receiver) -> Home:
    """A copy of the shared trained home: v1 champion, v2 challenger (tests/conftest.py)."""
    copy = Home(tmp_path / "home")
    shutil.copytree(trained["home"].root, copy.root)
    monkeypatch.setenv(HOME_ENV, str(copy.root))
    monkeypatch.setenv("LIFTGATE_ALERT_WEBHOOK", receiver.url)
    return copy


def as_user(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("LOGNAME", name)
    monkeypatch.setenv("USER", name)


def invoke(config_dir: Path, *args: str):
    return CliRunner().invoke(app, [*args, "--config-dir", str(config_dir)])


def test_the_starter_cannot_approve_and_the_promotion_records_all_three(
    home: Home, config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    guard = RolloutController(load_config(config_dir), home)
    record = guard.start(NAME, who="bob")
    assert read_record(home, NAME).started_by == record.started_by == "bob"
    assert audit.read(home.audit_log)[-1]["action"] == "rollout_started"

    as_user(monkeypatch, "bob")
    refused = invoke(config_dir, "registry", "approve", guard.model, "2")
    assert refused.exit_code == 1
    assert f"four eyes: bob started the rollout that promotes {guard.model} v2" in refused.stderr

    as_user(monkeypatch, "carol")
    approved = invoke(config_dir, "registry", "approve", guard.model, "2", "--json")
    assert approved.exit_code == 0, approved.output
    assert json.loads(approved.stdout)["started_by"] == "bob"

    promoted = invoke(config_dir, "rollout", "promote", NAME, "--full", "--by", "bob")
    assert promoted.exit_code == 0, promoted.output
    assert read_record(home, NAME).status == "promoted"
    assert ModelRegistry(home).aliases(guard.model)["champion"] == "2"
    [checked] = [
        r for r in audit.read(home.audit_log) if r["action"] == "champion_approval_checked"
    ]
    trainer = ModelRegistry(home).client.get_model_version(guard.model, "2").tags
    assert (checked["trained_by"], checked["started_by"], checked["approved_by"]) == (
        trainer["liftgate.trained_by"],
        "bob",
        "carol",
    )


def test_an_approval_by_the_starter_holds_the_promotion_until_another_person_approves(
    home: Home, config_dir: Path, receiver
) -> None:
    guard = RolloutController(load_config(config_dir), home)
    ModelRegistry(home).approve(guard.model, "2", who="carol")  # before the rollout exists
    guard.start(NAME, who="carol")

    refused = invoke(config_dir, "rollout", "promote", NAME, "--full")
    assert refused.exit_code == 1
    assert "four eyes: carol started the rollout" in refused.stderr
    assert "it was approved by carol" in refused.stderr
    assert read_record(home, NAME).status == "running"
    assert ModelRegistry(home).aliases(guard.model)["champion"] == "1"

    held = guard.promote(NAME, who=GUARD, full=True)  # what the guard does at the last step
    assert held.status == "running"
    assert "promote_failed" in [event["event"] for event in held.history[-2:]]
    assert "four eyes" in receiver.received[-1]["summary"]
    assert ModelRegistry(home).aliases(guard.model)["champion"] == "1"

    ModelRegistry(home).approve(guard.model, "2", who="dave", started_by="carol")
    assert guard.promote(NAME, who=GUARD, full=True).status == "promoted"
    assert ModelRegistry(home).aliases(guard.model)["champion"] == "2"


def test_a_rollout_without_an_approval_does_not_promote(home: Home, config_dir: Path) -> None:
    guard = RolloutController(load_config(config_dir), home)
    guard.start(NAME, who="bob")
    with pytest.raises(RegistryError, match="is not approved"):
        guard.promote(NAME, who="bob", full=True)
    assert read_record(home, NAME).status == "running"
