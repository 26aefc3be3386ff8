"""Tests for the decision and outcome logs (experiments/logs.py)."""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.logs import (
    DECISION_SCHEMA,
    OUTCOME_SCHEMA,
    LogWriter,
    decision_log_dir,
    decisions_with_outcomes,
    join_outcomes,
    orphan_outcomes,
    outcome_log_dir,
    read_decisions,
    read_outcomes,
)

NOON = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)


def make_decision(decision_id: str, ts: dt.datetime = NOON, **overrides: Any) -> dict[str, Any]:
    record = {
        "decision_id": decision_id,
        "ts": ts,
        "customer_id": f"customer-{decision_id}",
        "features": [0.5, 1.0, -2.0],
        "contract_version": "features-v1",
        "actions": ["email", "sms", "none"],
        "scores": [3.0, 1.5, 0.0],
        "probabilities": [0.12, 0.08, 0.01],
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
        "trace_id": f"trace-{decision_id}",
        "request_id": None,
    }
    return record | overrides


def make_outcome(
    outcome_id: str,
    decision_id: str,
    ts: dt.datetime,
    event: str = "conversion",
    value: float = 1.0,
) -> dict[str, Any]:
    return {
        "outcome_id": outcome_id,
        "decision_id": decision_id,
        "ts": ts,
        "event": event,
        "value": value,
        "received_ts": ts + dt.timedelta(seconds=1),
        "known_decision": True,
    }


def decision_writer(home: Path, **options: Any) -> LogWriter:
    return LogWriter(decision_log_dir(home), DECISION_SCHEMA, **options)


def read_ids(home: Path) -> list[str]:
    return read_decisions(decision_log_dir(home))["decision_id"].to_pylist()


def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_appended_records_are_all_read_back_after_close(tmp_path: Path) -> None:
    ids = [f"d{i}" for i in range(1_000)]
    with decision_writer(tmp_path) as writer:
        for decision_id in ids:
            writer.append(make_decision(decision_id))

    table = read_decisions(decision_log_dir(tmp_path))
    assert sorted(table["decision_id"].to_pylist()) == sorted(ids)
    assert table.schema == DECISION_SCHEMA
    assert table.slice(0, 1).to_pylist()[0] == make_decision(table["decision_id"][0].as_py())


def test_flushes_when_max_rows_are_buffered(tmp_path: Path) -> None:
    writer = decision_writer(tmp_path, max_rows=10, max_age_s=3600)
    for i in range(25):
        writer.append(make_decision(f"d{i}"))

    assert len(read_ids(tmp_path)) == 20
    assert writer.buffered_rows == 5
    assert len(list(decision_log_dir(tmp_path).rglob("part-*.parquet"))) == 2
    writer.close()
    assert len(read_ids(tmp_path)) == 25


def test_background_thread_flushes_by_age_without_further_appends(tmp_path: Path) -> None:
    writer = decision_writer(tmp_path, max_age_s=0.05).start()
    try:
        writer.append(make_decision("d0"))
        writer.append(make_decision("d1"))
        assert wait_until(lambda: len(read_ids(tmp_path)) == 2)
        assert writer.buffered_rows == 0
        # A second batch after a quiet period is flushed too.
        writer.append(make_decision("d2"))
        assert wait_until(lambda: len(read_ids(tmp_path)) == 3)
    finally:
        writer.close()


def test_append_flushes_by_age_without_background_thread(tmp_path: Path) -> None:
    writer = decision_writer(tmp_path, max_age_s=0.02)
    writer.append(make_decision("d0"))
    time.sleep(0.05)
    writer.append(make_decision("d1"))

    assert sorted(read_ids(tmp_path)) == ["d0", "d1"]
    writer.close()


def test_rows_are_partitioned_by_utc_date_across_midnight(tmp_path: Path) -> None:
    midnight = dt.datetime(2024, 5, 2, tzinfo=dt.UTC)
    before = midnight - dt.timedelta(microseconds=100)
    # 01:30 in UTC+2 is still May 1st in UTC.
    after_in_berlin = (midnight + dt.timedelta(hours=1)).astimezone(
        dt.timezone(dt.timedelta(hours=2))
    )
    with decision_writer(tmp_path) as writer:
        writer.append(make_decision("late", before))
        writer.append(make_decision("early", midnight))
        writer.append(make_decision("berlin", after_in_berlin))

    log_dir = decision_log_dir(tmp_path)
    assert sorted(path.name for path in log_dir.iterdir()) == ["date=2024-05-01", "date=2024-05-02"]
    first_day = pq.read_table(next((log_dir / "date=2024-05-01").glob("part-*.parquet")))
    assert first_day["decision_id"].to_pylist() == ["late"]
    assert read_decisions(log_dir, start=midnight)["decision_id"].to_pylist() == [
        "early",
        "berlin",
    ]
    assert read_decisions(log_dir, end=midnight)["decision_id"].to_pylist() == ["late"]


