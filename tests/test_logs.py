"""Tests for the decision and outcome logs (experiments/logs/): records and schemas, the
writer, reading and the join."""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from log_records import NOON, make_decision  # tests/, beside this file

from experiments.logs.reader import (
    decisions_with_outcomes,
    find_decision,
    join_outcomes,
    orphan_outcomes,
    read_decisions,
    read_outcomes,
)
from experiments.logs.schema import (
    DECISION_SCHEMA,
    OUTCOME_SCHEMA,
    DecisionRecord,
    OutcomeRecord,
    from_table,
    to_table,
)
from experiments.logs.writer import LogWriter
from liftgate.core.home import Home

#: The schemas as they were written by hand before the records existed: the logs on disk.
PREVIOUS_DECISION_SCHEMA = pa.schema(
    [
        pa.field("decision_id", pa.string(), nullable=False),
        pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("customer_id", pa.string(), nullable=False),
        pa.field("features", pa.list_(pa.float64()), nullable=False),
        pa.field("contract_version", pa.string(), nullable=False),
        pa.field("actions", pa.list_(pa.string()), nullable=False),
        pa.field("scores", pa.list_(pa.float64()), nullable=False),
        pa.field("probabilities", pa.list_(pa.float64()), nullable=False),
        pa.field("chosen", pa.string(), nullable=False),
        pa.field("propensity", pa.float64(), nullable=False),
        pa.field("policy", pa.string(), nullable=False),
        pa.field("model_name", pa.string(), nullable=False),
        pa.field("model_version", pa.string(), nullable=False),
        pa.field("model_alias", pa.string(), nullable=False),
        pa.field("experiment", pa.string(), nullable=True),
        pa.field("arm", pa.string(), nullable=True),
        pa.field("fallback", pa.bool_(), nullable=False),
        pa.field("fallback_reason", pa.string(), nullable=True),
        pa.field("cold_start", pa.bool_(), nullable=False),
        pa.field("latency_ms", pa.float64(), nullable=False),
        pa.field("trace_id", pa.string(), nullable=False),
        pa.field("request_id", pa.string(), nullable=True),
    ]
)
PREVIOUS_OUTCOME_SCHEMA = pa.schema(
    [
        pa.field("outcome_id", pa.string(), nullable=False),
        pa.field("decision_id", pa.string(), nullable=False),
        pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("event", pa.string(), nullable=False),
        pa.field("value", pa.float64(), nullable=False),
        pa.field("received_ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("known_decision", pa.bool_(), nullable=False),
    ]
)


def make_outcome(
    outcome_id: str,
    decision_id: str,
    ts: dt.datetime,
    event: str = "conversion",
    value: float = 1.0,
) -> OutcomeRecord:
    return OutcomeRecord(
        outcome_id=outcome_id,
        decision_id=decision_id,
        ts=ts,
        event=event,
        value=value,
        received_ts=ts + dt.timedelta(seconds=1),
        known_decision=True,
    )


def decision_writer(root: Path, **options: Any) -> LogWriter[DecisionRecord]:
    return LogWriter(Home(root).decision_log, DecisionRecord, **options)


def read_ids(root: Path) -> list[str]:
    return read_decisions(Home(root).decision_log)["decision_id"].to_pylist()


def test_appended_records_are_all_read_back_after_close(tmp_path: Path) -> None:
    ids = [f"d{i}" for i in range(1_000)]
    with decision_writer(tmp_path) as writer:
        for decision_id in ids:
            writer.append(make_decision(decision_id))

    table = read_decisions(Home(tmp_path).decision_log)
    assert sorted(table["decision_id"].to_pylist()) == sorted(ids)
    assert table.schema == DECISION_SCHEMA
    assert from_table(DecisionRecord, table.slice(0, 1)) == [
        make_decision(table["decision_id"][0].as_py())
    ]


def test_schemas_derived_from_the_records_are_the_ones_written_before() -> None:
    assert DECISION_SCHEMA.equals(PREVIOUS_DECISION_SCHEMA, check_metadata=True)
    assert OUTCOME_SCHEMA.equals(PREVIOUS_OUTCOME_SCHEMA, check_metadata=True)


def test_records_round_trip_through_parquet(tmp_path: Path) -> None:
    home = Home(tmp_path)
    berlin = dt.timezone(dt.timedelta(hours=2))
    decisions = [
        make_decision("d1"),
        make_decision("d2", NOON.astimezone(berlin), experiment=None, arm=None, request_id="r2"),
        make_decision("d3", fallback=True, fallback_reason="scoring_timeout", features=[]),
    ]
    outcomes = [make_outcome("o1", "d1", NOON), make_outcome("o2", "d2", NOON, "revenue", 9.5)]
    with LogWriter(home.decision_log, DecisionRecord) as writer:
        for decision in decisions:
            writer.append(decision)
    with LogWriter(home.outcome_log, OutcomeRecord) as writer:
        for outcome in outcomes:
            writer.append(outcome)

    read_back = from_table(DecisionRecord, read_decisions(home.decision_log))
    assert sorted(read_back, key=lambda record: record.decision_id) == decisions
    assert from_table(OutcomeRecord, read_outcomes(home.outcome_log)) == outcomes
    assert find_decision(home.decision_log, "d2") == decisions[1]
    assert find_decision(home.decision_log, "ghost") is None


def test_a_log_written_with_the_previous_schema_still_reads(tmp_path: Path) -> None:
    home = Home(tmp_path)
    decision, outcome = make_decision("old"), make_outcome("o-old", "old", NOON)
    for directory, record, schema in [
        (home.decision_log, decision, PREVIOUS_DECISION_SCHEMA),
        (home.outcome_log, outcome, PREVIOUS_OUTCOME_SCHEMA),
    ]:
        (directory / "date=2024-05-01").mkdir(parents=True)
        table = pa.Table.from_pylist([asdict(record)], schema=schema)
        pq.write_table(table, directory / "date=2024-05-01" / "part-previous.parquet")

    assert from_table(DecisionRecord, read_decisions(home.decision_log)) == [decision]
    assert from_table(OutcomeRecord, read_outcomes(home.outcome_log)) == [outcome]
    assert find_decision(home.decision_log, "old") == decision


def test_flushes_when_max_rows_are_buffered(tmp_path: Path) -> None:
    writer = decision_writer(tmp_path, max_rows=10, max_age_s=3600)
    for i in range(25):
        writer.append(make_decision(f"d{i}"))

    assert len(read_ids(tmp_path)) == 20
    assert writer.buffered_rows == 5
    assert len(list(Home(tmp_path).decision_log.rglob("part-*.parquet"))) == 2
    writer.close()
    assert len(read_ids(tmp_path)) == 25


def test_background_thread_flushes_by_age_without_further_appends(
    tmp_path: Path, wait_until: Callable[..., bool]
) -> None:
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
    time.sleep(0.05)  # the behaviour under test: d0 is older than max_age_s at the next append
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

    log_dir = Home(tmp_path).decision_log
    partitions = sorted(path.name for path in log_dir.iterdir() if path.name != "_wal")
    assert partitions == ["date=2024-05-01", "date=2024-05-02"]
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
    partition = Home(tmp_path).decision_log / "date=2024-05-01"
    assert [path.name for path in partition.iterdir() if not path.name.startswith("part-")] == []

    # A writer killed mid-flush leaves its temp file behind; readers must skip it.
    (partition / ".part-crashed.parquet.tmp").write_bytes(b"half a parquet file")
    (partition / "_part-crashed.parquet").write_bytes(b"half a parquet file")
    assert read_ids(tmp_path) == ["d0"]


def test_failed_write_keeps_rows_buffered_until_a_flush_succeeds(tmp_path: Path) -> None:
    partition = Home(tmp_path).decision_log / "date=2024-05-01"
    partition.parent.mkdir(parents=True)
    partition.write_text("a file where the partition directory should be")
    writer = decision_writer(tmp_path)
    writer.append(make_decision("d0"))

    with pytest.raises(OSError):
        writer.flush()
    assert writer.buffered_rows == 1 and not writer.healthy

    partition.unlink()
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
    assert "'bad'" in caplog.text and "'features'" in caplog.text


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"propensity": "0.9"}, "'propensity' does not fit"),
        ({"features": 1.0}, "'features' does not fit"),
        ({"chosen": None}, "'chosen' is required"),
        ({"ts": dt.datetime(2024, 5, 1, 12)}, "'ts' must be timezone-aware"),
    ],
)
def test_record_that_does_not_fit_the_schema_is_dropped_at_flush_naming_the_field(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, overrides: dict[str, Any], message: str
) -> None:
    with caplog.at_level(logging.ERROR), decision_writer(tmp_path) as writer:
        writer.append(make_decision("good"))
        writer.append(make_decision("bad", **overrides))

    assert read_ids(tmp_path) == ["good"]
    assert message in caplog.text and "decision_id='bad'" in caplog.text


