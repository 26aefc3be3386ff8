"""Benchmark drift comparison on 1 M current rows against a 200 k-row reference.

    .venv/bin/python load_tests/bench_drift.py [--rows 1_000_000] [--reference 200_000]
        [--repeat 1] [--json]

The tables have 15 columns: 10 numerical (normal, exponential, integer counts) and 5
categorical (3 to 6 values); in the current table two numerical and one categorical column
are shifted, so some columns drift and the dataset does not. Times (median of ``--repeat``
runs, after one warm-up call that pays Evidently's import):

- ``chunks``: :func:`drift.compare.compare_tables` with ``chunk_size=100_000`` — 10 chunks,
  each against the whole reference (sampled to 50 000 rows once; chunks of 100 000 rows are
  not sampled). Target <= 30 s.
- ``one chunk``: the same with the whole 1 M rows as one chunk (sampled to 100 000).
  Target <= 30 s.
- ``parquet + chunks``: reading both tables from Parquet (``liftgate.core.tables.read_table``,
  as ``liftgate drift compare`` does) plus ``chunks``. Target <= 30 s.
- baseline ``evidently 10k``: ``Report([DataDriftPreset()])`` of Evidently's new API on a
  10 000-row sample of each table (what one would write by hand; it also builds the plots
  of every column).
- baseline ``scipy full``: ``scipy.stats.ks_2samp`` on every numerical column and
  ``chi2_contingency`` on every categorical column of the full tables (one chunk, no
  sampling; p-values that flag any difference at this size).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drift.compare import compare_tables  # noqa: E402

TARGET_S = 30.0
CATEGORICAL = [f"c{i}" for i in range(5)]


def make_table(rows: int, seed: int, shifted: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    columns: dict[str, np.ndarray] = {}
    for i in range(4):
        columns[f"n{i}"] = rng.normal(0.5 if shifted and i == 0 else 0.0, 1.0 + i / 4, rows)
    for i in range(4, 7):
        columns[f"n{i}"] = rng.exponential(1.3 if shifted and i == 4 else 1.0, rows)
    for i in range(7, 10):
        columns[f"n{i}"] = rng.poisson(2.0 + i, rows).astype(np.int64)
    for i, name in enumerate(CATEGORICAL):
        k = 3 + i
        p = np.full(k, 1.0 / k)
        if shifted and i == 0:
            p = np.r_[0.6, np.full(k - 1, 0.4 / (k - 1))]
        columns[name] = np.asarray([f"v{j}" for j in range(k)])[rng.choice(k, rows, p=p)]
    return pd.DataFrame(columns)


def median_seconds(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def scipy_full(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, float]:
    from scipy.stats import chi2_contingency, ks_2samp

    p_values = {}
    for name in reference.columns:
        if name in CATEGORICAL:
            counts = pd.concat(
                [reference[name].value_counts(), current[name].value_counts()], axis=1
            ).fillna(0)
            p_values[name] = float(chi2_contingency(counts.to_numpy().T).pvalue)
        else:
            p_values[name] = float(ks_2samp(reference[name], current[name]).pvalue)
    return p_values


def evidently_sample(reference: pd.DataFrame, current: pd.DataFrame, rows: int) -> float:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(
        numerical_columns=[c for c in reference.columns if c not in CATEGORICAL],
        categorical_columns=CATEGORICAL,
    )
    snapshot = Report([DataDriftPreset()]).run(
        current_data=Dataset.from_pandas(current.sample(rows, random_state=0), definition),
        reference_data=Dataset.from_pandas(reference.sample(rows, random_state=0), definition),
    )
    counts = [m for m in snapshot.dict()["metrics"] if m["metric_name"].startswith("Drifted")]
    return float(counts[0]["value"]["share"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    number = lambda s: int(s.replace("_", ""))  # noqa: E731
    parser.add_argument("--rows", type=number, default=1_000_000)
    parser.add_argument("--reference", type=number, default=200_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="Print one JSON document.")
    args = parser.parse_args()

    started = time.perf_counter()
    reference = make_table(args.reference, seed=1, shifted=False)
    current = make_table(args.rows, seed=2, shifted=True)
    generate_s = time.perf_counter() - started
    options = {"categorical": CATEGORICAL}
    started = time.perf_counter()
    compare_tables(reference.iloc[:2_000], current.iloc[:2_000], **options)  # imports
    warm_up_s = time.perf_counter() - started

    def chunks():
        return compare_tables(reference, current, chunk_size=100_000, **options)

    def one_chunk():
        return compare_tables(reference, current, **options)

    runs = []

    def record(task: str, chunk_count: int, seconds: float, what: str, result=None, target=True):
        row = {
            "task": task,
            "rows": args.rows,
            "chunks": chunk_count,
            "seconds": seconds,
            "target_s": TARGET_S if target else None,
            "within_target": seconds <= TARGET_S if target else None,
            "what": what,
        }
        if result is not None:
            row["drifted_chunks"] = sum(c.dataset_drift for c in result.chunks)
            row["drift_share"] = [round(c.drift_share, 3) for c in result.chunks][:3]
        runs.append(row)

    seconds, result = median_seconds(chunks, args.repeat)
    record("chunks", len(result.chunks), seconds, "10 x 100k vs ref sampled to 50k", result)
    seconds, result = median_seconds(one_chunk, args.repeat)
    record("one chunk", 1, seconds, "1M sampled to 100k vs ref sampled to 50k", result)

    with tempfile.TemporaryDirectory() as tmp:
        from liftgate.core.tables import read_table

        paths = {"reference": Path(tmp) / "ref.parquet", "current": Path(tmp) / "cur.parquet"}
        reference.to_parquet(paths["reference"])
        current.to_parquet(paths["current"])

        def from_parquet():
            names = list(reference.columns)
            frames = [read_table(p, {}, names).to_pandas() for p in paths.values()]
            return compare_tables(*frames, chunk_size=100_000, **options)

        seconds, result = median_seconds(from_parquet, args.repeat)
        record("parquet + chunks", len(result.chunks), seconds, "read both + 10 x 100k", result)

    seconds, share = median_seconds(lambda: evidently_sample(reference, current, 10_000), 1)
    record("evidently 10k", 1, seconds, "Report([DataDriftPreset()]) on 10k samples", None, False)
    runs[-1]["rows"] = 10_000
    runs[-1]["drift_share"] = [round(share, 3)]
    seconds, p_values = median_seconds(lambda: scipy_full(reference, current), 1)
    record("scipy full", 1, seconds, "ks_2samp / chi2 on all rows", None, False)
    runs[-1]["drifted_columns_p<0.05"] = sum(p < 0.05 for p in p_values.values())

    document = {
        "rows": args.rows,
        "reference_rows": args.reference,
        "columns": reference.shape[1],
        "repeat": args.repeat,
        "generate_s": generate_s,
        "warm_up_s": warm_up_s,
        "runs": runs,
    }
    if args.json:
        sys.stdout.write(json.dumps(document) + "\n")
        return
    print(
        f"current {args.rows:,} rows, reference {args.reference:,} rows, "
        f"{reference.shape[1]} columns (10 numerical, 5 categorical); median of {args.repeat} "
        f"run(s); warm-up (Evidently import) {warm_up_s:.1f} s"
    )
    print(f"{'task':<18}{'rows':>11}{'chunks':>8}{'seconds':>9}{'target':>8}  ok    what")
    for r in runs:
        target = "-" if r["target_s"] is None else f"{r['target_s']:.0f}"
        ok = "-" if r["within_target"] is None else "PASS" if r["within_target"] else "FAIL"
        extra = ""
        if "drift_share" in r:
            extra = f"; drift share {r['drift_share']}"
        if "drifted_columns_p<0.05" in r:
            extra = f"; {r['drifted_columns_p<0.05']}/15 columns p < 0.05"
        print(
            f"{r['task']:<18}{r['rows']:>11,}{r['chunks']:>8}{r['seconds']:>9.2f}{target:>8}  "
            f"{ok:<5} {r['what']}{extra}"
        )


if __name__ == "__main__":
    main()
