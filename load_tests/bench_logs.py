"""How much the decision log costs on the request path, and how fast it flushes.

Run: ``.venv/bin/python load_tests/bench_logs.py [--rows 50000]``

Prints one table. ``append`` rows are the µs per ``LogWriter.append`` call as a request
handler sees it (validation + buffering), with the background flusher writing meanwhile,
as in serving. ``flush`` rows time ``LogWriter.flush()`` of the buffered rows
(Python rows -> Arrow -> one Parquet file, fsync, rename). The floor is a bare
``pq.write_table`` of the same rows pre-built as an Arrow table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from experiments.logs import DECISION_SCHEMA, LogWriter, decision_log_dir

NEVER = float("inf")


def make_decisions(count: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    start = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
    return [
        {
            "decision_id": f"decision-{i:012d}",
            "ts": start + dt.timedelta(milliseconds=i),
            "customer_id": f"customer-{i % 10_000}",
            "features": rng.normal(size=16).tolist(),
            "contract_version": "features-v1",
            "actions": ["email", "sms", "push", "none"],
            "scores": [3.0, 1.5, 0.7, 0.0],
            "probabilities": [0.12, 0.08, 0.05, 0.01],
            "chosen": "email",
            "propensity": 0.9,
            "policy": "epsilon_greedy",
            "model_name": "uplift",
            "model_version": "7",
            "model_alias": "champion",
            "experiment": "spring-promo",
            "arm": "treatment",
            "fallback": False,
            "fallback_reason": None,
            "cold_start": False,
            "latency_ms": 3.2,
            "trace_id": f"trace-{i}",
            "request_id": None,
        }
        for i in range(count)
    ]


def time_appends(records: list[dict[str, Any]], writer: LogWriter) -> np.ndarray:
    """µs per append call, then closes the writer."""
    durations_us = []
    with writer:
        for record in records:
            began = time.perf_counter_ns()
            writer.append(record)
            durations_us.append((time.perf_counter_ns() - began) / 1_000)
    return np.array(durations_us)


def time_flush(records: list[dict[str, Any]], home: Path) -> float:
    """Seconds for one LogWriter.flush() of all records."""
    # Limits the appends below never reach, so the timed flush writes all of them.
    writer = LogWriter(
        decision_log_dir(home), DECISION_SCHEMA, max_rows=len(records) + 1, max_age_s=NEVER
    )
    for record in records:
        writer.append(record)
    began = time.perf_counter()
    writer.flush()
    elapsed = time.perf_counter() - began
    writer.close()
    return elapsed


def time_bare_write(records: list[dict[str, Any]], home: Path) -> float:
    """Seconds for pq.write_table of the same rows, pre-built as an Arrow table."""
    table = pa.Table.from_pylist(records, schema=DECISION_SCHEMA)
    began = time.perf_counter()
    pq.write_table(table, home / "bare.parquet")
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument(
        "--repeats", type=int, default=5, help="flush timings to take the median of"
    )
    args = parser.parse_args()
    records = make_decisions(args.rows)

    with tempfile.TemporaryDirectory() as tmp:
        # As in serving: default limits, the flusher thread writing while requests append.
        serving_writer = LogWriter(decision_log_dir(Path(tmp) / "serving"), DECISION_SCHEMA)
        append_us = time_appends(records, serving_writer.start())
        # Validation and buffering alone: nothing is flushed while timing.
        buffering_writer = LogWriter(
            decision_log_dir(Path(tmp) / "buffering"),
            DECISION_SCHEMA,
            max_rows=args.rows + 1,
            max_age_s=NEVER,
        )
        buffer_only_us = time_appends(records, buffering_writer)
        flush_batch = records[:5_000]  # the default max_rows
        flush_s = statistics.median(
            time_flush(flush_batch, Path(tmp) / f"flush{i}") for i in range(args.repeats)
        )
        bare_s = statistics.median(
            time_bare_write(flush_batch, Path(tmp)) for _ in range(args.repeats)
        )

    print(f"decision log, {args.rows:,} appends; flushes of {len(flush_batch):,} rows")
    print(f"{'measure':<44}{'value':>14}")
    for label, durations_us in [
        ("append µs, flusher thread on", append_us),
        ("append µs, no flush", buffer_only_us),
    ]:
        for statistic, value in [
            ("mean", durations_us.mean()),
            ("p50", np.percentile(durations_us, 50)),
            ("p99", np.percentile(durations_us, 99)),
            ("p99.9", np.percentile(durations_us, 99.9)),
        ]:
            print(f"{label + ', ' + statistic:<44}{value:>14.2f}")
    print(f"{'LogWriter.flush rows/s':<44}{len(flush_batch) / flush_s:>14,.0f}")
    print(f"{'floor: pq.write_table of built table rows/s':<44}{len(flush_batch) / bare_s:>14,.0f}")
    print(f"{'flush ms per 5,000-row file (median)':<44}{flush_s * 1_000:>14.1f}")


if __name__ == "__main__":
    main()