@pytest.mark.parametrize("field", ["decision_id", "ts", "chosen", "propensity", "fallback"])
def test_record_missing_a_required_field_is_refused_naming_it(field: str) -> None:
    fields = asdict(make_decision("d0"))
    del fields[field]
    with pytest.raises(TypeError, match=repr(field)):
        DecisionRecord(**fields)


def test_record_with_an_unknown_field_is_refused() -> None:
    with pytest.raises(TypeError, match="'chosen_action'"):
        DecisionRecord(**asdict(make_decision("d0")), chosen_action="email")


def test_appending_another_kind_of_record_is_refused(tmp_path: Path) -> None:
    writer = decision_writer(tmp_path)
    with pytest.raises(TypeError, match="LogWriter for DecisionRecord got a OutcomeRecord"):
        writer.append(make_outcome("o1", "d1", NOON))
    assert writer.buffered_rows == 0


def test_nullable_fields_may_be_omitted(tmp_path: Path) -> None:
    fields = asdict(make_decision("d0"))
    for field in ["experiment", "arm", "fallback_reason", "request_id"]:
        del fields[field]
    with decision_writer(tmp_path) as writer:
        writer.append(DecisionRecord(**fields))
    assert read_decisions(Home(tmp_path).decision_log)["experiment"].to_pylist() == [None]


