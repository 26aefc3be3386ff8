"""Appending records to a log: buffered in memory, written as new Parquet files per date.

Several processes may log at once, so a :class:`LogWriter` never appends to or rewrites a
file: each flush writes new, uniquely named files (``date=YYYY-MM-DD/part-<uuid>.parquet``,
by the UTC date of ``ts``), atomically (a ``.``-prefixed temp file, which dataset readers
ignore, renamed into place).

>>> import datetime as dt, tempfile
>>> from pathlib import Path
>>> from experiments.logs.schema import OutcomeRecord
>>> noon = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
>>> with tempfile.TemporaryDirectory() as tmp:
...     with LogWriter(Path(tmp), OutcomeRecord) as outcomes:
...         outcomes.append(OutcomeRecord(
...             outcome_id="o1", decision_id="d1", ts=noon, event="conversion", value=1.0,
...             received_ts=noon, known_decision=True))
...     sorted(path.parent.name for path in Path(tmp).rglob("part-*.parquet"))
['date=2024-05-01']
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Generic

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from experiments.logs.schema import (
    PARTITION_COLUMN,
    TIME_COLUMN,
    TIMESTAMP,
    Record,
    arrow_schema,
    to_table,
)

logger = logging.getLogger(__name__)


class LogWriter(Generic[Record]):
    """Buffers records in memory and writes them as new Parquet files per date.

    A flush happens when ``max_rows`` records are buffered or the oldest buffered one is
    ``max_age_s`` old. Both are checked on every :meth:`append`; after :meth:`start`, a
    daemon thread also checks the age so a quiet service still flushes, and does the
    writing itself, so that appends on the request path never touch the disk. Call
    :meth:`close` on shutdown (or use the writer as a context manager): it flushes what is
    left. All methods are thread-safe.

    An append only checks that the record is a ``record_type`` (its constructor has checked
    the field names): the values are checked as they are converted to Arrow at flush, off
    the request path, and a record with a value that does not fit its column (see
    :func:`~experiments.logs.schema.to_table`) is dropped there and logged as an error
    naming the field.

    Parameters
    ----------
    directory
        The dataset directory, e.g. ``home.decision_log``; created on first flush.
    record_type
        :class:`~experiments.logs.schema.DecisionRecord`,
        :class:`~experiments.logs.schema.OutcomeRecord`, or any record dataclass with a
        ``ts`` field (see :func:`~experiments.logs.schema.arrow_schema`).
    max_rows
        Flush when this many records are buffered.
    max_age_s
        Flush when the oldest buffered record is this many seconds old.
    """

    def __init__(
        self,
        directory: Path,
        record_type: type[Record],
        *,
        max_rows: int = 5_000,
        max_age_s: float = 2.0,
    ) -> None:
        schema = arrow_schema(record_type)
        if TIME_COLUMN not in schema.names or schema.field(TIME_COLUMN).type != TIMESTAMP:
            raise ValueError(f"{record_type.__name__} needs a {TIME_COLUMN!r} datetime field")
        if max_rows < 1 or max_age_s <= 0:
            raise ValueError("max_rows must be >= 1 and max_age_s > 0")
        self.directory = Path(directory)
        self.record_type = record_type
        self.schema = schema
        self.max_rows = max_rows
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._records: list[Record] = []
        self._oldest_record_at = 0.0  # time.monotonic() of the first of _records
        # Date partitions whose write failed; retried first on the next flush.
        self._unwritten: list[tuple[dt.date, pa.Table]] = []
        self._closed = False
        self._wake_flusher = threading.Event()
        self._flusher: threading.Thread | None = None

    def append(self, record: Record) -> None:
        """Buffer one record (a ``TypeError`` if it is not a ``record_type``)."""
        if type(record) is not self.record_type:
            raise TypeError(
                f"LogWriter for {self.record_type.__name__} got a {type(record).__name__}"
            )
        now = time.monotonic()
        with self._lock:
            if self._closed:
                raise RuntimeError(f"LogWriter for {self.directory} is closed")
            if not self._records:
                self._oldest_record_at = now
            self._records.append(record)
            is_first = len(self._records) == 1
            age_s = now - self._oldest_record_at
            is_due = len(self._records) >= self.max_rows or age_s >= self.max_age_s
            flusher_running = self._flusher is not None
        if flusher_running:
            # The first record starts the age clock the flusher sleeps on.
            if is_due or is_first:
                self._wake_flusher.set()
        elif is_due:
            self._flush_logging_errors()

    def flush(self) -> int:
        """Write every buffered record now; return the number of rows written.

        If a write fails, the rows not yet written stay buffered and the error is raised.
        """
        with self._lock:
            records, self._records = self._records, []
            unwritten, self._unwritten = self._unwritten, []
        # Conversion and disk I/O happen outside the lock: appends go on meanwhile.
        if records:
            table = self._to_table(records)
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

    def start(self) -> LogWriter[Record]:
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
        """Records appended but not yet written."""
        with self._lock:
            return len(self._records) + sum(table.num_rows for _, table in self._unwritten)

    def __enter__(self) -> LogWriter[Record]:
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
            if len(self._records) >= self.max_rows:
                return 0.0
            if not self._records:
                return self.max_age_s
            return max(0.0, self._oldest_record_at + self.max_age_s - time.monotonic())

    def _to_table(self, records: list[Record]) -> pa.Table:
        try:
            return to_table(self.record_type, records)
        except ValueError:
            # Keep the good records; the bad ones survive in the error log, not the dataset.
            good = []
            for record in records:
                try:
                    to_table(self.record_type, [record])
                except ValueError as error:
                    logger.error("dropping a log record (%s): %r", error, record)
                else:
                    good.append(record)
            return to_table(self.record_type, good)

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
