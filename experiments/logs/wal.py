"""Write-ahead segments of a log: acknowledged records on disk until they are in Parquet.

Each :class:`~experiments.logs.writer.LogWriter` appends every record, as one frame
(:mod:`experiments.logs.frames`), to a segment file of its own in the log's ``_wal/``
directory (which dataset readers skip), named ``<pid>-<random>.wal``. When the writer
turns its buffered records into Parquet, it closes the segment, writes the batch under the
segment's name (:func:`~experiments.logs.parquet_files.write_batch`) and deletes the
segment; the next append opens a new one.

While a writer has a segment open it holds an exclusive ``flock`` on it. The kernel drops
the lock when the process dies, however it dies (``kill -9``, the OOM killer), so a
segment whose lock can be taken belongs to no live writer: :func:`recover` converts each
such *orphan* to Parquet under the orphan's lock and deletes it. Conversion is idempotent
(files named after the segment are written once), so a crash at any point of a flush or of
a recovery neither loses nor duplicates a row. A torn last frame — the append the crash
interrupted, never acknowledged — is dropped and reported.

:func:`unlanded_since` tells how old the oldest record still in a segment is, live or
orphaned: the rows that a reader of the Parquet dataset cannot see yet;
:func:`segment_records` reads them.

>>> import datetime as dt, tempfile
>>> from experiments.logs.frames import encode
>>> from experiments.logs.reader import read_outcomes
>>> from experiments.logs.schema import OutcomeRecord
>>> noon = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
>>> outcome = OutcomeRecord(outcome_id="o1", decision_id="d1", ts=noon, event="conversion",
...                         value=1.0, received_ts=noon, known_decision=True)
>>> with tempfile.TemporaryDirectory() as tmp:
...     segment = Segment.create(Path(tmp))
...     segment.write(encode(outcome))
...     segment.close()  # as a crash would: the lock goes, the segment stays
...     pending = unlanded_since(Path(tmp), OutcomeRecord)
...     recovered = recover(Path(tmp), OutcomeRecord)
...     read_outcomes(Path(tmp))["outcome_id"].to_pylist(), recovered, pending == noon
(['o1'], 1, True)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import logging
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

from experiments.logs.frames import decode
from experiments.logs.parquet_files import make_directories, write_batch
from experiments.logs.schema import TIME_COLUMN, Record
from liftgate.core.jsonstate import fsync_directory

logger = logging.getLogger(__name__)

WAL_DIRECTORY = "_wal"
SUFFIX = ".wal"


class LogUnavailable(RuntimeError):
    """The log cannot take a record now (its disk fails, or its buffer is full): the
    record is not acknowledged. The HTTP layer answers 503."""


def wal_directory(directory: Path) -> Path:
    """Where the log in ``directory`` keeps its segments."""
    return Path(directory) / WAL_DIRECTORY


class Segment:
    """A segment this process appends to, locked while open.

    :meth:`write` appends a frame with ``write(2)``: once it returns, the frame survives
    the death of the process (it is in the kernel's page cache); :meth:`sync` makes it
    survive a power cut too (``fsync(2)``, and, the first time, of the directory, so the
    new file's name is durable as well). A write or sync that fails marks the segment
    ``broken``: the writer appends no more to it.
    """

    def __init__(self, path: Path, descriptor: int) -> None:
        self.path = path
        self.name = path.name.removesuffix(SUFFIX)
        self.broken = False
        self._descriptor: int | None = descriptor
        self._directory_synced = False
        self._lock = threading.Lock()  # sync against close

    @classmethod
    def create(cls, directory: Path) -> Segment:
        """A new, empty segment in the ``_wal/`` of the log in ``directory``."""
        folder = wal_directory(directory)
        make_directories(folder)
        path = folder / f"{os.getpid()}-{uuid.uuid4().hex[:16]}{SUFFIX}"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return cls(path, descriptor)

    def write(self, frame: bytes) -> None:
        """Append one frame (the writer serializes calls)."""
        try:
            written = os.write(self._descriptor, frame)
            if written < len(frame):  # a full disk may take part of a frame, then refuse the rest
                view = memoryview(frame)[written:]
                while view:
                    view = view[os.write(self._descriptor, view) :]
        except OSError:
            self.broken = True
            raise

    def sync(self) -> None:
        """fsync what was written; nothing once closed (its rows are in Parquet then)."""
        with self._lock:
            if self._descriptor is None:
                return
            try:
                os.fsync(self._descriptor)
                if not self._directory_synced:
                    fsync_directory(self.path.parent)
                    self._directory_synced = True
            except OSError:
                self.broken = True
                raise

    def delete(self) -> None:
        """Remove the file, then close it and let the lock go (its rows are in Parquet)."""
        self.path.unlink(missing_ok=True)
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._descriptor is not None:
                os.close(self._descriptor)
                self._descriptor = None


def recover(directory: Path, record_type: type[Record]) -> int:
    """Convert every orphaned segment of the log in ``directory`` to Parquet and delete
    it; return the rows written. Safe to run from several processes at once, and beside
    live writers."""
    rows = 0
    for path, descriptor in _orphans(directory):
        name = path.name.removesuffix(SUFFIX)
        records = _read(path, descriptor, record_type)
        rows += write_batch(directory, name, record_type, records)
        # Temporary Parquet files its dead writer left mid-flush (no one else writes them).
        for temporary in Path(directory).glob(f"*/.part-{name}.parquet.*.tmp"):
            temporary.unlink(missing_ok=True)
        path.unlink(missing_ok=True)
        logger.info("recovered %d rows of %s", len(records), path)
    return rows


def unlanded_since(directory: Path, record_type: type[Record]) -> dt.datetime | None:
    """The earliest ``ts`` among the records in the log's segments (None if none)."""
    earliest = None
    for _, records in segment_records(directory, record_type):
        for record in records:
            ts = getattr(record, TIME_COLUMN)
            if ts.tzinfo is not None and (earliest is None or ts < earliest):
                earliest = ts
    return earliest


def segment_records(
    directory: Path, record_type: type[Record]
) -> Iterator[tuple[Path, list[Record]]]:
    """Each segment of the log, live or orphaned, with its whole records (a live writer's
    append in progress is a torn tail: left out). Read without locks, as a snapshot."""
    for path in sorted(wal_directory(directory).glob(f"*{SUFFIX}")):
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # converted meanwhile: its rows are in Parquet
            continue
        yield path, decode(data, record_type)[0]


def _orphans(directory: Path) -> Iterator[tuple[Path, int]]:
    """Each segment no live writer holds, locked and open, while the caller converts it."""
    for path in sorted(wal_directory(directory).glob(f"*{SUFFIX}")):
        try:
            descriptor = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            with contextlib.suppress(BlockingIOError):
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                # The lock is ours, but the path may have been converted and removed
                # by another process between our open and our lock.
                if _same_file(path, descriptor):
                    yield path, descriptor
        finally:
            os.close(descriptor)


def _same_file(path: Path, descriptor: int) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(descriptor).st_ino
    except FileNotFoundError:
        return False


def _read(path: Path, descriptor: int, record_type: type[Record]) -> list[Record]:
    with os.fdopen(os.dup(descriptor), "rb") as handle:
        data = handle.read()
    records, end = decode(data, record_type)
    if end < len(data):
        logger.warning(
            "%s: dropped a torn tail of %d bytes (an append cut short by a crash)",
            path,
            len(data) - end,
        )
    return records
