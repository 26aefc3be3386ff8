"""`liftgate drift compare` on files: JSON shape, text table, exit codes and error messages."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from drift.compare import ColumnDrift
from drift.job import DriftJobResult
from liftgate.app.cli.drift import print_job
from liftgate.app.cli.main import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, ["drift", *args])


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    out = tmp_path_factory.mktemp("drift-cli")

    def frame(n: int, shift: float) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "x": rng.normal(shift, 1.0, n),
                "y": rng.exponential(1.0, n),
                "plan": rng.choice(["01", "02", "03"], n),
                "code": rng.integers(0, 4, n),
                "seen_at": pd.Timestamp("2026-01-01") + pd.to_timedelta(np.arange(n), "min"),
            }
        )

    frame(2_000, 0.0).to_parquet(out / "reference.parquet")
    frame(1_500, 0.0).to_csv(out / "same.csv", index=False)
    frame(1_500, 1.0).to_parquet(out / "shifted.parquet")
    return {
        "reference": out / "reference.parquet",
        "same": out / "same.csv",
        "shifted": out / "shifted.parquet",
        "dir": out,
    }


def test_json_has_one_entry_per_chunk_with_the_documented_keys(files) -> None:
    result = invoke(
        "compare",
        "--reference",
        str(files["reference"]),
        "--current",
        str(files["shifted"]),
        "--chunk-size",
        "700",
        "--json",
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [(c["index"], c["start"], c["end"]) for c in document["chunks"]] == [
        (0, 0, 700),
        (1, 700, 1_400),
        (2, 1_400, 1_500),
    ]
    for chunk in document["chunks"][:2]:
        assert chunk["dataset_drift"] is False  # one column of four drifted
        assert chunk["drift_share"] == 0.25
        assert set(chunk["columns"]) == {"x", "y", "plan", "code"}
        assert chunk["columns"]["x"] == {
            "drifted": True,
            "statistic": pytest.approx(chunk["columns"]["x"]["statistic"]),
            "p_value": None,
            "method": "wasserstein",
            "threshold": 0.1,
        }
    assert list(document["skipped_columns"]) == ["seen_at"]
    assert document["chunks"][2]["columns"]["x"]["drifted"]  # the last, partial chunk


def test_columns_types_and_threshold_options(files) -> None:
    """The CSV's codes 01, 02, 03 are read as text, as in the Parquet reference."""
    result = invoke(
        "compare",
        "--reference",
        str(files["reference"]),
        "--current",
        str(files["same"]),
        "--columns",
        "x,code,plan",
        "--categorical",
        "code",
        "--threshold",
        "0.3",
        "--json",
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["column_types"] == {
        "x": "numerical",
        "code": "categorical",
        "plan": "categorical",
    }
    assert document["threshold"] == 0.3
    (chunk,) = document["chunks"]
    assert chunk["start"] == 0 and chunk["end"] == 1_500
    assert not chunk["dataset_drift"]


def test_text_mode_prints_a_table_and_fail_on_drift_exits_1(files) -> None:
    args = ["compare", "--reference", str(files["reference"]), "--current", str(files["shifted"])]
    result = invoke(*args, "--threshold", "0.25")
    assert result.exit_code == 0, result.output
    assert (
        "chunk 0 rows 0-1,500: dataset drift: yes — 1 of 4 columns, at or above the 25 % "
        "threshold (x)"
    ) in result.stdout
    assert "x" in result.stdout and "wasserstein" in result.stdout
    assert invoke(*args, "--threshold", "0.25", "--fail-on-drift").exit_code == 1
    below = invoke(*args, "--fail-on-drift")
    assert below.exit_code == 0  # 25 % < 50 %: no dataset drift, though a column drifted
    assert (
        "chunk 0 rows 0-1,500: dataset drift: no — 1 of 4 columns, below the 50 % threshold (x)"
    ) in below.stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--current", "{dir}/missing.csv"], "--current {dir}/missing.csv: file not found"),
        (["--current", "{same}", "--columns", "x,nope"], "{reference}: column 'nope'"),
        (["--current", "{same}", "--categorical", "nope"], "column 'nope' (from --categorical)"),
        (["--current", "{same}", "--columns", "x", "--categorical", "y"], "not in --columns"),
        (["--current", "{same}", "--numerical", "plan"], "'plan' has type object"),
        (["--current", "{same}", "--threshold", "1.5"], "'--threshold'"),  # Typer's range
        (["--current", "{same}", "--threshold", "0"], "--threshold: expected a share"),
        (["--current", "{same}", "--columns", "seen_at"], "'seen_at' has type"),
    ],
)
def test_bad_input_exits_2_with_a_message_naming_file_and_column(files, extra, message) -> None:
    values = {key: str(path) for key, path in files.items()}
    extra = [e.format(**values) for e in extra]
    result = invoke("compare", "--reference", str(files["reference"]), *extra)
    assert result.exit_code == 2, result.output
    assert message.format(**values) in result.stderr
    assert "Traceback" not in result.output


def test_a_column_missing_from_either_file_names_that_file(files, tmp_path) -> None:
    narrow = tmp_path / "narrow.parquet"
    pd.read_parquet(files["shifted"]).drop(columns="y").to_parquet(narrow)
    reference, shifted = str(files["reference"]), str(files["shifted"])
    result = invoke("compare", "--reference", reference, "--current", str(narrow))
    assert result.exit_code == 2
    assert f"--current {narrow}: column 'y' not found" in result.stderr
    result = invoke("compare", "--reference", str(narrow), "--current", shifted)
    assert result.exit_code == 2, result.output
    assert f"--reference {narrow}: column 'y' not found" in result.stderr


@pytest.mark.parametrize(
    ("drifted", "headline"),
    [
        (3, "dataset drift: no — 3 of 15 columns, below the 50 % threshold (c0, c1, c2)"),
        (9, "dataset drift: yes — 9 of 15 columns, at or above the 50 % threshold (c0, "),
    ],
)
def test_run_text_says_how_many_columns_drifted_against_the_threshold(
    drifted: int, headline: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not "no drift" beside three drifted columns."""
    columns = {f"c{i}": ColumnDrift(i < drifted, 0.2, None, "wasserstein", 0.1) for i in range(15)}
    result = DriftJobResult(
        model={"name": "m", "version": "2", "alias": "champion"},
        window={"spec": "1h", "start": "2026-01-01T00:00", "end": "2026-01-01T01:00"},
        rows=900,
        reference_rows=20_000,
        dataset_drift=drifted / 15 >= 0.5,
        drift_share=drifted / 15,
        drifted_columns=[name for name, column in columns.items() if column.drifted],
        prediction_drift=ColumnDrift(False, 0.01, None, "wasserstein", 0.1),
        columns=columns,
        html=None,
        threshold=0.5,
        prediction_action="uniform",
        rows_tested=900,
    )
    print_job(result.to_dict())
    assert capsys.readouterr().out.splitlines()[1].startswith(f"  {headline}")


def test_run_with_a_bad_window_exits_2(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LIFTGATE_HOME", str(tmp_path))
    result = invoke("run", "--window", "soon")
    assert result.exit_code == 2
    assert "--window: expected a time span" in result.stderr
