"""`analyze`, `experiment plan` and `experiment report` through Typer's CliRunner.

Through the `liftgate` app itself (liftgate/app/cli/main.py).
"""

from __future__ import annotations

import datetime as dt
import json
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
from experiments.stats.aggregate import MetricSpec
from experiments.stats.analysis import analyze
from experiments.stats.power import duration_days, sample_size_per_arm
from liftgate.app.cli.analyze import parse_metric, print_results
from liftgate.app.cli.main import app
from liftgate.core.home import HOME_ENV, Home

runner = CliRunner()

RESULT_KEYS = {
    "metric", "kind", "method", "arm", "control", "n", "mean", "control_n", "control_mean",
    "abs", "rel", "p_value_adjusted", "chance_to_win", "expected_loss", "variance_reduction",
}  # fmt: skip


def make_table(n: int = 6_000, seed: int = 0, share: float = 0.5) -> pa.Table:
    rng = np.random.default_rng(seed)
    return unit_table(np.where(rng.random(n) < share, "control", "treatment"), rng)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tables")
    table = make_table()
    pq.write_table(table, root / "units.parquet")
    pacsv.write_csv(table, root / "units.csv")
    pq.write_table(make_table(share=0.55), root / "skewed.parquet")
    (root / "garbage.parquet").write_bytes(b"PAR1 this is not parquet")
    return {p.stem if p.suffix != ".csv" else "csv": p for p in root.iterdir()}


ARGS = [
    "--arm-col", "arm", "--control", "control",
    "--metric", "converted:binomial", "--metric", "revenue:mean",
    "--metric", "revenue/orders:ratio", "--covariate", "revenue=pre_revenue",
]  # fmt: skip
SPECS = [
    MetricSpec("converted", "converted", "binomial"),
    MetricSpec("revenue", "revenue", "mean", covariate_column="pre_revenue"),
    MetricSpec("revenue/orders", "revenue", "ratio", denominator_column="orders"),
]


def invoke(*args: str | Path):
    return runner.invoke(app, [str(a) for a in args])


def json_of(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # exactly one JSON document on stdout


# --- analyze -----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["frequentist", "sequential", "bayesian"])
def test_json_is_exactly_analyze_on_parquet(files: dict[str, Path], method: str) -> None:
    document = json_of(invoke("analyze", files["units"], *ARGS, "--method", method, "--json"))
    direct = analyze(pq.read_table(files["units"]), "arm", "control", SPECS, method)
    assert document == json.loads(json.dumps(direct))
    assert set(document) == {"srm", "results"}
    assert set(document["srm"]) == {"p_value", "observed", "expected_share", "flag"}
    assert all(set(r) == RESULT_KEYS for r in document["results"])
    assert [r["metric"] for r in document["results"]] == ["converted", "revenue", "revenue/orders"]
    assert document["results"][1]["variance_reduction"] > 0.05


def test_csv_input_with_options(files: dict[str, Path]) -> None:
    options = ["--weights", "control=0.4,treatment=0.6", "--alpha", "0.1", "--correction", "bh"]
    document = json_of(invoke("analyze", files["csv"], *ARGS, *options, "--json"))
    table = pacsv.read_csv(files["csv"])
    direct = analyze(
        table, "arm", "control", SPECS, "frequentist", {"control": 0.4, "treatment": 0.6}, 0.1, "bh"
    )
    assert document == json.loads(json.dumps(direct))
    assert document["srm"]["expected_share"] == {"control": 0.4, "treatment": 0.6}
    assert document["srm"]["flag"]  # a 50/50 table against 40/60 weights


def test_human_output_is_a_table(files: dict[str, Path]) -> None:
    result = invoke("analyze", files["units"], *ARGS)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["arm", "metric", "n", "mean"]
    assert "chance to win" in lines[0] and "adj abs p" in lines[0]
    assert any(line.startswith("treatment") and "converted" in line for line in lines)
    assert any(line.startswith("control (control)") for line in lines)
    assert "SRM ok" in result.stdout and "WARNING" not in result.stdout


def test_srm_warning_comes_first(files: dict[str, Path]) -> None:
    result = invoke("analyze", files["skewed"], *ARGS)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("WARNING: sample ratio mismatch")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (["--arm-col", "variant"], ["'variant'", "--arm-col", "units.parquet"]),
        (["--metric", "spend:mean"], ["'spend'", "--metric", "units.parquet"]),
        (["--metric", "revenue/visits:ratio"], ["'visits'", "units.parquet"]),
        (["--covariate", "converted=pre_spend"], ["'pre_spend'", "--covariate"]),
        (["--control", "rules"], ["--control", "'rules'", "'arm'", "units.parquet"]),
        (["--metric", "revenue:median"], ["--metric", "median"]),
        (["--metric", "revenue"], ["--metric", "COL:binomial"]),
        (["--metric", "revenue:ratio"], ["--metric", "NUM/DEN"]),
        (["--covariate", "revenue/orders=pre_revenue"], ["--covariate", "ratio"]),
        (["--covariate", "nope=pre_revenue"], ["--covariate", "'nope'"]),
        (["--weights", "control=0.5,treatment=0.6"], ["--weights", "sum to 1"]),
        (["--weights", "control=0.5"], ["--weights", "must sum to 1"]),
        (["--weights", "control=1"], ["weights", "treatment"]),
        (["--method", "magic"], ["--method", "magic"]),
        (["--correction", "bonferroni"], ["--correction"]),
        (["--alpha", "1.5"], ["--alpha"]),
    ],
)
def test_bad_input_exits_2_naming_it(
    files: dict[str, Path], change: list[str], expected: list[str]
) -> None:
    args = list(ARGS)
    option = change[0]
    if option in ("--arm-col", "--control"):
        i = args.index(option)
        args[i : i + 2] = change
    else:
        args += change
    result = invoke("analyze", files["units"], *args, "--json")
    assert result.exit_code == 2, result.output
    assert json.loads(result.stdout)["exit_code"] == 2  # the error document
    for text in expected:
        assert text in result.stderr, (text, result.stderr)