def test_missing_or_empty_dirs_read_as_empty_tables_with_the_schema(tmp_path: Path) -> None:
    assert read_decisions(tmp_path / "nowhere").schema == DECISION_SCHEMA
    Home(tmp_path).decision_log.mkdir(parents=True)
    decisions = read_decisions(Home(tmp_path).decision_log)
    outcomes = read_outcomes(Home(tmp_path).outcome_log)

    assert (decisions.num_rows, decisions.schema) == (0, DECISION_SCHEMA)
    assert (outcomes.num_rows, outcomes.schema) == (0, OUTCOME_SCHEMA)
    assert decisions_with_outcomes(Home(tmp_path)).num_rows == 0


def _tables(
    decisions: list[DecisionRecord], outcomes: list[OutcomeRecord]
) -> tuple[pa.Table, pa.Table]:
    return to_table(DecisionRecord, decisions), to_table(OutcomeRecord, outcomes)


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
            make_outcome("o4", "late", NOON + 120 * minute, "revenue", 1_000.0),
            make_outcome("o5", "late", NOON + 90 * minute),
            make_outcome("o6", "ghost", NOON + minute),
        ],
    )

    joined = join_outcomes(decisions, outcomes, window_s=3600)

    assert joined.column_names == [*DECISION_SCHEMA.names, *JOIN_COLUMNS]
    assert joined.select(["decision_id", *JOIN_COLUMNS]).to_pylist() == [
        joined_row("late", False, 0.0, 0, None),
        joined_row("converted", True, 20.0, 2, NOON + 5 * minute),
        joined_row("quiet", False, 0.0, 0, None),
    ]
    assert join_outcomes(decisions, outcomes).select(
        ["decision_id", *JOIN_COLUMNS]
    ).to_pylist() == [
        joined_row("late", True, 1_000.0, 2, NOON + 90 * minute),
        joined_row("converted", True, 20.0, 2, NOON + 5 * minute),
        joined_row("quiet", False, 0.0, 0, None),
    ]


def test_join_counts_one_outcome_per_event_and_no_non_finite_value() -> None:
    """Repeats of a (decision, event) in the log (a retry logged again after a crash, two
    replicas at once, a log from before the ledger) count once, the first received; a
    NaN or infinite value (a log from before the API bounded values) never counts."""
    minute = dt.timedelta(minutes=1)
    decisions, outcomes = _tables(
        [make_decision("retried"), make_decision("poisoned")],
        [
            make_outcome("first", "retried", NOON + minute, "revenue", 20.0),
            make_outcome("retry", "retried", NOON + 2 * minute, "revenue", 20.0),
            make_outcome("again", "retried", NOON + 3 * minute, "conversion"),
            make_outcome("twice", "retried", NOON + 4 * minute, "conversion"),
            make_outcome("huge", "poisoned", NOON + minute, "revenue", float("inf")),
            make_outcome("nan", "poisoned", NOON + minute, "conversion", float("nan")),
        ],
    )
    joined = join_outcomes(decisions, outcomes, window_s=3600)
    assert joined.select(["decision_id", *JOIN_COLUMNS]).to_pylist() == [
        joined_row("retried", True, 20.0, 2, NOON + minute),
        joined_row("poisoned", False, 0.0, 0, None),
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
    with LogWriter(Home(tmp_path).outcome_log, OutcomeRecord) as outcomes:
        outcomes.append(make_outcome("o1", "d2", NOON + dt.timedelta(seconds=30)))

    joined = decisions_with_outcomes(Home(tmp_path), window_s=60)
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
        root = Path(tmp)
        appended: list[str] = []
        with decision_writer(root, max_rows=5, max_age_s=3600) as writer:
            for operation in operations:
                if operation == "flush":
                    writer.flush()
                    continue
                for _ in range(operation):
                    appended.append(f"d{len(appended)}")
                    writer.append(make_decision(appended[-1]))
        assert sorted(read_ids(root)) == sorted(appended)
