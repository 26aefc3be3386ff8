"""load_tests/bench_journeys.py's pure parts: percentiles, ratios, rows and the table; and,
slow, the bench itself at tiny sizes on SQLite (the rows it returns, no thresholds)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

LOAD_TESTS = Path(__file__).resolve().parents[2] / "load_tests"
sys.path.insert(0, str(LOAD_TESTS))  # the benchmark imports its harness as `harness`

from bench_journeys import (  # noqa: E402
    DELAY,
    FIGURES,
    STARTS,
    STEPS,
    delay_summary,
    journey_of,
    print_rows,
    ratio,
    rows_of,
)


def result(variant: str, measure: str, **fields: float) -> dict:
    return {"backend": "sqlite", "variant": variant, "measure": measure, **fields}


RESULTS = [
    result("journey", STARTS, rate=100.0),
    result("floor", STARTS, rate=400.0),
    result("journey", STEPS, rate=300.0),
    result("floor", STEPS, rate=600.0),
    result("journey", DELAY, p50_ms=30.0, p99_ms=90.0, max_ms=120.0),
    result("floor", DELAY, p50_ms=10.0, p99_ms=30.0, max_ms=40.0),
]


def test_delays_are_summarised_in_ms() -> None:
    summary = delay_summary([0.001 * i for i in range(1, 101)])
    assert math.isclose(summary["p50_ms"], 50.5)
    assert math.isclose(summary["p99_ms"], 99.01)
    assert math.isclose(summary["max_ms"], 100.0)
    assert delay_summary([]) == {"p50_ms": None, "p99_ms": None, "max_ms": None}


def test_the_ratio_is_the_journeys_over_the_floors() -> None:
    assert math.isclose(ratio(100.0, 400.0), 0.25)
    assert ratio(None, 400.0) is None and ratio(100.0, 0.0) is None


def test_each_figure_of_a_backend_has_journey_floor_and_ratio() -> None:
    rows = rows_of(RESULTS, {})
    assert [r["figure"] for r in rows] == [f[0] for f in FIGURES]
    starts, steps, p50 = rows[0], rows[1], rows[2]
    assert (starts["journey"], starts["floor"]) == (100.0, 400.0)
    assert math.isclose(starts["ratio"], 0.25) and math.isclose(steps["ratio"], 0.5)
    assert math.isclose(p50["ratio"], 3.0) and p50["unit"] == "ms"


def test_a_backend_that_could_not_run_says_why(capsys) -> None:
    rows = rows_of(RESULTS, {"postgres": "PostgreSQL is not installed; install it with: X"})
    assert rows[-1] == {
        "backend": "postgres",
        "figure": "unavailable",
        "note": "PostgreSQL is not installed; install it with: X",
    }
    print_rows(rows)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["backend", "figure", "unit", "journey", "floor", "journey/floor"]
    assert lines[2].split()[-3:] == ["100.0", "400.0", "0.25"]
    assert "install it with: X" in lines[-1]


def test_the_journeys_are_valid_and_shaped_as_documented() -> None:
    assert [s.kind for s in journey_of(STARTS, 2.0).steps] == ["wait"]
    assert [s.kind for s in journey_of(STEPS, 2.0).steps] == [
        "decide",
        "act",
        "decide",
        "act",
        "exit",
    ]
    delay = journey_of(DELAY, 0.5).steps
    assert delay[0].wait.duration.total_seconds() == 0.5 and delay[1].kind == "decide"


@pytest.mark.slow
def test_the_bench_runs_on_sqlite_at_tiny_sizes() -> None:
    command = [sys.executable, str(LOAD_TESTS / "bench_journeys.py"), "--backend", "sqlite"]
    command += ["--runs", "20", "--wait-s", "0.5", "--no-quiet-wait", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads(done.stdout)
    assert [(r["backend"], r["figure"]) for r in rows] == [("sqlite", f[0]) for f in FIGURES]
    for row in rows:
        assert row["journey"] > 0 and row["floor"] > 0 and row["ratio"] > 0