def test_binomial_column_must_be_0_1(files: dict[str, Path]) -> None:
    result = invoke(
        "analyze", files["units"], "--arm-col", "arm", "--control", "control",
        "--metric", "revenue:binomial",
    )  # fmt: skip
    assert result.exit_code == 2
    assert "units.parquet" in result.stderr and "'revenue'" in result.stderr


def test_each_interval_stands_beside_its_own_p(capsys: pytest.CaptureFixture[str]) -> None:
    """A relative interval that includes 0 is not shown beside the absolute effect's p."""
    effect = {"estimate": 0.02, "ci_low": 0.004, "ci_high": 0.036, "p_value": 0.019}
    lift = {"estimate": 0.21, "ci_low": -0.04, "ci_high": 0.46, "p_value": 0.1}
    row = {
        "metric": "converted", "arm": "treatment", "control": "control", "n": 2_000,
        "mean": 0.12, "control_n": 2_000, "control_mean": 0.1, "abs": effect, "rel": lift,
        "p_value_adjusted": 0.038, "chance_to_win": None, "variance_reduction": None,
        "method": "frequentist",
    }  # fmt: skip
    srm = {"flag": False, "p_value": 0.5}
    print_results({"srm": srm, "results": [row]})
    lines = capsys.readouterr().out.splitlines()
    head, treatment = lines[0], next(line for line in lines if line.startswith("treatment"))
    columns = [c.strip() for c in head.split("  ") if c.strip()]
    cells = [c.strip() for c in treatment.split("  ") if c.strip()]
    assert columns[4:9] == ["abs effect [95%]", "abs p", "adj abs p", "rel lift [95%]", "rel p"]
    assert cells[4:9] == [
        "+0.02 [+0.004, +0.036]", "0.019", "0.038", "+21.00% [-4.00%, +46.00%]", "0.1",
    ]  # fmt: skip


def write_csv_with_missing_cells(path: Path) -> pa.Table:
    """A table as CSV, with a blank and an n/a revenue cell (pyarrow reads both as null)."""
    table = make_table(n=400)
    frame = table.to_pandas()
    frame["revenue"] = frame["revenue"].astype(object)
    frame.loc[0, "revenue"], frame.loc[4, "revenue"] = "", "n/a"
    frame.to_csv(path, index=False)
    return table


MISSING_ARGS = ["--arm-col", "arm", "--control", "control", "--metric", "revenue:mean"]


def test_missing_metric_cells_exit_2_naming_the_column_and_count(tmp_path: Path) -> None:
    path = tmp_path / "holes.csv"
    write_csv_with_missing_cells(path)
    result = invoke("analyze", path, *MISSING_ARGS, "--json")
    assert result.exit_code == 2, result.output
    assert json.loads(result.stdout)["exit_code"] == 2  # the error document
    for text in (str(path), "column 'revenue' (from --metric 'revenue'): 2 of 400"):
        assert text in result.stderr, result.stderr
    assert "--fill-missing" in result.stderr