def test_concurrent_writers_and_threads_lose_nothing_and_duplicate_nothing(
    tmp_path: Path,
) -> None:
    # Two writers on one directory (as two replicas would be), each shared by two threads.
    writers = [decision_writer(tmp_path, max_rows=97, max_age_s=0.01).start() for _ in range(2)]
    per_thread = 2_000

    def append_many(writer: LogWriter, thread_number: int) -> None:
        for i in range(per_thread):
            writer.append(make_decision(f"t{thread_number}-{i}"))

    threads = [threading.Thread(target=append_many, args=(writers[n % 2], n)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for writer in writers:
        writer.close()

    ids = read_ids(tmp_path)
    assert len(ids) == 4 * per_thread
    assert set(ids) == {f"t{n}-{i}" for n in range(4) for i in range(per_thread)}


def test_close_is_idempotent_and_flushes(tmp_path: Path) -> None:
    writer = decision_writer(tmp_path).start()
    writer.append(make_decision("d0"))
    writer.close()
    writer.close()

    assert read_ids(tmp_path) == ["d0"]
    with pytest.raises(RuntimeError, match="closed"):
        writer.append(make_decision("d1"))


def test_temporary_files_are_never_read_nor_left_behind(tmp_path: Path) -> None:
    with decision_writer(tmp_path) as writer:
        writer.append(make_decision("d0"))
    partition = decision_log_dir(tmp_path) / "date=2024-05-01"
    assert [path.name for path in partition.iterdir() if not path.name.startswith("part-")] == []

    # A writer killed mid-flush leaves its temp file behind; readers must skip it.
    (partition / ".part-crashed.parquet.tmp").write_bytes(b"half a parquet file")
    (partition / "_part-crashed.parquet").write_bytes(b"half a parquet file")
    assert read_ids(tmp_path) == ["d0"]


def test_failed_write_keeps_rows_buffered_until_a_flush_succeeds(tmp_path: Path) -> None:
    log_dir = decision_log_dir(tmp_path)
    log_dir.parent.mkdir(parents=True)
    log_dir.write_text("a file where the log directory should be")
    writer = decision_writer(tmp_path)
    writer.append(make_decision("d0"))

    with pytest.raises(OSError):
        writer.flush()
    assert writer.buffered_rows == 1

    log_dir.unlink()
    writer.append(make_decision("d1"))
    writer.close()
    assert sorted(read_ids(tmp_path)) == ["d0", "d1"]


def test_row_with_bad_list_element_is_dropped_and_logged_others_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR), decision_writer(tmp_path) as writer:
        writer.append(make_decision("good"))
        writer.append(make_decision("bad", features=[1.0, "not a number"]))

    assert read_ids(tmp_path) == ["good"]
    assert "'bad'" in caplog.text


@pytest.mark.parametrize("field", ["decision_id", "ts", "chosen", "propensity", "fallback"])
def test_record_missing_a_required_field_is_rejected_naming_it(tmp_path: Path, field: str) -> None:
    record = make_decision("d0")
    del record[field]
    with pytest.raises(ValueError, match=repr(field)):
        decision_writer(tmp_path).append(record)


def test_nullable_fields_may_be_omitted(tmp_path: Path) -> None:
    record = make_decision("d0")
    for field in ["experiment", "arm", "fallback_reason", "request_id"]:
        del record[field]
    with decision_writer(tmp_path) as writer:
        writer.append(record)
    assert read_decisions(decision_log_dir(tmp_path))["experiment"].to_pylist() == [None]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"propensity": "0.9"}, "'propensity'"),
        ({"features": 1.0}, "'features'"),
        ({"ts": dt.datetime(2024, 5, 1, 12)}, "timezone-aware"),
        ({"chosen_action": "email"}, "unknown fields \\['chosen_action'\\]"),
    ],
)
def test_record_that_does_not_fit_the_schema_is_rejected(
    tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    writer = decision_writer(tmp_path)
    with pytest.raises(ValueError, match=message):
        writer.append(make_decision("d0", **overrides))
    assert writer.buffered_rows == 0


def test_missing_or_empty_dirs_read_as_empty_tables_with_the_schema(tmp_path: Path) -> None:
    assert read_decisions(tmp_path / "nowhere").schema == DECISION_SCHEMA
    decision_log_dir(tmp_path).mkdir(parents=True)
    decisions = read_decisions(decision_log_dir(tmp_path))
    outcomes = read_outcomes(outcome_log_dir(tmp_path))

    assert (decisions.num_rows, decisions.schema) == (0, DECISION_SCHEMA)
    assert (outcomes.num_rows, outcomes.schema) == (0, OUTCOME_SCHEMA)
    assert decisions_with_outcomes(tmp_path).num_rows == 0


def _tables(
    decisions: list[dict[str, Any]], outcomes: list[dict[str, Any]]
) -> tuple[pa.Table, pa.Table]:
    return (
        pa.Table.from_pylist(decisions, schema=DECISION_SCHEMA),
        pa.Table.from_pylist(outcomes, schema=OUTCOME_SCHEMA),
    )


JOIN_COLUMNS = ["converted", "revenue", "n_outcomes", "first_outcome_ts"]


def joined_row(
    decision_id: str, converted: bool, revenue: float, n_outcomes: int, first: dt.datetime | None
) -> dict[str, Any]:
    values = [decision_id, converted, revenue, n_outcomes, first]
    return dict(zip(["decision_id", *JOIN_COLUMNS], values, strict=True))


def test_join_attributes_outcomes_within_the_window_only() -> None:
    minute = dt.timedelta(minutes=1)
    decisions, outcomes = _tables(
        [make_decision("late"), make_decision("converted"), make_decision("quiet")],
        [
            make_outcome("o1", "converted", NOON + 5 * minute),
            make_outcome("o2", "converted", NOON + 6 * minute, "revenue", 20.0),
            make_outcome("o3", "converted", NOON + 7 * minute, "revenue", 5.5),
            make_outcome("o4", "converted", NOON + 120 * minute, "revenue", 1_000.0),
            make_outcome("o5", "late", NOON + 90 * minute),
            make_outcome("o6", "ghost", NOON + minute),
        ],
    )

    joined = join_outcomes(decisions, outcomes, window_s=3600)

    assert joined.column_names == [*DECISION_SCHEMA.names, *JOIN_COLUMNS]
    assert joined.select(["decision_id", *JOIN_COLUMNS]).to_pylist() == [
        joined_row("late", False, 0.0, 0, None),
        joined_row("converted", True, 25.5, 3, NOON + 5 * minute),
        joined_row("quiet", False, 0.0, 0, None),
    ]
    assert join_outcomes(decisions, outcomes).select(
        ["decision_id", *JOIN_COLUMNS]
    ).to_pylist() == [
        joined_row("late", True, 0.0, 1, NOON + 90 * minute),
        joined_row("converted", True, 1_025.5, 4, NOON + 5 * minute),
        joined_row("quiet", False, 0.0, 0, None),
    ]


def test_orphan_outcomes_are_those_without_a_decision() -> None:
    decisions, outcomes = _tables(
        [make_decision("d1")],
        [make_outcome("o1", "d1", NOON), make_outcome("o2", "ghost", NOON)],
    )
    assert orphan_outcomes(decisions, outcomes)["outcome_id"].to_pylist() == ["o2"]
    assert join_outcomes(decisions, outcomes)["n_outcomes"].to_pylist() == [1]


def test_decisions_with_outcomes_reads_both_logs(tmp_path: Path) -> None:
    with decision_writer(tmp_path) as decisions:
        decisions.append(make_decision("d1"))
        decisions.append(make_decision("d2"))
    with LogWriter(outcome_log_dir(tmp_path), OUTCOME_SCHEMA) as outcomes:
        outcomes.append(make_outcome("o1", "d2", NOON + dt.timedelta(seconds=30)))

    joined = decisions_with_outcomes(tmp_path, window_s=60)
    rows = joined.select(["decision_id", "converted"]).to_pylist()
    assert sorted(rows, key=lambda r: r["decision_id"]) == [
        {"decision_id": "d1", "converted": False},
        {"decision_id": "d2", "converted": True},
    ]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.one_of(st.integers(min_value=1, max_value=7), st.just("flush")), max_size=12))
def test_any_interleaving_of_appends_and_flushes_yields_the_appended_ids(
    operations: list[int | str],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        appended: list[str] = []
        with decision_writer(home, max_rows=5, max_age_s=3600) as writer:
            for operation in operations:
                if operation == "flush":
                    writer.flush()
                    continue
                for _ in range(operation):
                    appended.append(f"d{len(appended)}")
                    writer.append(make_decision(appended[-1]))
        assert sorted(read_ids(home)) == sorted(appended)
