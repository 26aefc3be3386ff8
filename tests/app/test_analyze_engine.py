"""`liftgate analyze` and `liftgate experiment report` with `--engine local|ray`: the
numbers of the in-memory engine, from batches and partitions.

The slow test starts Ray: run it under ``flock /tmp/liftgate-ray.lock`` (one Ray at a time).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner
from unit_tables import unit_table  # tests/, beside conftest.py

from configs.loader import load_config
from experiments.logs.schema import DecisionRecord, OutcomeRecord
from experiments.logs.writer import LogWriter
from liftgate.app.cli.main import app
from liftgate.app.report_units import UnitsJob, units_locally
from liftgate.core.home import HOME_ENV, Home

runner = CliRunner()

ARGS = [
    "--arm-col", "arm", "--control", "control",
    "--metric", "converted:binomial", "--metric", "revenue:mean",
    "--metric", "revenue/orders:ratio", "--covariate", "revenue=pre_revenue",
]  # fmt: skip


def make_table(n: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return unit_table(rng.choice(["control", "treatment", "other"], n), rng)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tables")
    table = make_table(9_000)
    # Many row groups in several files: the streaming engines see many batches.
    (root / "dir").mkdir()
    for i in range(3):
        part = table.slice(i * 3_000, 3_000)
        pq.write_table(part, root / "dir" / f"part-{i}.parquet", row_group_size=700)
    pq.write_table(table, root / "units.parquet")
    pacsv.write_csv(table, root / "units.csv")
    holes = table.set_column(2, "revenue", pa.array([None, *table["revenue"].to_pylist()[1:]]))
    pq.write_table(holes, root / "holes.parquet", row_group_size=1_000)
    return {"dir": root / "dir", "units": root / "units.parquet", "csv": root / "units.csv",
            "holes": root / "holes.parquet"}  # fmt: skip


def invoke(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args])


def document(*args: str | Path) -> dict:
    result = invoke("analyze", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def assert_close(got: object, want: object, where: str = "") -> None:
    """Equal structure; floats equal to 1e-9 relative (two summation orders)."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), where
        for key in want:
            assert_close(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_close(g, w, f"{where}[{i}]")
    elif isinstance(want, float) and not isinstance(want, bool):
        assert isinstance(got, float) and math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12), (
            where,
            got,
            want,
        )
    else:
        assert got == want, where


@pytest.mark.parametrize("source", ["dir", "units", "csv"])
@pytest.mark.parametrize("method", ["frequentist", "bayesian"])
def test_local_engine_equals_memory(files: dict[str, Path], source: str, method: str) -> None:
    args = [
        files[source],
        *ARGS,
        "--method",
        method,
        "--weights",
        "control=0.3,treatment=0.3,other=0.4",
    ]
    memory = document(*args)
    assert_close(document(*args, "--engine", "local"), memory)
    assert memory["results"][0]["n"] > 2_000


def test_local_engine_fills_and_refuses_missing_cells_like_memory(files: dict[str, Path]) -> None:
    filled = document(files["holes"], *ARGS, "--fill-missing", "zero")
    assert filled["filled_missing"] == {"value": 0.0, "cells": {"revenue": 1}}
    local = document(files["holes"], *ARGS, "--fill-missing", "zero", "--engine", "local")
    assert_close(local, filled)
    memory = invoke("analyze", files["holes"], *ARGS)
    streamed = invoke("analyze", files["holes"], *ARGS, "--engine", "local")
    assert memory.exit_code == streamed.exit_code == 2
    assert "column 'revenue' (from --metric 'revenue'): 1 of 9,000" in streamed.output
    assert streamed.output == memory.output


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--control", "nobody"], "arm 'nobody' not found in column 'arm'"),
        (["--metric", "nope:mean"], "column 'nope' (from --metric 'nope') not found"),
        (["--metric", "revenue_x:binomial"], "not found"),
    ],
)
def test_local_engine_names_the_bad_input(
    files: dict[str, Path], extra: list[str], expected: str
) -> None:
    result = invoke("analyze", files["dir"], *ARGS, *extra, "--engine", "local")
    assert result.exit_code == 2 and expected in result.output
    assert "Traceback" not in result.output


