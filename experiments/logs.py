"""The append-only decision log and outcome log.

Every ``POST /v1/decide`` answer is logged as one row of :data:`DECISION_SCHEMA`, every
reported outcome as one row of :data:`OUTCOME_SCHEMA`. Both logs are Parquet datasets
partitioned by the UTC date of ``ts`` (hive style, ``date=YYYY-MM-DD/part-<uuid>.parquet``).
Several processes may log at once, so a :class:`LogWriter` never appends to or rewrites a
file: each flush writes new, uniquely named files, atomically (a ``.``-prefixed temp file,
which dataset readers ignore, renamed into place).

Reading is :func:`read_decisions` / :func:`read_outcomes`; :func:`join_outcomes` attributes
outcomes to decisions (Arrow compute, no Python loops) and :func:`orphan_outcomes` returns
the outcomes whose decision is not in the log.

Examples
--------
>>> import datetime as dt
>>> import tempfile
>>> from pathlib import Path
>>> noon = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
>>> decision = dict(
...     decision_id="d1", ts=noon, customer_id="c1", features=[0.3, 1.0],
...     contract_version="v1", actions=["email", "sms"], scores=[2.5, 1.0],
...     probabilities=[0.10, 0.05], chosen="email", propensity=0.9, policy="greedy",
...     model_name="uplift", model_version="3", model_alias="champion", fallback=False,
...     cold_start=False, latency_ms=4.2, trace_id="t1",
... )  # experiment, arm, fallback_reason and request_id are nullable and default to None
>>> outcome = dict(
...     outcome_id="o1", decision_id="d1", ts=noon + dt.timedelta(minutes=5),
...     event="revenue", value=19.5, received_ts=noon + dt.timedelta(minutes=6),
...     known_decision=True,
... )
>>> with tempfile.TemporaryDirectory() as tmp:
...     home = Path(tmp)
...     with LogWriter(decision_log_dir(home), DECISION_SCHEMA) as decisions:
...         decisions.append(decision)
...     with LogWriter(outcome_log_dir(home), OUTCOME_SCHEMA) as outcomes:
...         outcomes.append(outcome)
...     joined = decisions_with_outcomes(home, window_s=3600)
>>> joined.select(["decision_id", "converted", "revenue", "n_outcomes"]).to_pylist()
[{'decision_id': 'd1', 'converted': False, 'revenue': 19.5, 'n_outcomes': 1}]
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

logger = logging.getLogger(__name__)

TIMESTAMP = pa.timestamp("us", tz="UTC")

DECISION_SCHEMA = pa.schema(
    [
        pa.field("decision_id", pa.string(), nullable=False),
        pa.field("ts", TIMESTAMP, nullable=False),
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

OUTCOME_SCHEMA = pa.schema(
    [
        pa.field("outcome_id", pa.string(), nullable=False),
        pa.field("decision_id", pa.string(), nullable=False),
        pa.field("ts", TIMESTAMP, nullable=False),
        pa.field("event", pa.string(), nullable=False),
        pa.field("value", pa.float64(), nullable=False),
        pa.field("received_ts", TIMESTAMP, nullable=False),
        pa.field("known_decision", pa.bool_(), nullable=False),
    ]
)

#: The column both logs are partitioned on (by its UTC date).
TIME_COLUMN = "ts"
PARTITION_COLUMN = "date"
CONVERSION_EVENT = "conversion"
REVENUE_EVENT = "revenue"

# Hive partitioning with a typed date, so start/end filters prune whole directories.
_PARTITIONING = ds.partitioning(pa.schema([(PARTITION_COLUMN, pa.date32())]), flavor="hive")


def decision_log_dir(home: Path) -> Path:
    """The decision log's dataset directory under ``home`` (``LIFTGATE_HOME``)."""
    return Path(home) / "logs" / "decisions"


def outcome_log_dir(home: Path) -> Path:
    """The outcome log's dataset directory under ``home`` (``LIFTGATE_HOME``)."""
    return Path(home) / "logs" / "outcomes"


