"""`liftgate serve` without its online store fails at once (before Ray), naming the store and
the command that fills it; a start that never becomes ready says why."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from configs.loader import DEFAULT_DIR, load_config
from liftgate.app import runner as runner_module
from liftgate.app.cli.main import app
from liftgate.app.runner import not_ready
from liftgate.core.home import HOME_ENV, Home

runner = CliRunner()


@pytest.fixture(autouse=True)
def no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing here may get as far as starting the service."""

    def refuse(*args, **kwargs):
        raise AssertionError("the service was started")

    monkeypatch.setattr(runner_module, "serve_foreground", refuse)
    monkeypatch.setattr(runner_module, "serve_detached", refuse)


def serve(home: Home, *args: str):
    return runner.invoke(app, ["serve", *args, "--json"], env={HOME_ENV: str(home.root)})


@pytest.mark.parametrize("detach", [[], ["--detach"]])
def test_serve_without_a_store_exits_2_naming_it_and_the_push(home: Home, detach) -> None:
    result = serve(home, *detach)
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert f"{home.customers} does not exist" in error
    assert "liftgate features push --from" in error


def test_a_store_without_customer_ids_is_named(home: Home) -> None:
    home.customers.parent.mkdir(parents=True)
    pq.write_table(pa.table({"id": ["c1"]}), home.customers)
    result = serve(home)
    assert result.exit_code == 2
    assert f"{home.customers} lacks the 'customer_id' column" in json.loads(result.stdout)["error"]


def redis_configs(tmp_path: Path, url: str) -> Path:
    directory = tmp_path / "configs"
    shutil.copytree(DEFAULT_DIR, directory, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    serving = directory / "serving.yaml"
    serving.write_text(
        serving.read_text()
        .replace("kind: embedded ", "kind: redis ")
        .replace("url: null ", f"url: {url} ")
    )
    assert load_config(directory).serving.online_store.url == url
    return directory


def test_an_unreachable_redis_is_named(home: Home, tmp_path: Path, free_port: int) -> None:
    url = f"redis://127.0.0.1:{free_port}/0"
    result = serve(home, "--config-dir", str(redis_configs(tmp_path, url)))
    assert result.exit_code == 2
    assert f"cannot reach Redis at {url}" in json.loads(result.stdout)["error"]


def test_an_empty_redis_names_the_push(home: Home, tmp_path: Path, local_redis) -> None:
    url = local_redis.url(db=5)
    result = serve(home, "--config-dir", str(redis_configs(tmp_path, url)), "--detach")
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert f"no customer features in Redis at {url}" in error
    assert f"--to {url}" in error


def test_a_start_that_is_not_ready_says_why(home: Home) -> None:
    """The last /readyz answer and the loader's exception; exit 2 for a missing input."""
    timeout = TimeoutError("http://x/readyz not ready (last answer: {'features': False})")
    error = not_ready(load_config(), home, timeout)
    assert error.exit_code == 2
    assert "'features': False" in str(error)
    assert f"loading fails: InputError: no online store: {home.customers}" in str(error)


@pytest.mark.parametrize("detach", [[], ["--detach"]])
def test_serve_without_a_champion_exits_2_naming_it_and_the_training(home: Home, detach) -> None:
    home.customers.parent.mkdir(parents=True)
    pq.write_table(pa.table({"customer_id": ["c1"]}), home.customers)  # the store is there
    result = serve(home, *detach)
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert "no model to serve: 'liftgate-scorer' has no 'champion' alias" in error
    assert "liftgate train --data WORLD_DIR" in error