def test_local_engine_refuses_a_non_binary_binomial_column(files: dict[str, Path]) -> None:
    result = invoke(
        "analyze", files["dir"], "--arm-col", "arm", "--control", "control",
        "--metric", "orders:binomial", "--engine", "local",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "binomial column 'orders' must hold 0/1 values" in result.output
    assert str(files["dir"]) in result.output


def test_ray_engine_reads_parquet_only(files: dict[str, Path]) -> None:
    result = invoke("analyze", files["csv"], *ARGS, "--engine", "ray")
    assert result.exit_code == 2 and "--engine ray: reads Parquet only" in result.output


@pytest.fixture
def ray_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Ray engine's temp dir is derived from the home: one of the test's own."""
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))


@pytest.mark.slow
def test_ray_engine_equals_memory(files: dict[str, Path], ray_home: None) -> None:
    args = [files["dir"], *ARGS, "--method", "sequential"]
    memory = document(*args)
    assert_close(document(*args, "--engine", "ray"), memory)
    bad = invoke("analyze", files["holes"], *ARGS, "--engine", "ray")
    assert bad.exit_code == 2
    assert "column 'revenue' (from --metric 'revenue'): 1 of 9,000" in bad.output


# --- experiment report -------------------------------------------------------------------


def write_logs(home: Home, n_customers: int = 1_500, seed: int = 0) -> None:
    """scored-vs-rules over three days: 1-4 decisions per customer (a tenth in the holdout),
    conversions and revenue, some after the 72 h window, some logged twice."""
    n_features = len(load_config().features.features)
    rng = np.random.default_rng(seed)
    t0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    row = dict(
        contract_version="1", actions=["a", "b"], scores=[1.0, 0.5], probabilities=[0.1, 0.05],
        chosen="a", propensity=0.95, policy="rules", model_name="m", model_version="1",
        model_alias="champion", fallback=False, fallback_reason=None, cold_start=False,
        latency_ms=1.0, trace_id="t", request_id=None,
    )  # fmt: skip
    with (
        LogWriter(home.decision_log, DecisionRecord, max_rows=500) as decisions,
        LogWriter(home.outcome_log, OutcomeRecord, max_rows=300) as outcomes,
    ):
        for i in range(n_customers):
            u = rng.random()
            arm = "holdout" if u < 0.1 else "rules" if u < 0.55 else "scored"
            experiment = "other" if rng.random() < 0.05 else "scored-vs-rules"
            for k in range(int(rng.integers(1, 5))):
                ts = t0 + dt.timedelta(minutes=int(rng.integers(0, 3 * 24 * 60)))
                decision_id = f"d{i}-{k}"
                decisions.append(
                    DecisionRecord(
                        **row,
                        decision_id=decision_id,
                        ts=ts,
                        customer_id=f"c{i}",
                        features=list(rng.random(n_features) * 5),
                        arm=arm,
                        experiment=experiment,
                    )  # fmt: skip
                )
                if rng.random() < (0.2 if arm == "scored" else 0.12):
                    late = rng.random() < 0.1
                    when = ts + dt.timedelta(hours=100 if late else 1)
                    for event, value in (("conversion", 1.0), ("revenue", float(rng.gamma(2, 20)))):
                        for copy in range(1 + (rng.random() < 0.1)):
                            outcomes.append(
                                OutcomeRecord(
                                    outcome_id=f"o{i}-{k}-{event}-{copy}",
                                    decision_id=decision_id,
                                    ts=when,
                                    event=event,
                                    value=value,
                                    received_ts=when + dt.timedelta(seconds=copy),
                                    known_decision=True,
                                )  # fmt: skip
                            )


@pytest.fixture(scope="module")
def logged_home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    home = Home(tmp_path_factory.mktemp("home"))
    write_logs(home)
    return home


def report(home: Home, monkeypatch: pytest.MonkeyPatch, *engine: str) -> dict:
    monkeypatch.setenv(HOME_ENV, str(home.root))
    result = invoke("experiment", "report", "scored-vs-rules", "--json", *engine)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    del document["generated_at"]  # the clock's, not the data's
    return document


def test_local_report_equals_memory(logged_home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    memory = report(logged_home, monkeypatch)
    assert memory["holdout_units"] > 50 and sum(memory["units"].values()) > 1_000
    assert memory["results"][0]["metric"] == "conversion"
    assert_close(report(logged_home, monkeypatch, "--engine", "local"), memory)


def test_partitions_hold_each_customer_once(logged_home: Home) -> None:
    job = UnitsJob(
        logged_home.decision_log, logged_home.outcome_log, "scored-vs-rules", None, None, None,
        72 * 3600.0, 0, {},
    )  # fmt: skip
    parts = [job.partition(i, 4) for i in range(4)]
    ids = [c for part in parts for c in part["customer_id"].to_pylist()]
    assert len(ids) == len(set(ids)) and all(part.num_rows for part in parts)
    together = units_locally(job, 4)
    assert sorted(together["customer_id"].to_pylist()) == sorted(ids)
    assert job.decision_arms().column_names == ["decision_id", "arm", "experiment"]


def test_local_report_without_logs_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HOME_ENV, str(tmp_path))
    result = invoke("experiment", "report", "scored-vs-rules", "--engine", "local")
    assert result.exit_code == 1 and "no exposures" in result.output


@pytest.mark.slow
def test_ray_report_equals_memory(logged_home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    memory = report(logged_home, monkeypatch)
    assert_close(report(logged_home, monkeypatch, "--engine", "ray"), memory)
