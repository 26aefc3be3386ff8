"""Tests for training, the gate and the model registry on a real MLflow SQLite store.

One small world is trained three times per module (a champion, a challenger and a model on
shuffled labels); tests that move aliases work on a copy of that home, so each starts from
the same registry.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import TEMPORARILY_UNAVAILABLE
from typer.testing import CliRunner

from configs.loader import DEFAULT_DIR, load_config
from liftgate.app.cli.main import app
from liftgate.core import audit
from liftgate.core.contract import FeatureContract
from liftgate.core.home import HOME_ENV, Home
from liftgate.sim.world import World
from registry.client import ModelRegistry
from registry.errors import RegistryError
from registry.training import data_fingerprint

pytestmark = pytest.mark.slow

NAME = load_config().models.scorer.name
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture
def home(trained: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    """A private copy of the trained home, set as LIFTGATE_HOME for the command line."""
    copy = Home(tmp_path / "home")
    shutil.copytree(trained["home"].root, copy.root)
    monkeypatch.setenv(HOME_ENV, str(copy.root))
    return copy


def aliases(home: Home) -> dict[str, str]:
    return ModelRegistry(home).aliases(NAME)


def new_audit_records(home: Home, before: int) -> list[dict]:
    return audit.read(home.audit_log)[before:]


def as_user(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Run what follows as OS user `name` (`audit.current_user` reads these first)."""
    monkeypatch.setenv("LOGNAME", name)
    monkeypatch.setenv("USER", name)


@pytest.fixture
def approval_required(tmp_path: Path) -> tuple[str, str]:
    """`--config-dir` of a configuration whose models.yaml requires approval for champion."""
    configs = tmp_path / "configs"
    shutil.copytree(DEFAULT_DIR, configs, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    models = yaml.safe_load((configs / "models.yaml").read_text())
    models["registry"] = {"require_approval_for_champion": True}
    (configs / "models.yaml").write_text(yaml.safe_dump(models))
    return ("--config-dir", str(configs))


# --- training, gate, first aliases ------------------------------------------------------------


def test_first_model_passes_the_gate_and_becomes_champion(trained: dict) -> None:
    first = trained["first"]
    assert first["version"] == "1"
    assert first["gate"]["passed"] is True
    assert first["gate"]["reasons"] == []
    assert first["aliases"] == ["champion"]
    assert first["champion_auc_on_holdout"] is None
    assert first["metrics"]["auc"] > 0.68


def test_version_tags_carry_lineage_and_gate_result(trained: dict) -> None:
    registry = ModelRegistry(trained["home"])
    tags = registry.client.get_model_version(NAME, "1").tags
    logged = pd.read_parquet(trained["data"] / "logged.parquet")
    assert tags["liftgate.contract_version"] == FeatureContract(load_config().features).version
    assert tags["liftgate.data_fingerprint"] == data_fingerprint(logged)
    assert tags["liftgate.gate.passed"] == "true"
    assert json.loads(tags["liftgate.gate.reasons"]) == []
    assert json.loads(tags["liftgate.action_ids"]) == list(World(seed=0, n_customers=10).action_ids)
    assert trained["first"]["data_fingerprint"] == data_fingerprint(logged)
    assert tags["liftgate.trained_by"] == trained["first"]["trained_by"] == audit.current_user()


def test_train_json_prints_one_document_and_a_second_model_is_challenger(trained: dict) -> None:
    result = trained["second"]
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)  # exactly one JSON document on stdout
    assert {"model", "version", "metrics", "gate", "aliases"} <= set(summary)
    assert summary["model"] == NAME
    assert summary["version"] == "2"
    assert 0.5 < summary["metrics"]["auc"] <= 1
    assert summary["gate"]["passed"] is True
    assert summary["gate"]["reasons"] == []
    assert "auc_vs_champion" in [c["name"] for c in summary["gate"]["checks"]]
    assert summary["champion_auc_on_holdout"] == pytest.approx(trained["first"]["metrics"]["auc"])
    assert summary["aliases"] == ["challenger"]


def test_shuffled_labels_fail_the_gate_and_stay_without_alias(trained: dict) -> None:
    result = trained["broken"]
    assert result.exit_code == 1
    assert "validation gate failed" in result.stderr
    assert "is below the floor" in result.stderr  # the reason, on stderr
    registry = ModelRegistry(trained["home"])
    version = registry.client.get_model_version(NAME, "3")
    assert version.tags["liftgate.gate.passed"] == "false"
    assert json.loads(version.tags["liftgate.gate.reasons"])
    assert "3" not in registry.aliases(NAME).values()
    assert registry.aliases(NAME) == {"champion": "1", "challenger": "2"}