# --------------------------------------------------------------------------- validation

_NUMBER = (float, int, np.floating, np.integer)
_ACCEPTED_PYTHON_TYPES: dict[pa.DataType, tuple[type, ...]] = {
    pa.string(): (str,),
    pa.float64(): _NUMBER,
    pa.int64(): (int, np.integer),
    pa.bool_(): (bool, np.bool_),
    TIMESTAMP: (dt.datetime,),
}
_SEQUENCE = (list, tuple, np.ndarray)


def _accepted_types(data_type: pa.DataType) -> tuple[type, ...]:
    # List fields are checked to be sequences only: checking every element would cost a
    # loop per row, and pyarrow still rejects bad elements at flush.
    if pa.types.is_list(data_type):
        return _SEQUENCE
    try:
        return _ACCEPTED_PYTHON_TYPES[data_type]
    except KeyError:
        raise TypeError(f"LogWriter does not support field type {data_type}") from None


class _RecordValidator:
    """Turns a record dict into a row tuple in schema order, or raises naming the field."""

    def __init__(self, schema: pa.Schema) -> None:
        self._names = tuple(schema.names)
        self._name_set = frozenset(schema.names)
        self._accepted = tuple(
            _accepted_types(field.type) + ((type(None),) if field.nullable else ())
            for field in schema
        )
        self._timestamp_positions = tuple(
            position for position, field in enumerate(schema) if field.type == TIMESTAMP
        )

    def row(self, record: Mapping[str, Any]) -> tuple[Any, ...]:
        values = tuple(map(record.get, self._names))
        # The happy path is one pass of builtins (a few µs); _reject finds the culprit.
        if not (all(map(isinstance, values, self._accepted)) and record.keys() <= self._name_set):
            self._reject(record, values)
        for position in self._timestamp_positions:
            moment = values[position]
            if moment is not None and moment.tzinfo is None:
                # A naive datetime would silently be taken as UTC; make the caller say so.
                name = self._names[position]
                raise ValueError(f"log record field {name!r} must be timezone-aware")
        return values

    def _reject(self, record: Mapping[str, Any], values: tuple[Any, ...]) -> NoReturn:
        for name, value, accepted in zip(self._names, values, self._accepted, strict=True):
            if value is None and not isinstance(value, accepted):
                raise ValueError(f"log record is missing required field {name!r}")
            if not isinstance(value, accepted):
                raise ValueError(
                    f"log record field {name!r} has type {type(value).__name__}, "
                    f"expected one of {[t.__name__ for t in accepted]}"
                )
        raise ValueError(f"log record has unknown fields {sorted(record.keys() - self._name_set)}")


# ------------------------------------------------------------------------------ writing