@pytest.mark.parametrize(("fill", "value"), [("zero", 0.0), ("2.5", 2.5)])
def test_fill_missing_fills_them_and_says_so(tmp_path: Path, fill: str, value: float) -> None:
    path = tmp_path / "holes.csv"
    table = write_csv_with_missing_cells(path)
    result = invoke("analyze", path, *MISSING_ARGS, "--fill-missing", fill, "--json")
    assert result.exit_code == 0, result.output
    document = json_of(result)
    assert document.pop("filled_missing") == {"value": value, "cells": {"revenue": 2}}
    revenue = table["revenue"].to_pylist()
    revenue[0] = revenue[4] = value
    filled = table.set_column(table.column_names.index("revenue"), "revenue", pa.array(revenue))
    direct = analyze(filled, "arm", "control", [MetricSpec("revenue", "revenue", "mean")])
    assert document == json.loads(json.dumps(direct))
    assert f"filled missing cells with {value:g} (--fill-missing): 2 in 'revenue'" in (
        result.stderr
    )


def test_nan_in_parquet_is_missing_and_a_bad_fill_value_exits_2(tmp_path: Path) -> None:
    table = make_table(n=400)
    revenue = table["revenue"].to_pylist()
    revenue[3] = float("nan")
    path = tmp_path / "nan.parquet"
    pq.write_table(table.set_column(2, "revenue", pa.array(revenue)), path)
    result = invoke("analyze", path, *MISSING_ARGS)
    assert result.exit_code == 2 and "1 of 400" in result.stderr, result.output
    result = invoke("analyze", path, *MISSING_ARGS, "--fill-missing", "none")
    assert result.exit_code == 2 and "--fill-missing" in result.stderr, result.output


@pytest.mark.parametrize(
    "weights", ["control=0.5,treatmnt=0.5", "control=0.4,treatment=0.4,treatmnt=0.2"]
)
def test_a_weight_for_an_unknown_arm_names_it_and_the_arms(
    files: dict[str, Path], weights: str
) -> None:
    result = invoke("analyze", files["units"], *ARGS, "--weights", weights, "--json")
    assert result.exit_code == 2, result.output
    assert "sample ratio mismatch" not in result.output
    assert "arm 'treatmnt' is not in column 'arm' (arms present: control, treatment)" in (
        result.stderr
    )


@pytest.mark.parametrize("name", ["missing.parquet", "garbage.parquet"])
def test_missing_or_unreadable_file_exits_2(files: dict[str, Path], name: str) -> None:
    path = files["units"].parent / name
    result = invoke("analyze", path, *ARGS)
    assert result.exit_code == 2
    assert name in result.stderr


def test_parse_metric() -> None:
    assert parse_metric("revenue/orders:ratio") == MetricSpec(
        "revenue/orders", "revenue", "ratio", denominator_column="orders"
    )
    assert parse_metric("a:b:binomial").column == "a:b"


# --- experiment plan -----------------------------------------------------------------------


def test_plan_numbers_are_power_sample_size() -> None:
    document = json_of(
        invoke(
            "experiment",
            "plan",
            "--baseline",
            "0.1",
            "--mde",
            "0.1",
            "--daily-traffic",
            "5000",
            "--json",
        )  # fmt: skip
    )
    n = sample_size_per_arm("binomial", 0.1, 0.1)
    assert document["n_per_arm"] == n == 14745
    assert document["total"] == 2 * n
    assert document["days"] == duration_days(n, 5000, 2) == 6
    assert {
        "experiment", "kind", "baseline", "mde", "alpha", "power", "arms", "n_per_arm",
        "total", "daily_traffic", "days",
    } <= set(document)  # fmt: skip


def test_plan_mean_metric_with_three_arms() -> None:
    document = json_of(
        invoke(
            "experiment",
            "plan",
            "--kind",
            "mean",
            "--baseline",
            "20",
            "--std",
            "30",
            "--mde",
            "0.05",
            "--alpha",
            "0.01",
            "--power",
            "0.9",
            "--arms",
            "3",
            "--json",
        )  # fmt: skip
    )
    n = sample_size_per_arm("mean", 20.0, 0.05, std=30.0, alpha=0.01, power=0.9)
    assert document["n_per_arm"] == n and document["total"] == 3 * n
    assert document["days"] is None


