"""load_tests/harness/core.py's pure parts: the targets it checks its rows against and the
table it prints. Nothing is started or timed here."""

from __future__ import annotations

import sys
from pathlib import Path

LOAD_TESTS = Path(__file__).resolve().parents[2] / "load_tests"
sys.path.insert(0, str(LOAD_TESTS))  # the benchmark imports its harness as `harness`

from harness.core import check, print_rows  # noqa: E402


def row(candidates: int, mean_us: float, p99_us: float, fsync: str = "off") -> dict:
    return {"candidates": candidates, "scored": float(candidates), "mean_us": mean_us,
            "p50_us": mean_us, "p99_us": p99_us, "fsync": fsync}  # fmt: skip


def test_each_number_of_candidates_has_its_targets() -> None:
    assert check(row(5, 100.0, 250.0)) == "PASS"
    assert check(row(5, 99.0, 251.0)) == "MISS"  # the tail counts too
    assert check(row(5, 101.0, 120.0)) == "MISS"
    assert check(row(100, 400.0, 5_000.0)) == "PASS"  # a mean target only
    assert check(row(100, 401.0, 500.0)) == "MISS"
    assert check(row(20, 1e6, 1e6)) == "-"  # no target


def test_the_table_marks_the_configured_policys_row_as_extra(capsys) -> None:
    print_rows([row(5, 90.0, 200.0), row(100, 450.0, 900.0), row(5, 700.0, 2_000.0, "always")])
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].split()[-1] == "PASS" and lines[3].split()[-1] == "MISS"
    assert lines[4].split()[2] == "always" and lines[4].rstrip().endswith("(extra)")
