"""The registry against a real `mlflow server` (started here on a free port), on SQLite and
on PostgreSQL, behaving as the embedded SQLite store does: train → register → aliases →
serving loads the champion → rollback, compared step by step.

The fast tests check where the tracking URI comes from and that a wrong or silent one
ends a command with a message naming it (exit 2), never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
import yaml
from typer.testing import CliRunner

from configs.loader import DEFAULT_DIR, LiftgateConfig, load_config
from configs.schema import RegistryPolicy
from liftgate.app.cli.main import app
from liftgate.core.home import HOME_ENV, Home
from liftgate.core.local_mlflow import LocalMlflowServer
from liftgate.core.local_postgres import LocalPostgres
from liftgate.core.vocabulary import CHAMPION
from liftgate.sim.world import World, stock_home
from registry.client import ModelRegistry
from registry.errors import RegistryError
from registry.pipeline import train_and_register
from registry.store import CONFIG_KEY, EMBEDDED, TRACKING_URI_ENV, tracking_store
from serving.api_models import DecideRequest
from serving.components import build_service

CONFIG = load_config()
NAME = CONFIG.models.scorer.name
WORLD = World(seed=5, n_customers=4_000)


def with_tracking_uri(config: LiftgateConfig, uri: str | None) -> LiftgateConfig:
    policy = config.models.registry.model_copy(update={"tracking_uri": uri})
    return replace(config, models=config.models.model_copy(update={"registry": policy}))


# --- where the URI comes from ----------------------------------------------------------------


def test_the_environment_overrides_models_yaml(home: Home) -> None:
    policy = RegistryPolicy(tracking_uri="http://127.0.0.1:5000")
    assert tracking_store(home, RegistryPolicy(), environ={}).source == EMBEDDED
    assert tracking_store(home, policy, environ={}).uri == "http://127.0.0.1:5000"
    overridden = tracking_store(home, policy, environ={TRACKING_URI_ENV: "http://10.1.1.1:80"})
    assert (overridden.uri, overridden.source) == ("http://10.1.1.1:80", TRACKING_URI_ENV)


def test_a_malformed_uri_in_the_environment_is_named(home: Home) -> None:
    with pytest.raises(RegistryError) as caught:
        tracking_store(home, environ={TRACKING_URI_ENV: "localhost:5000"})
    assert caught.value.exit_code == 2
    assert str(caught.value).startswith(f"{TRACKING_URI_ENV}: expected http(s)://HOST:PORT")


def test_a_malformed_uri_in_models_yaml_names_the_file_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    configs = tmp_path / "configs"
    shutil.copytree(DEFAULT_DIR, configs)
    models = yaml.safe_load((configs / "models.yaml").read_text())
    models["registry"]["tracking_uri"] = "mlflow.example.com"
    (configs / "models.yaml").write_text(yaml.safe_dump(models))
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))
    result = CliRunner().invoke(app, ["registry", "list", "--config-dir", str(configs)])
    assert result.exit_code == 2, result.output
    assert "models.yaml" in result.output and "tracking_uri" in result.output
    assert "mlflow.example.com" in result.output and "Traceback" not in result.output


def test_a_server_that_does_not_answer_ends_the_command_with_its_uri(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, free_port: int
) -> None:
    silent = f"http://127.0.0.1:{free_port}"
    configs = tmp_path / "configs"
    shutil.copytree(DEFAULT_DIR, configs)
    models = yaml.safe_load((configs / "models.yaml").read_text())
    models["registry"]["tracking_uri"] = silent
    (configs / "models.yaml").write_text(yaml.safe_dump(models))
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))
    monkeypatch.delenv(TRACKING_URI_ENV, raising=False)
    result = CliRunner().invoke(app, ["registry", "list", "--config-dir", str(configs)])
    assert result.exit_code == 2, result.output
    assert silent in result.output and CONFIG_KEY in result.output
    assert "Traceback" not in result.output


# --- the same story on every store -----------------------------------------------------------


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("world")
    WORLD.write(directory, rows=30_000)
    return directory


def served_version(config: LiftgateConfig, home: Home) -> str:
    """The model version an in-process decision service, started on `config`, serves."""
    service, components = build_service(config, home, wait_s=120.0)
    try:
        customer = str(WORLD.customers["customer_id"].iloc[0])
        answer = asyncio.run(service.decide(DecideRequest(customer_id=customer), "t" * 32))
        return answer["model"]["version"]
    finally:
        service.close()
        components.close()


def registry_story(config: LiftgateConfig, home: Home, world_dir: Path) -> list[tuple]:
    """Two versions trained and registered, the second promoted and served, then rolled
    back and served again: what the registry and the service say at each step."""
    stock_home(home, world_dir)
    registry = ModelRegistry(home, config.models.registry)
    story: list[tuple] = []
    for _ in range(2):  # the same seed twice: the second passes the gate against the first
        summary = train_and_register(world_dir, config, registry)
        story.append(("trained", summary["version"], summary["aliases"], summary["gate"]["passed"]))
    story.append(("served", registry.aliases(NAME), served_version(config, home)))
    registry.promote(NAME, "2", CHAMPION, why="test: promote")
    story.append(("promoted", registry.aliases(NAME), served_version(config, home)))
    registry.rollback(NAME, why="test: roll back")
    story.append(("rolled back", registry.aliases(NAME), served_version(config, home)))
    versions = [(v["version"], v["aliases"]) for m in registry.list() for v in m["versions"]]
    story.append(("versions", versions))
    return story


@pytest.fixture(scope="module")
def embedded_story(tmp_path_factory: pytest.TempPathFactory, world_dir: Path) -> list[tuple]:
    home = Home(tmp_path_factory.mktemp("embedded")).ensure()
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(TRACKING_URI_ENV, raising=False)
        story = registry_story(with_tracking_uri(CONFIG, None), home, world_dir)
    assert story[-1] == ("versions", [("1", ["champion"]), ("2", [])])
    return story


def assert_same_story_through(url: str, tmp_path: Path, world_dir: Path, expected: list) -> None:
    home = Home(tmp_path / "home").ensure()
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(TRACKING_URI_ENV, raising=False)
        config = with_tracking_uri(CONFIG, url)
        assert ModelRegistry(home, config.models.registry).store.uri == url
        assert registry_story(config, home, world_dir) == expected
    # Artifacts went through the server: nothing was written to the client's home.
    assert not any(home.artifacts.iterdir())
    assert not (home.root / "mlflow.db").exists()


@pytest.mark.slow
def test_an_mlflow_server_on_sqlite_behaves_as_the_embedded_store(
    tmp_path: Path, world_dir: Path, embedded_story: list[tuple]
) -> None:
    root = tmp_path / "server"
    with LocalMlflowServer(f"sqlite:///{root / 'mlflow.db'}", root) as server:
        assert_same_story_through(server.url, tmp_path, world_dir, embedded_story)
    assert any(server.artifacts.rglob("MLmodel"))


@pytest.mark.slow
def test_an_mlflow_server_on_postgresql_behaves_as_the_embedded_store(
    tmp_path: Path,
    world_dir: Path,
    embedded_story: list[tuple],
    local_postgres: LocalPostgres,
) -> None:
    with contextlib.closing(psycopg.connect(local_postgres.url("postgres"))) as db:
        db.autocommit = True
        db.execute("CREATE DATABASE liftgate_mlflow")
    backend = local_postgres.url("liftgate_mlflow").replace(
        "postgresql://", "postgresql+psycopg://", 1
    )
    with LocalMlflowServer(backend, tmp_path / "server") as server:
        assert_same_story_through(server.url, tmp_path, world_dir, embedded_story)