class LogWriter:
    """Buffers log records in memory and writes them as new Parquet files per date.

    A flush happens when ``max_rows`` rows are buffered or the oldest buffered row is
    ``max_age_s`` old. Both are checked on every :meth:`append`; after :meth:`start`, a
    daemon thread also checks the age so a quiet service still flushes, and does the
    writing itself, so that appends on the request path never touch the disk. Call
    :meth:`close` on shutdown (or use the writer as a context manager): it flushes what is
    left. All methods are thread-safe.

    Parameters
    ----------
    directory
        The dataset directory, e.g. ``decision_log_dir(home)``; created on first flush.
    schema
        :data:`DECISION_SCHEMA`, :data:`OUTCOME_SCHEMA` or any schema with a UTC ``ts``.
    max_rows
        Flush when this many rows are buffered.
    max_age_s
        Flush when the oldest buffered row is this many seconds old.
    """

    def __init__(
        self,
        directory: Path,
        schema: pa.Schema,
        *,
        max_rows: int = 5_000,
        max_age_s: float = 2.0,
    ) -> None:
        if schema.field(TIME_COLUMN).type != TIMESTAMP:
            raise ValueError(f"schema needs a {TIME_COLUMN!r} column of type {TIMESTAMP}")
        if max_rows < 1 or max_age_s <= 0:
            raise ValueError("max_rows must be >= 1 and max_age_s > 0")
        self.directory = Path(directory)
        self.schema = schema
        self.max_rows = max_rows
        self.max_age_s = max_age_s
        self._validator = _RecordValidator(schema)
        self._lock = threading.Lock()
        self._rows: list[tuple[Any, ...]] = []
        self._oldest_row_at = 0.0  # time.monotonic() of the first row in _rows
        # Date partitions whose write failed; retried first on the next flush.
        self._unwritten: list[tuple[dt.date, pa.Table]] = []
        self._closed = False
        self._wake_flusher = threading.Event()
        self._flusher: threading.Thread | None = None

    def append(self, record: Mapping[str, Any]) -> None:
        """Buffer one record; raise ``ValueError`` naming the field if it does not fit."""
        row = self._validator.row(record)
        now = time.monotonic()
        with self._lock:
            if self._closed:
                raise RuntimeError(f"LogWriter for {self.directory} is closed")
            if not self._rows:
                self._oldest_row_at = now
            self._rows.append(row)
            is_first_row = len(self._rows) == 1
            age_s = now - self._oldest_row_at
            is_due = len(self._rows) >= self.max_rows or age_s >= self.max_age_s
            flusher_running = self._flusher is not None
        if flusher_running:
            # The first row starts the age clock the flusher sleeps on.
            if is_due or is_first_row:
                self._wake_flusher.set()
        elif is_due:
            self._flush_logging_errors()

    def flush(self) -> int:
        """Write every buffered row now; return the number of rows written.

        If a write fails, the rows not yet written stay buffered and the error is raised.
        """
        with self._lock:
            rows, self._rows = self._rows, []
            unwritten, self._unwritten = self._unwritten, []
        # Conversion and disk I/O happen outside the lock: appends go on meanwhile.
        if rows:
            table = self._to_table(rows)
            if table.num_rows:
                unwritten.extend(self._split_by_date(table))
        written = 0
        for index, (date, table) in enumerate(unwritten):
            try:
                self._write_partition(date, table)
            except BaseException:
                with self._lock:
                    self._unwritten[:0] = unwritten[index:]
                raise
            written += table.num_rows
        return written

    def start(self) -> LogWriter:
        """Start the background flusher thread; return ``self``."""
        with self._lock:
            if self._closed or self._flusher is not None:
                raise RuntimeError("LogWriter.start() called twice or after close()")
            self._flusher = threading.Thread(
                target=self._run_flusher, name=f"LogWriter({self.directory})", daemon=True
            )
        self._flusher.start()
        return self

    def close(self) -> None:
        """Stop the flusher thread and flush what is left. Calling it again does nothing."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            flusher = self._flusher
        if flusher is not None:
            self._wake_flusher.set()
            flusher.join()
        self.flush()

    @property
    def buffered_rows(self) -> int:
        """Rows appended but not yet written."""
        with self._lock:
            return len(self._rows) + sum(table.num_rows for _, table in self._unwritten)

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _run_flusher(self) -> None:
        while not self._closed:
            self._wake_flusher.wait(self._seconds_until_due())
            self._wake_flusher.clear()
            if self._closed:
                return  # close() does the final flush on its own thread.
            if self._seconds_until_due() <= 0 or self._unwritten:
                self._flush_logging_errors()

    def _flush_logging_errors(self) -> None:
        # On the request path and in the flusher a failed write must not raise: the rows
        # stay buffered and the next flush retries them.
        try:
            self.flush()
        except Exception:
            logger.exception("flushing the log to %s failed", self.directory)

    def _seconds_until_due(self) -> float:
        with self._lock:
            if len(self._rows) >= self.max_rows:
                return 0.0
            if not self._rows:
                return self.max_age_s
            return max(0.0, self._oldest_row_at + self.max_age_s - time.monotonic())

    def _to_table(self, rows: list[tuple[Any, ...]]) -> pa.Table:
        try:
            return self._rows_to_table(rows)
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            # Append checks list fields only shallowly, so a bad element fails here. Keep
            # the good rows; the bad ones survive in the error log, not the dataset.
            good_rows = []
            for row in rows:
                try:
                    self._rows_to_table([row])
                except (pa.ArrowException, TypeError, ValueError, OverflowError) as error:
                    logger.error(
                        "dropping a log row that does not fit the schema (%s): %r", error, row
                    )
                else:
                    good_rows.append(row)
            return self._rows_to_table(good_rows)

    def _rows_to_table(self, rows: list[tuple[Any, ...]]) -> pa.Table:
        if not rows:
            return self.schema.empty_table()
        columns = [
            pa.array(values, type=field.type)
            for values, field in zip(zip(*rows, strict=True), self.schema, strict=True)
        ]
        return pa.Table.from_arrays(columns, schema=self.schema)

    def _split_by_date(self, table: pa.Table) -> list[tuple[dt.date, pa.Table]]:
        dates = pc.cast(table[TIME_COLUMN], pa.date32())
        unique_dates = pc.unique(dates)
        if len(unique_dates) == 1:
            return [(unique_dates[0].as_py(), table)]
        return [(date.as_py(), table.filter(pc.equal(dates, date))) for date in unique_dates.sort()]

    def _write_partition(self, date: dt.date, table: pa.Table) -> None:
        partition = self.directory / f"{PARTITION_COLUMN}={date.isoformat()}"
        partition.mkdir(parents=True, exist_ok=True)
        name = f"part-{uuid.uuid4().hex}.parquet"
        # The "." prefix hides the half-written file from pyarrow.dataset readers.
        temporary = partition / f".{name}.tmp"
        try:
            pq.write_table(table, temporary)
            # fsync before the rename: after a power cut, a renamed but empty file would
            # make the whole dataset unreadable.
            descriptor = os.open(temporary, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            os.replace(temporary, partition / name)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise


# ------------------------------------------------------------------------------ reading


def read_decisions(
    directory: Path, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> pa.Table:
    """Decisions in ``directory`` (see :func:`decision_log_dir`) with ``start <= ts < end``."""
    return _read_log(directory, DECISION_SCHEMA, start, end)


def read_outcomes(
    directory: Path, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> pa.Table:
    """Outcomes in ``directory`` (see :func:`outcome_log_dir`) with ``start <= ts < end``."""
    return _read_log(directory, OUTCOME_SCHEMA, start, end)


def _dataset(directory: Path, schema: pa.Schema) -> ds.Dataset:
    return ds.dataset(
        directory,
        schema=schema.append(pa.field(PARTITION_COLUMN, pa.date32())),
        format="parquet",
        partitioning=_PARTITIONING,
        ignore_prefixes=[".", "_"],  # in-flight temp files
    )


def _read_log(
    directory: Path, schema: pa.Schema, start: dt.datetime | None, end: dt.datetime | None
) -> pa.Table:
    directory = Path(directory)
    if not directory.is_dir():
        return schema.empty_table()
    dataset = _dataset(directory, schema)
    # The date conditions are redundant with the ts ones but let the scan skip directories.
    conditions = []
    if start is not None:
        start = _as_utc(start)
        conditions += [
            ds.field(TIME_COLUMN) >= pa.scalar(start, TIMESTAMP),
            ds.field(PARTITION_COLUMN) >= pa.scalar(start.date(), pa.date32()),
        ]
    if end is not None:
        end = _as_utc(end)
        conditions += [
            ds.field(TIME_COLUMN) < pa.scalar(end, TIMESTAMP),
            ds.field(PARTITION_COLUMN) <= pa.scalar(end.date(), pa.date32()),
        ]
    row_filter = None
    for condition in conditions:
        row_filter = condition if row_filter is None else row_filter & condition
    table = dataset.to_table(columns=schema.names, filter=row_filter)
    return table.cast(schema)


def _as_utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} must be timezone-aware")
    return moment.astimezone(dt.UTC)


# ------------------------------------------------------------------------------ joining


def join_outcomes(
    decisions: pa.Table, outcomes: pa.Table, window_s: float | None = None
) -> pa.Table:
    """One row per decision (in order) with its outcomes attributed.

    Added columns: ``converted`` (any ``"conversion"`` event), ``revenue`` (sum of
    ``"revenue"`` event values, 0 if none), ``n_outcomes`` and ``first_outcome_ts``. With
    ``window_s``, only outcomes with ``ts <= decision ts + window_s`` count, for all four
    columns. Outcomes timestamped before their decision do count: they carry the
    decision's id, so they followed it, and the app's clock is not ours. ``decision_id`` is
    assumed unique; outcomes go to its first row.
    """
    decision_index = pc.index_in(outcomes["decision_id"], value_set=decisions["decision_id"])
    attributed = pc.is_valid(decision_index)
    if window_s is not None:
        decision_ts = decisions[TIME_COLUMN].take(decision_index)
        deadline = pc.add(decision_ts, pa.scalar(dt.timedelta(seconds=window_s), pa.duration("us")))
        attributed = pc.and_kleene(attributed, pc.less_equal(outcomes[TIME_COLUMN], deadline))
    counted = outcomes.filter(attributed, null_selection_behavior="drop")
    event = counted["event"]
    per_decision = (
        pa.table(
            {
                "decision_id": counted["decision_id"],
                "is_conversion": pc.equal(event, CONVERSION_EVENT),
                "revenue": pc.if_else(pc.equal(event, REVENUE_EVENT), counted["value"], 0.0),
                "ts": counted[TIME_COLUMN],
            }
        )
        .group_by("decision_id")
        .aggregate([("is_conversion", "any"), ("revenue", "sum"), ([], "count_all"), ("ts", "min")])
    )
    # index_in + take instead of a hash join: it keeps the decisions' order, and Acero
    # joins reject the list columns (features, actions, ...) as payload.
    row_of_decision = pc.index_in(decisions["decision_id"], value_set=per_decision["decision_id"])

    def per_decision_column(name: str) -> pa.ChunkedArray:
        return per_decision[name].take(row_of_decision)

    return (
        decisions.append_column(
            "converted", pc.fill_null(per_decision_column("is_conversion_any"), False)
        )
        .append_column("revenue", pc.fill_null(per_decision_column("revenue_sum"), 0.0))
        .append_column("n_outcomes", pc.fill_null(per_decision_column("count_all"), 0))
        .append_column("first_outcome_ts", per_decision_column("ts_min"))
    )


def orphan_outcomes(decisions: pa.Table, outcomes: pa.Table) -> pa.Table:
    """Outcomes whose ``decision_id`` matches no decision in ``decisions``."""
    known = pc.is_in(outcomes["decision_id"], value_set=decisions["decision_id"])
    return outcomes.filter(pc.invert(known))


def decisions_with_outcomes(home: Path, window_s: float | None = None) -> pa.Table:
    """Read both logs under ``home`` (``LIFTGATE_HOME``) and :func:`join_outcomes` them."""
    return join_outcomes(
        read_decisions(decision_log_dir(home)), read_outcomes(outcome_log_dir(home)), window_s
    )


def find_decision(directory: Path, decision_id: str) -> dict[str, Any] | None:
    """The logged decision with this id, or None (a filtered scan of the dataset)."""
    if not Path(directory).is_dir():
        return None
    table = _dataset(Path(directory), DECISION_SCHEMA).to_table(
        filter=ds.field("decision_id") == decision_id
    )
    return table.slice(0, 1).to_pylist()[0] if table.num_rows else None
