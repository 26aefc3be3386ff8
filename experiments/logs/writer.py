"""Appending records to a log: a write-ahead segment first, then new Parquet files per date.

An acknowledged record must survive a crash, so :meth:`LogWriter.append` writes it to the
writer's write-ahead segment (:mod:`experiments.logs.wal`) before it returns, and
:meth:`LogWriter.commit` also waits until the segment is fsynced, as the fsync policy
says (:mod:`experiments.logs.group_commit`). The records also stay in memory, and are
written as Parquet in batches (by size and age, off the request path); then the segment is
deleted. A writer that starts converts the segments that crashed writers left
(:func:`~experiments.logs.wal.recover`).

Several processes may log at once, so a writer never appends to or rewrites a Parquet
file: each batch becomes new files named after its segment
(``date=YYYY-MM-DD/part-<segment>.parquet``, by the UTC date of ``ts``), written
atomically and durably (:func:`~experiments.logs.parquet_files.write_batch`).

When the disk fails, memory stays bounded: a record that cannot be written to the segment,
or that would take the buffer past ``max_buffered_rows``, is refused with
:class:`~experiments.logs.wal.LogUnavailable` (the service answers 503), and the writer
reports itself not :attr:`~LogWriter.healthy` until writes succeed again. Records already
acknowledged stay buffered, and in their segments, until a flush succeeds.

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

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Generic

from experiments.logs.frames import encode
from experiments.logs.group_commit import FsyncPolicy, GroupCommit
from experiments.logs.parquet_files import write_batch
from experiments.logs.schema import TIME_COLUMN, TIMESTAMP, Record, arrow_schema
from experiments.logs.wal import LogUnavailable, Segment, recover

logger = logging.getLogger(__name__)

#: The kinds of failure :class:`LogWriter` reports to ``on_failure``.
FAILURES = ("wal_write", "wal_fsync", "parquet", "buffer_full", "recovery")


@dataclass
class _Batch(Generic[Record]):
    """A closed segment and its records, waiting to be written as Parquet."""

    segment: Segment
    records: list[Record]


class LogWriter(Generic[Record]):
    """Writes records ahead to a segment, and in batches to new Parquet files per date.

    A Parquet flush happens when ``max_rows`` records are buffered or the oldest buffered
    one is ``max_age_s`` old. Both are checked on every :meth:`append`; after
    :meth:`start`, a daemon thread also checks the age so a quiet service still flushes,
    and does the writing itself, so that appends on the request path never write Parquet.
    Call :meth:`close` on shutdown (or use the writer as a context manager): it flushes
    what is left. All methods are thread-safe.

    An append checks that the record is a ``record_type`` (its constructor has checked the
    field names): the values are checked as they are converted to Arrow, off the request
    path, and a record with a value that does not fit its column is dropped there and
    logged as an error naming the field.

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
    fsync
        When :meth:`commit` returns: ``always``, ``group`` (after a fsync shared by the
        appends of ``group_commit_ms``) or ``off`` (written, not fsynced); see
        :mod:`experiments.logs.group_commit`.
    max_buffered_rows
        Refuse appends while this many records are not yet in Parquet.
    on_failure
        Called with one of :data:`FAILURES` each time a write fails (a metric).
    """

    def __init__(
        self,
        directory: Path,
        record_type: type[Record],
        *,
        max_rows: int = 5_000,
        max_age_s: float = 2.0,
        fsync: FsyncPolicy = "always",
        group_commit_ms: float = 1.0,
        max_buffered_rows: int = 100_000,
        on_failure: Callable[[str], None] = lambda kind: None,
    ) -> None:
        schema = arrow_schema(record_type)
        if TIME_COLUMN not in schema.names or schema.field(TIME_COLUMN).type != TIMESTAMP:
            raise ValueError(f"{record_type.__name__} needs a {TIME_COLUMN!r} datetime field")
        if max_rows < 1 or max_age_s <= 0 or max_buffered_rows < max_rows:
            raise ValueError("max_rows must be >= 1, max_age_s > 0, max_buffered_rows >= max_rows")
        self.directory = Path(directory)
        self.record_type = record_type
        self.max_rows = max_rows
        self.max_age_s = max_age_s
        self.max_buffered_rows = max_buffered_rows
        self.on_failure = on_failure
        self._commits = GroupCommit(fsync, group_commit_ms / 1000, self._fsync_failed)
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()  # one Parquet flush at a time
        self._segment: Segment | None = None  # opened by the first append after a flush
        self._records: list[Record] = []  # in _segment, not yet in a batch
        self._oldest_record_at = 0.0  # time.monotonic() of the first of _records
        self._batches: list[_Batch[Record]] = []  # closed segments not yet in Parquet
        self._batched_rows = 0
        self._lsn = 0
        self._wal_ok = True
        self._parquet_ok = True
        self._recovery_pending = False
        self._closed = False
        self._wake_flusher = threading.Event()
        self._flusher: threading.Thread | None = None

    def append(self, record: Record) -> None:
        """Write one record to the segment and buffer it.

        Once this returns the record survives the death of the process; :meth:`commit`
        also waits for the fsync. A ``TypeError`` if it is not a ``record_type``;
        :class:`~experiments.logs.wal.LogUnavailable` if it cannot be written.
        """
        self._append(record)

    async def commit(self, record: Record) -> None:
        """:meth:`append`, then wait (without blocking the event loop) until the record is
        durable under the fsync policy; :class:`~experiments.logs.wal.LogUnavailable` if
        it is not."""
        lsn = self._append(record)
        if self._commits.policy != "off":  # written is all `off` asks: no wait to await
            await self._commits.wait(lsn)

    def _append(self, record: Record) -> int:
        """:meth:`append`; return the record's sequence number."""
        if type(record) is not self.record_type:
            raise TypeError(
                f"LogWriter for {self.record_type.__name__} got a {type(record).__name__}"
            )
        frame = encode(record)
        now = time.monotonic()
        with self._lock:
            if self._closed:
                raise RuntimeError(f"LogWriter for {self.directory} is closed")
            failure = self._write_locked(frame)
            if failure is None:
                self._lsn += 1
                lsn = self._lsn
                self._commits.written(lsn, self._segment)
                if not self._records:
                    self._oldest_record_at = now
                self._records.append(record)
                is_first = len(self._records) == 1
                is_due = len(self._records) >= self.max_rows or (
                    now - self._oldest_record_at >= self.max_age_s
                )
                flusher_running = self._flusher is not None
        if failure is not None:
            kind, message = failure
            self.on_failure(kind)
            raise LogUnavailable(f"the log in {self.directory} cannot take a record: {message}")
        if flusher_running:
            # The first record starts the age clock the flusher sleeps on.
            if is_due or is_first:
                self._wake_flusher.set()
        elif is_due:
            self._flush_logging_errors()
        return lsn

    def flush(self) -> int:
        """Write every buffered record as Parquet now; return the number of rows written.

        If a write fails, the rows not yet written stay buffered (and in their segments)
        and the error is raised.
        """
        with self._flush_lock:
            if self._recovery_pending:
                self._recover()
            with self._lock:
                self._close_segment_locked()
                batches = list(self._batches)
            written = 0
            for batch in batches:
                try:
                    written += write_batch(
                        self.directory, batch.segment.name, self.record_type, batch.records
                    )
                    batch.segment.delete()
                except BaseException:
                    self._parquet_ok = False
                    raise
                with self._lock:
                    self._batches.remove(batch)
                    self._batched_rows -= len(batch.records)
            self._parquet_ok = not self._recovery_pending
            return written

    def start(self) -> LogWriter[Record]:
        """Convert the segments crashed writers left, start the background flusher thread;
        return ``self``."""
        with self._lock:
            if self._closed or self._flusher is not None:
                raise RuntimeError("LogWriter.start() called twice or after close()")
            self._flusher = threading.Thread(
                target=self._run_flusher, name=f"LogWriter({self.directory})", daemon=True
            )
        with self._flush_lock:
            self._recover()
        self._flusher.start()
        return self

    def close(self) -> None:
        """Stop the threads and flush what is left. Calling it again does nothing.

        If the last flush fails, its segments stay on disk for the next start to recover.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            flusher = self._flusher
        if flusher is not None:
            self._wake_flusher.set()
            flusher.join()
        self._commits.close()
        try:
            self.flush()
        finally:
            for batch in self._batches:  # let their locks go: they are orphans now
                batch.segment.close()

    @property
    def buffered_rows(self) -> int:
        """Records appended but not yet written as Parquet."""
        with self._lock:
            return len(self._records) + self._batched_rows

    @property
    def healthy(self) -> bool:
        """False while the last write-ahead write or fsync, or the last Parquet flush,
        failed, or the buffer is full."""
        with self._lock:
            full = len(self._records) + self._batched_rows >= self.max_buffered_rows
            return self._wal_ok and self._parquet_ok and not full

    def __enter__(self) -> LogWriter[Record]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- under self._lock ----------------------------------------------------------------

    def _write_locked(self, frame: bytes) -> tuple[str, str] | None:
        """Write the frame to the open segment; the failure (kind, message), or None."""
        if len(self._records) + self._batched_rows >= self.max_buffered_rows:
            return "buffer_full", f"{self.max_buffered_rows} rows are not yet in Parquet"
        try:
            if self._segment is not None and self._segment.broken:
                self._close_segment_locked()  # a failed write or fsync: start a new one
            if self._segment is None:
                self._segment = Segment.create(self.directory)
            self._segment.write(frame)
        except OSError as error:
            self._wal_ok = False
            return "wal_write", str(error)
        self._wal_ok = True
        return None

    def _close_segment_locked(self) -> None:
        if self._segment is None:
            return
        self._batches.append(_Batch(self._segment, self._records))
        self._batched_rows += len(self._records)
        self._segment, self._records = None, []

    # --- background ----------------------------------------------------------------------

    def _fsync_failed(self, error: OSError) -> None:
        with self._lock:
            self._wal_ok = False
        self.on_failure("wal_fsync")

    def _recover(self) -> None:
        """Convert orphaned segments (under the flush lock); retried by the next flush."""
        try:
            recover(self.directory, self.record_type)
        except Exception:
            logger.exception("recovering the write-ahead log of %s failed", self.directory)
            self._recovery_pending = True
            self._parquet_ok = False
            self.on_failure("recovery")
        else:
            self._recovery_pending = False

    def _probe(self) -> None:
        """After a failed write-ahead write, test whether the disk takes writes again
        (appends may have stopped coming: /readyz sends no traffic while unhealthy)."""
        try:
            probe = Segment.create(self.directory)
        except OSError as error:
            logger.warning("the log in %s still cannot be written: %s", self.directory, error)
            return
        try:
            probe.write(bytes(4096))  # zeros: no frame, should a crash leave the file
            probe.sync()
        except OSError as error:
            logger.warning("the log in %s still cannot be written: %s", self.directory, error)
        else:
            with self._lock:
                self._wal_ok = True
        finally:
            probe.delete()

    def _run_flusher(self) -> None:
        while not self._closed:
            self._wake_flusher.wait(self._seconds_until_due())
            self._wake_flusher.clear()
            if self._closed:
                return  # close() does the final flush on its own thread.
            if not self._wal_ok:
                self._probe()
            if self._seconds_until_due() <= 0 or self._batches or self._recovery_pending:
                self._flush_logging_errors()

    def _flush_logging_errors(self) -> None:
        # On the request path and in the flusher a failed write must not raise: the rows
        # stay buffered and the next flush retries them.
        try:
            self.flush()
        except Exception:
            logger.exception("flushing the log to %s failed", self.directory)
            self.on_failure("parquet")

    def _seconds_until_due(self) -> float:
        with self._lock:
            if len(self._records) >= self.max_rows:
                return 0.0
            if not self._records:
                return self.max_age_s
            return max(0.0, self._oldest_record_at + self.max_age_s - time.monotonic())