def test_training_appends_audit_records(trained: dict) -> None:
    records = audit.read(trained["home"].audit_log)
    assert [(r["alias"], r["from_version"], r["to_version"]) for r in records] == [
        ("champion", None, "1"),
        ("challenger", None, "2"),
    ]
    assert all(r["who"] and r["why"] == "passed validation gate" for r in records)


# --- alias flows through the command line -----------------------------------------------------


def test_promotion_keeps_the_old_champion_as_previous_and_rollback_restores_it(
    home: Home,
) -> None:
    before = len(audit.read(home.audit_log))
    result = invoke(
        "registry", "promote", NAME, "2", "--alias", "champion", "--by", "bob", "--why", "better"
    )
    assert result.exit_code == 0, result.stderr
    assert aliases(home) == {"champion": "2", "previous": "1"}
    promoted = new_audit_records(home, before)
    assert {(r["alias"], r["from_version"], r["to_version"]) for r in promoted} == {
        ("previous", None, "1"),
        ("challenger", "2", None),
        ("champion", "1", "2"),
    }
    assert all(r["who"] == "bob" and "better" in r["why"] for r in promoted)

    before = len(audit.read(home.audit_log))
    result = invoke("registry", "rollback", NAME, "--by", "carol", "--why", "conversion fell")
    assert result.exit_code == 0, result.stderr
    assert aliases(home) == {"champion": "1"}
    rolled = new_audit_records(home, before)
    assert {(r["alias"], r["from_version"], r["to_version"]) for r in rolled} == {
        ("champion", "2", "1"),
        ("previous", "1", None),
    }
    assert all(r["who"] == "carol" and r["why"] == "conversion fell" for r in rolled)
    tags = ModelRegistry(home).client.get_model_version(NAME, "2").tags
    assert "liftgate.rolled_back_at" in tags


def test_rollback_without_previous_champion_exits_1(home: Home) -> None:
    result = invoke("registry", "rollback", NAME)
    assert result.exit_code == 1
    assert "no previous champion" in result.stderr
    assert aliases(home) == {"champion": "1", "challenger": "2"}


def test_promoting_an_unknown_version_exits_2(home: Home) -> None:
    before = len(audit.read(home.audit_log))
    result = invoke("registry", "promote", NAME, "99", "--alias", "champion")
    assert result.exit_code == 2
    assert "99" in result.stderr
    assert aliases(home) == {"champion": "1", "challenger": "2"}
    assert new_audit_records(home, before) == []


def test_a_version_that_failed_the_gate_cannot_take_an_alias(home: Home) -> None:
    result = invoke("registry", "promote", NAME, "3", "--alias", "challenger")
    assert result.exit_code == 1
    assert "failed the validation gate" in result.stderr
    assert aliases(home) == {"champion": "1", "challenger": "2"}


