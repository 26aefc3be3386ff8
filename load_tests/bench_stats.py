"""Benchmark the statistics engine on a Parquet file of units against a bare group-by floor.

    .venv/bin/python load_tests/bench_stats.py [--rows 10_000_000] [--repeat 3] [--json]

Writes ``--rows`` units (arm, converted, revenue, pre_revenue; two arms, 50/50) to a
temporary Parquet file, then times, as the median of ``--repeat`` runs:

- floor: ``pyarrow.parquet.read_table`` + a bare ``group_by("arm")`` of count and sums;
- ours: the same read + ``analyze`` once per method (frequentist, sequential, bayesian),
  each aggregating the table again and running SRM, CUPED (covariate pre_revenue) and the
  Holm correction over three metrics (conversion, revenue, revenue per converter).

Also prints the split of ``ours`` into read, one ``aggregate`` and the O(1) tests. Target:
ours <= 2 s for 10 M rows.
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
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments.stats import MetricSpec, aggregate, analyze, analyze_statistics  # noqa: E402

METRICS = [
    MetricSpec("conversion", "converted", "binomial"),
    MetricSpec("revenue", "revenue", "mean", covariate_column="pre_revenue"),
    MetricSpec("revenue_per_converter", "revenue", "ratio", denominator_column="converted"),
]
METHODS = ("frequentist", "sequential", "bayesian")
WEIGHTS = {"control": 0.5, "treatment": 0.5}
TARGET_S = 2.0


def write_units(path: Path, rows: int, seed: int = 0, chunk: int = 2_000_000) -> None:
    """Write ``rows`` synthetic units in chunks; treatment lifts conversion by 2 %."""
    rng = np.random.default_rng(seed)
    labels = pa.array(["control", "treatment"])
    schema = pa.schema(
        [
            ("arm", pa.string()),
            ("converted", pa.int8()),
            ("revenue", pa.float64()),
            ("pre_revenue", pa.float64()),
        ]
    )
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            treated = rng.random(n) < 0.5
            pre = rng.gamma(2.0, 10.0, n)
            converted = rng.random(n) < (0.05 + 0.006 * pre) * (1.0 + 0.02 * treated)
            revenue = converted * (2.0 * pre + rng.gamma(2.0, 5.0, n))
            batch = pa.table(
                {
                    "arm": labels.take(pa.array(treated.astype(np.int8))),
                    "converted": converted.astype(np.int8),
                    "revenue": revenue,
                    "pre_revenue": pre,
                },
                schema=schema,
            )
            writer.write_table(batch)


def floor(path: Path) -> pa.Table:
    t = pq.read_table(path)
    return t.group_by("arm").aggregate(
        [([], "count_all"), ("converted", "sum"), ("revenue", "sum"), ("pre_revenue", "sum")]
    )


def ours(path: Path) -> list[dict]:
    t = pq.read_table(path)
    return [
        analyze(t, "arm", "control", METRICS, method=m, weights=WEIGHTS, correction="holm")
        for m in METHODS
    ]


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=lambda s: int(s.replace("_", "")), default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "units.parquet"
        t0 = time.perf_counter()
        write_units(path, args.rows)
        write_s = time.perf_counter() - t0
        size_mb = path.stat().st_size / 1e6

        floor_s, _ = timed(lambda: floor(path), args.repeat)
        ours_s, reports = timed(lambda: ours(path), args.repeat)
        read_s, table = timed(lambda: pq.read_table(path), args.repeat)
        agg_s, stats = timed(lambda: aggregate(table, "arm", METRICS), args.repeat)
        tests_s, _ = timed(
            lambda: [analyze_statistics(stats, "control", METRICS, m, WEIGHTS) for m in METHODS],
            args.repeat,
        )

    freq = reports[0]
    summary = {
        "rows": args.rows,
        "parquet_mb": round(size_mb, 1),
        "write_s": round(write_s, 3),
        "floor_s": round(floor_s, 3),
        "ours_s": round(ours_s, 3),
        "ratio": round(ours_s / floor_s, 2),
        "target_s": TARGET_S,
        "within_target": ours_s <= TARGET_S,
        "breakdown_s": {
            "read": round(read_s, 3),
            "aggregate_once": round(agg_s, 3),
            "tests_all_methods": round(tests_s, 4),
        },
        "srm_p_value": freq["srm"]["p_value"],
        "revenue_variance_reduction": next(
            r["variance_reduction"] for r in freq["results"] if r["metric"] == "revenue"
        ),
    }
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"rows {args.rows:,}  parquet {size_mb:.1f} MB  (median of {args.repeat})")
    print(f"{'step':<58}{'seconds':>10}")
    print(f"{'floor: read + bare group_by (count, 3 sums)':<58}{floor_s:>10.3f}")
    print(f"{'ours:  read + analyze x 3 methods (SRM, CUPED, Holm)':<58}{ours_s:>10.3f}")
    print(f"{'ratio ours / floor':<58}{ours_s / floor_s:>10.2f}")
    print(f"{'  of which: read':<58}{read_s:>10.3f}")
    print(f"{'  of which: one aggregate (one group_by, 3 metrics)':<58}{agg_s:>10.3f}")
    print(f"{'  of which: all tests, 3 methods, from statistics':<58}{tests_s:>10.4f}")
    verdict = "within" if ours_s <= TARGET_S else "OVER"
    print(f"target ours <= {TARGET_S:.1f} s: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
