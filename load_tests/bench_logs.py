"""How much the decision log costs on the request path, and how fast it flushes.

Run: ``.venv/bin/python load_tests/bench_logs.py [--rows 50000]``

Prints one table. ``append`` rows are the µs per ``LogWriter.append`` call as a request
handler sees it (checks, the record's frame written to the write-ahead segment, buffering;
the fsync a request then waits for is measured by ``bench_decide.py --fsync``), with the
background flusher writing meanwhile,
as in serving; ``build + append`` rows also build the ``DecisionRecord`` in the timed
call, as the decision service does. ``flush`` rows time ``LogWriter.flush()`` of the
buffered records (records -> Arrow -> one Parquet file, fsync, rename, directory fsync,
segment deleted). The floor is a
bare ``pq.write_table`` of the same rows pre-built as an Arrow table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from experiments.logs.schema import DecisionRecord, to_table
from experiments.logs.writer import LogWriter
from liftgate.core.home import Home

NEVER = float("inf")
START = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)


def feature_vectors(count: int) -> list[list[float]]:
    return np.random.default_rng(0).normal(size=(count, 16)).tolist()


def make_decision(i: int, features: list[float]) -> DecisionRecord:
    return DecisionRecord(
        decision_id=f"decision-{i:012d}",
        ts=START + dt.timedelta(milliseconds=i),
        customer_id=f"customer-{i % 10_000}",
        features=features,
        contract_version="features-v1",
        actions=["email", "sms", "push", "none"],
        scores=[3.0, 1.5, 0.7, 0.0],
        probabilities=[0.12, 0.08, 0.05, 0.01],
        chosen="email",
        propensity=0.9,
        policy="epsilon_greedy",
        model_name="uplift",
        model_version="7",
        model_alias="champion",
        experiment="spring-promo",
        arm="treatment",
        fallback=False,
        fallback_reason=None,
        cold_start=False,
        latency_ms=3.2,
        trace_id=f"trace-{i}",
        request_id=None,
    )


def time_appends(records: list[DecisionRecord], writer: LogWriter) -> np.ndarray:
    """µs per append call, then closes the writer."""
    durations_us = []
    with writer:
        for record in records:
            began = time.perf_counter_ns()
            writer.append(record)
            durations_us.append((time.perf_counter_ns() - began) / 1_000)
    return np.array(durations_us)


def time_built_appends(features: list[list[float]], writer: LogWriter) -> np.ndarray:
    """µs per record built and appended, then closes the writer."""
    durations_us = []
    with writer:
        for i, vector in enumerate(features):
            began = time.perf_counter_ns()
            writer.append(make_decision(i, vector))
            durations_us.append((time.perf_counter_ns() - began) / 1_000)
    return np.array(durations_us)


def buffering_writer(directory: Path, rows: int) -> LogWriter:
    """Limits the appends never reach: nothing is flushed while timing."""
    return LogWriter(
        directory, DecisionRecord, max_rows=rows + 1, max_age_s=NEVER, max_buffered_rows=rows + 1
    )


def time_flush(records: list[DecisionRecord], home: Home) -> float:
    """Seconds for one LogWriter.flush() of all records."""
    writer = buffering_writer(home.decision_log, len(records))
    for record in records:
        writer.append(record)
    began = time.perf_counter()
    writer.flush()
    elapsed = time.perf_counter() - began
    writer.close()
    return elapsed


def time_bare_write(records: list[DecisionRecord], directory: Path) -> float:
    """Seconds for pq.write_table of the same rows, pre-built as an Arrow table."""
    table = to_table(DecisionRecord, records)
    began = time.perf_counter()
    pq.write_table(table, directory / "bare.parquet")
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument(
        "--repeats", type=int, default=5, help="flush timings to take the median of"
    )
    args = parser.parse_args()
    features = feature_vectors(args.rows)
    records = [make_decision(i, vector) for i, vector in enumerate(features)]

    with tempfile.TemporaryDirectory() as tmp:
        # As in serving: default limits, the flusher thread writing while requests append.
        serving_writer = LogWriter(Home(Path(tmp) / "serving").decision_log, DecisionRecord)
        append_us = time_appends(records, serving_writer.start())
        buffer_only_us = time_appends(records, buffering_writer(Path(tmp) / "a", args.rows))
        built_us = time_built_appends(features, buffering_writer(Path(tmp) / "b", args.rows))
        flush_batch = records[:5_000]  # the default max_rows
        flush_s = statistics.median(
            time_flush(flush_batch, Home(Path(tmp) / f"flush{i}")) for i in range(args.repeats)
        )
        bare_s = statistics.median(
            time_bare_write(flush_batch, Path(tmp)) for _ in range(args.repeats)
        )

    print(f"decision log, {args.rows:,} appends; flushes of {len(flush_batch):,} rows")
    print(f"{'measure':<44}{'value':>14}")
    for label, durations_us in [
        ("append µs, flusher thread on", append_us),
        ("append µs, no flush", buffer_only_us),
        ("build + append µs, no flush", built_us),
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