def test_champion_requires_approval_when_configured(
    home: Home, approval_required: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    scope = approval_required
    refused = invoke("registry", "promote", NAME, "2", "--alias", "champion", *scope)
    assert refused.exit_code == 1
    assert "not approved" in refused.stderr
    assert aliases(home) == {"champion": "1", "challenger": "2"}

    as_user(monkeypatch, "alice")  # not who trained it
    approved = invoke("registry", "approve", NAME, "2", "--by", "alice", *scope, "--json")
    assert approved.exit_code == 0, approved.stderr
    record = json.loads(approved.stdout)
    assert (record["action"], record["who"], record["version"]) == ("approved", "alice", "2")
    assert audit.read(home.audit_log)[-1] == record

    allowed = invoke("registry", "promote", NAME, "2", "--alias", "champion", *scope)
    assert allowed.exit_code == 0, allowed.stderr
    assert aliases(home) == {"champion": "2", "previous": "1"}
    tags = ModelRegistry(home).client.get_model_version(NAME, "2").tags
    assert tags["liftgate.approved_by"] == "alice"


def test_four_eyes_the_trainer_cannot_approve_under_any_name(
    home: Home, approval_required: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = ModelRegistry(home)
    trainer = registry.client.get_model_version(NAME, "2").tags["liftgate.trained_by"]
    before = len(audit.read(home.audit_log))
    as_user(monkeypatch, trainer)
    for by in ((), ("--by", trainer), ("--by", "alice")):  # the OS user counts, whatever --by
        refused = invoke("registry", "approve", NAME, "2", *by, *approval_required)
        assert refused.exit_code == 1, (by, refused.output)
        assert f"four eyes: {trainer} trained {NAME} v2" in refused.stderr
        assert "a different person must approve it" in refused.stderr
    assert "liftgate.approved_by" not in registry.client.get_model_version(NAME, "2").tags
    assert new_audit_records(home, before) == []

    as_user(monkeypatch, "carol")
    approved = invoke("registry", "approve", NAME, "2", *approval_required, "--json")
    assert approved.exit_code == 0, approved.stderr
    record = json.loads(approved.stdout)
    assert (record["who"], record["approved_by"], record["os_user"]) == ("carol",) * 3
    assert (record["trained_by"], record["started_by"]) == (trainer, None)

    promoted = invoke("registry", "promote", NAME, "2", "--alias", "champion", *approval_required)
    assert promoted.exit_code == 0, promoted.stderr
    actions = [r["action"] for r in new_audit_records(home, before)]
    assert actions[:2] == ["approved", "champion_approval_checked"]
    checked = new_audit_records(home, before)[1]
    assert (checked["trained_by"], checked["approved_by"]) == (trainer, "carol")


def test_without_the_policy_an_approval_is_recorded_not_checked(
    home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    trainer = ModelRegistry(home).client.get_model_version(NAME, "2").tags["liftgate.trained_by"]
    as_user(monkeypatch, trainer)
    approved = invoke("registry", "approve", NAME, "2", "--json")
    assert approved.exit_code == 0, approved.stderr
    assert json.loads(approved.stdout)["trained_by"] == trainer


def test_registry_list_json_shape(home: Home) -> None:
    result = invoke("registry", "list", "--json")
    assert result.exit_code == 0, result.stderr
    models = json.loads(result.stdout)
    assert isinstance(models, list)
    [model] = models
    assert model["name"] == NAME
    versions = model["versions"]
    assert [v["version"] for v in versions] == ["1", "2", "3"]
    assert [v["aliases"] for v in versions] == [["champion"], ["challenger"], []]
    assert [v["tags"]["liftgate.gate.passed"] for v in versions] == ["true", "true", "false"]
    for v in versions:
        assert {"version", "aliases", "tags"} <= set(v)
        assert isinstance(v["tags"], dict)


# --- loading ----------------------------------------------------------------------------------


def test_load_returns_the_trained_model_cached_by_version(trained: dict, home: Home) -> None:
    registry = ModelRegistry(home)
    loaded = registry.load(NAME, "champion")
    assert (loaded.name, loaded.version, loaded.alias) == (NAME, "1", "champion")
    result = trained["results"][0]
    data = result.dataset
    design = data.design[data.is_valid][:2_000]
    probability, value = loaded.model.predict(design)
    assert ((probability >= 0) & (probability <= 1)).all()
    assert (value >= 0).all()
    expected_probability, expected_value = result.model.predict(design)
    np.testing.assert_allclose(probability, expected_probability, rtol=1e-12, atol=0)
    np.testing.assert_allclose(value, expected_value, rtol=1e-12, atol=0)
    assert loaded.model.action_ids == result.model.action_ids
    assert loaded.model.contract_version == result.model.contract_version

    assert registry.load(NAME, "champion").model is loaded.model
    assert registry.load(NAME, version="1").model is loaded.model
    challenger = registry.load(NAME, "challenger")
    assert challenger.version == "2"
    assert challenger.model is not loaded.model


class Unpickled:
    """Creates a directory when unpickled: the proof that a file was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def test_a_version_that_is_not_a_booster_is_refused_not_unpickled(
    home: Home, tmp_path: Path
) -> None:
    registry = ModelRegistry(home)
    marker = tmp_path / "unpickled"
    with mlflow.start_run():
        mlflow.lightgbm.log_model(
            Unpickled(marker),
            name="model",
            registered_model_name=NAME,
            serialization_format="cloudpickle",
        )
    marker.rmdir()  # MLflow loads what it logs
    with pytest.raises(RegistryError, match="expected a LightGBM Booster .*; not loaded"):
        registry.load(NAME, version="4")
    assert not marker.exists()


def test_an_outage_is_an_error_not_a_registry_without_aliases(
    home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = ModelRegistry(home)
    assert registry.aliases("never-registered") == {}

    def unavailable(name: str):
        raise MlflowException("database is locked", error_code=TEMPORARILY_UNAVAILABLE)

    monkeypatch.setattr(registry.client, "get_registered_model", unavailable)
    with pytest.raises(RegistryError, match="could not be read: database is locked"):
        registry.aliases(NAME)
    with pytest.raises(RegistryError):  # a rollback's check cannot mistake it for "removed"
        registry.alias_version(NAME, "challenger")
