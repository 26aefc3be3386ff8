"""`liftgate score --input PARQUET --output DIR`: bad input named (exit 2), and a sample of
the Ray Data output equal to the online decision service's answers.

The slow test starts Ray: run it under ``flock /tmp/liftgate-ray.lock``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from configs.loader import load_config
from liftgate.app.cli.main import app
from liftgate.core.home import HOME_ENV, Home
from liftgate.sim.world import World, stock_home
from registry.client import ModelRegistry
from registry.pipeline import train_and_register
from serving.api_models import DecideRequest
from serving.components import build_service

runner = CliRunner()


def invoke(home: Home, *args: str):
    return runner.invoke(app, ["score", *args], env={HOME_ENV: str(home.root)})


@pytest.fixture
def customers(tmp_path: Path) -> Path:
    path = tmp_path / "customers.parquet"
    World(seed=1, n_customers=50).customers.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize(
    ("problem", "named"),
    [
        ("no input", "--input"),
        ("no device column", "'device'"),
        ("output exists", "--output"),
        ("unknown action", "--actions"),
    ],
)
def test_bad_input_exits_2_naming_the_file_and_column(
    home: Home, tmp_path: Path, customers: Path, problem: str, named: str
) -> None:
    source, target, extra = customers, tmp_path / "scores", []
    if problem == "no input":
        source = tmp_path / "absent.parquet"
    elif problem == "no device column":
        table = pq.read_table(customers)
        pq.write_table(table.drop_columns(["device"]), customers)
    elif problem == "output exists":
        target.mkdir()
        (target / "old.parquet").write_text("x")
    else:
        extra = ["--actions", "email_10,fax"]
    args = ["--input", str(source), "--output", str(target), *extra]
    result = invoke(home, *args, "--json")
    assert result.exit_code == 2, result.output
    error = json.loads(result.stdout)
    assert error["exit_code"] == 2 and named in error["error"], error
    named_path = {"no input": source, "no device column": source, "output exists": target}
    if problem in named_path:
        assert str(named_path[problem]) in error["error"]
    assert "Traceback" not in result.output


def test_a_home_without_a_model_is_named(home: Home, tmp_path: Path, customers: Path) -> None:
    result = invoke(home, "--input", str(customers), "--output", str(tmp_path / "s"))
    assert result.exit_code != 0 and "champion" in result.stderr
    assert "Traceback" not in result.output


@pytest.fixture(scope="module")
def served_home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    home = Home(tmp_path_factory.mktemp("home")).ensure()
    world_dir = home.worlds / "w"
    World(seed=5, n_customers=4_000).write(world_dir, rows=30_000)
    config = load_config()
    summary = train_and_register(world_dir, config, ModelRegistry(home, config.models.registry))
    assert "champion" in summary["aliases"], summary["gate"]
    stock_home(home, world_dir)
    return home


def online_answers(home: Home, customer_ids: list[str]) -> dict[str, dict]:
    """The decision service's answer for each customer (every action a candidate)."""
    service, components = build_service(load_config(), home, wait_s=120.0)
    try:
        return {
            customer: asyncio.run(service.decide(DecideRequest(customer_id=customer), "t" * 32))
            for customer in customer_ids
        }
    finally:
        service.close()
        components.close()


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["ray", "local"])
def test_a_sample_equals_the_online_answers(served_home: Home, tmp_path: Path, engine: str):
    target = tmp_path / "scores"
    args = ["--input", str(served_home.customers), "--output", str(target), "--engine", engine]
    result = invoke(served_home, *args, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    actions = summary["actions"]
    assert summary["customers"] == 4_000 and summary["rows"] == 4_000 * len(actions)
    scores = pq.read_table(target).to_pylist()
    assert len(scores) == summary["rows"]
    by_customer: dict[str, dict[str, dict]] = {}
    for row in scores:
        by_customer.setdefault(row["customer_id"], {})[row["action"]] = row
    sample = sorted(by_customer)[::400]
    for customer, answer in online_answers(served_home, sample).items():
        mine = by_customer[customer]
        assert not answer["fallback"], answer
        assert {(r["model"], r["model_version"]) for r in mine.values()} == {
            (answer["model"]["name"], answer["model"]["version"])
        }
        for entry in answer["ranked"]:  # the eligible, consented candidates, best first
            row = mine[entry["action"]]
            assert row["eligible"]
            assert row["p_conversion"] == pytest.approx(entry["conversion_probability"], abs=1e-9)
            assert row["expected_value"] == pytest.approx(entry["expected_value"], abs=1e-9)
            assert row["expected_value_low"] == pytest.approx(entry["confidence"]["low"], abs=1e-9)
        online_order = [entry["action"] for entry in answer["ranked"]]
        batch_order = sorted(online_order, key=lambda action: mine[action]["rank"])
        assert batch_order == online_order
