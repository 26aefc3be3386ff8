"""`liftgate features push --from PARQUET [--to redis://...] [--json]`: the embedded store
written atomically, Redis in batches, bad files named with their column, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from configs.loader import load_config
from liftgate.app.cli.main import app
from liftgate.core.catalogue import ActionCatalogue
from liftgate.core.contract import FeatureContract
from liftgate.core.home import HOME_ENV, Home
from liftgate.core.local_redis import LocalRedis
from liftgate.sim.world import World
from serving.online_store import OnlineStore
from serving.redis_store import RedisOnlineStore

runner = CliRunner()
CONFIG = load_config()


@pytest.fixture(scope="module")
def customers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("world") / "customers.parquet"
    table = pa.Table.from_pandas(World(seed=5, n_customers=2_000).customers, preserve_index=False)
    pq.write_table(table, path)
    return path


def push(home: Home, *args: str):
    return runner.invoke(app, ["features", "push", *args], env={HOME_ENV: str(home.root)})


def test_push_fills_the_embedded_store(home: Home, customers: Path) -> None:
    result = push(home, "--from", str(customers), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["pushed"] == 2_000
    assert summary["store"] == str(home.customers)
    assert summary["seconds"] >= 0
    assert pq.read_table(home.customers).equals(pq.read_table(customers))
    assert not list(home.customers.parent.glob(".*partial"))  # renamed, nothing left over


def test_push_without_json_reports_a_count(home: Home, customers: Path) -> None:
    result = push(home, "--from", str(customers))
    assert result.exit_code == 0, result.output
    assert "pushed 2,000 customers to" in result.stdout


def test_push_to_redis_serves_what_the_embedded_store_serves(
    home: Home, customers: Path, local_redis: LocalRedis
) -> None:
    url = local_redis.url(db=4)
    result = push(home, "--from", str(customers), "--to", url, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["pushed"], summary["store"]) == (2_000, url)
    contract, catalogue = FeatureContract(CONFIG.features), ActionCatalogue(CONFIG.actions)
    embedded = OnlineStore.from_parquet(customers, contract, catalogue)
    remote = RedisOnlineStore.from_url(url, contract, catalogue)
    for customer_id in pq.read_table(customers).column("customer_id").to_pylist()[:50]:
        expected, found = embedded.lookup(customer_id), remote.lookup(customer_id)
        np.testing.assert_allclose(found.features, expected.features, rtol=1e-12, atol=0)
        np.testing.assert_array_equal(found.eligible, expected.eligible)
    remote.close()


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda t: t.drop_columns(["recency_days"]), "no column 'recency_days'"),
        (lambda t: t.drop_columns(["customer_id"]), "no column 'customer_id'"),
        (
            lambda t: t.set_column(0, "customer_id", pa.array(range(t.num_rows))),
            "column 'customer_id' holds int64; expected strings",
        ),
    ],
)
def test_a_file_without_what_serving_needs_exits_2_naming_file_and_column(
    home: Home, customers: Path, tmp_path: Path, change, named: str
) -> None:
    bad = tmp_path / "bad.parquet"
    pq.write_table(change(pq.read_table(customers)), bad)
    result = push(home, "--from", str(bad), "--json")
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert str(bad) in error and named in error
    assert not home.customers.exists()


def test_a_missing_or_unreadable_file_exits_2(home: Home, tmp_path: Path) -> None:
    for path, named in [(tmp_path / "none.parquet", "no such file"), (tmp_path, "no such file")]:
        result = push(home, "--from", str(path))
        assert result.exit_code == 2 and named in result.stderr
    text = tmp_path / "text.parquet"
    text.write_text("customer_id\nc1\n")
    result = push(home, "--from", str(text))
    assert result.exit_code == 2 and f"{text}: not a readable Parquet file" in result.stderr


def test_a_bad_or_unreachable_redis_url_exits_2(
    home: Home, customers: Path, free_port: int
) -> None:
    result = push(home, "--from", str(customers), "--to", "http://127.0.0.1:1")
    assert result.exit_code == 2 and "--to: expected redis://HOST:PORT/DB" in result.stderr
    url = f"redis://127.0.0.1:{free_port}/0"
    result = push(home, "--from", str(customers), "--to", url)
    assert result.exit_code == 2 and f"cannot write to Redis at {url}" in result.stderr