def test_plan_defaults_from_the_experiment_yaml() -> None:
    experiment = load_config().experiments["scored-vs-rules"]
    document = json_of(
        invoke("experiment", "plan", "scored-vs-rules", "--baseline", "0.08", "--json")
    )
    assert document["experiment"] == "scored-vs-rules"
    assert document["mde"] == experiment.minimum_detectable_effect
    assert document["alpha"] == experiment.alpha and document["power"] == experiment.power
    assert document["arms"] == len(experiment.arms)
    kind = "binomial" if experiment.primary_metric.kind == "binomial" else "mean"
    assert document["kind"] == kind
    if kind == "binomial":
        assert document["n_per_arm"] == sample_size_per_arm(
            "binomial", 0.08, experiment.minimum_detectable_effect,
            alpha=experiment.alpha, power=experiment.power,
        )  # fmt: skip
    result = invoke("experiment", "plan", "scored-vs-rules", "--baseline", "0.08")
    assert result.exit_code == 0 and "units per arm" in result.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], "--baseline"),
        (["--kind", "mean", "--baseline", "20"], "--std"),
        (["--baseline", "1.5"], "--baseline"),
        (["--kind", "count", "--baseline", "0.1"], "--kind"),
        (["no-such-experiment", "--baseline", "0.1"], "no-such-experiment"),
    ],
)
def test_plan_bad_input_exits_2(args: list[str], expected: str) -> None:
    result = invoke("experiment", "plan", *args, "--json")
    assert result.exit_code == 2, result.output
    assert expected in result.stderr and json.loads(result.stdout)["exit_code"] == 2


# --- experiment report ---------------------------------------------------------------------


def write_logs(home: Home, n_customers: int = 3_000, seed: int = 0) -> int:
    """Decisions of scored-vs-rules (a tenth in the holdout) and some conversions; returns
    the number of holdout customers."""
    config = load_config()
    n_features = len(config.features.features)
    rng = np.random.default_rng(seed)
    t0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    row = dict(
        contract_version="1", actions=["a", "b"], scores=[1.0, 0.5], probabilities=[0.1, 0.05],
        chosen="a", propensity=0.95, policy="rules", model_name="m", model_version="1",
        model_alias="champion", experiment="scored-vs-rules", fallback=False,
        fallback_reason=None, cold_start=False, latency_ms=1.0, trace_id="t", request_id=None,
    )  # fmt: skip
    holdout = 0
    with (
        LogWriter(
            home.decision_log, DecisionRecord, max_rows=10**6, max_buffered_rows=10**6
        ) as decisions,
        LogWriter(
            home.outcome_log, OutcomeRecord, max_rows=10**6, max_buffered_rows=10**6
        ) as outcomes,
    ):
        for i in range(n_customers):
            u = rng.random()
            arm = "holdout" if u < 0.1 else "rules" if u < 0.55 else "scored"
            holdout += arm == "holdout"
            ts = t0 + dt.timedelta(minutes=5 * i)
            decision_id = f"d{i}"
            decisions.append(
                DecisionRecord(
                    **row,
                    decision_id=decision_id,
                    ts=ts,
                    customer_id=f"c{i}",
                    features=list(rng.random(n_features) * 5),
                    arm=arm,
                )
            )
            if rng.random() < (0.15 if arm == "scored" else 0.10):
                outcomes.append(
                    OutcomeRecord(
                        outcome_id=f"o{i}",
                        decision_id=decision_id,
                        ts=ts + dt.timedelta(hours=1),
                        event="conversion",
                        value=1.0,
                        received_ts=ts + dt.timedelta(hours=1),
                        known_decision=True,
                    )
                )
    return holdout


def test_report_command_from_the_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = Home(tmp_path / "home")
    monkeypatch.setenv(HOME_ENV, str(home.root))
    holdout = write_logs(home)
    html = tmp_path / "out" / "report.html"
    result = invoke("experiment", "report", "scored-vs-rules", "--html", html, "--json")
    report = json_of(result)
    assert f"wrote {html}" in result.stderr
    assert report["experiment"] == "scored-vs-rules"
    assert report["holdout_units"] == holdout
    assert sum(report["units"].values()) == 3_000 - holdout
    assert report["ship_decision"]["decision"] in ("ship", "don't ship", "keep running")
    assert report["timeline"][-1]["units"] == {a: n for a, n in report["units"].items() if n}
    page = html.read_text()
    assert page.startswith("<!doctype html>") and page.count("data:image/png;base64,") == 3

    text = invoke("experiment", "report", "scored-vs-rules")
    assert text.exit_code == 0, text.output
    first = text.stdout.splitlines()[0]
    assert first.startswith("scored-vs-rules (") or first.startswith("WARNING")
    assert report["ship_decision"]["decision"].upper() in text.stdout


def test_report_without_exposures_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIFTGATE_HOME", str(tmp_path))
    result = invoke("experiment", "report", "scored-vs-rules", "--json")
    assert result.exit_code == 1
    assert "no exposures" in result.stderr
    assert json.loads(result.stdout) == {"error": result.stderr[7:].strip(), "exit_code": 1}


def test_report_unknown_experiment_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIFTGATE_HOME", str(tmp_path))
    result = invoke("experiment", "report", "nope")
    assert result.exit_code == 2
    assert "'nope'" in result.stderr
