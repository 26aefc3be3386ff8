"""Writing a batch of log records as Parquet files, durably and at most once.

A batch is the records of one write-ahead segment (:mod:`experiments.logs.wal`), named
like it. :func:`write_batch` writes one file per UTC date of ``ts``,
``date=YYYY-MM-DD/part-<batch name>.parquet``. Each file is written to a ``.``-prefixed
temporary name (which dataset readers ignore), fsynced, renamed into place, and its
directory fsynced, so after a crash a file is either whole and durable or absent (the
rename protocol of ext4's ``auto_da_alloc`` notes and of SQLite's "atomic commit"). A file
that is already there is kept: writing a batch again — a retry after a failure, or the
recovery of a segment whose writer crashed between the rename and deleting the segment —
adds no row twice, because the name says which batch the rows came from.

A record whose values do not fit the schema (see
:func:`~experiments.logs.schema.to_table`) is dropped here and logged as an error naming
the field; the others are written.

>>> import datetime as dt, tempfile
>>> from experiments.logs.schema import OutcomeRecord
>>> noon = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
>>> outcome = OutcomeRecord(outcome_id="o1", decision_id="d1", ts=noon, event="conversion",
...                         value=1.0, received_ts=noon, known_decision=True)
>>> with tempfile.TemporaryDirectory() as tmp:
...     first = write_batch(Path(tmp), "123-abc", OutcomeRecord, [outcome])
...     again = write_batch(Path(tmp), "123-abc", OutcomeRecord, [outcome])
...     names = sorted(str(p.relative_to(tmp)) for p in Path(tmp).rglob("*.parquet"))
>>> first, again, names
(1, 0, ['date=2024-05-01/part-123-abc.parquet'])
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from experiments.logs.schema import PARTITION_COLUMN, TIME_COLUMN, Record, to_table
from liftgate.core.jsonstate import fsync_directory

logger = logging.getLogger(__name__)


def write_batch(
    directory: Path, name: str, record_type: type[Record], records: Sequence[Record]
) -> int:
    """Write the batch's files that are not there yet; return the rows written."""
    table = _to_table(record_type, records)
    written = 0
    for date, rows in _split_by_date(table):
        partition = Path(directory) / f"{PARTITION_COLUMN}={date.isoformat()}"
        path = partition / f"part-{name}.parquet"
        if path.exists():
            continue
        make_directories(partition)
        write_file(rows, path)
        written += rows.num_rows
    return written


def _to_table(record_type: type[Record], records: Sequence[Record]) -> pa.Table:
    try:
        return to_table(record_type, records)
    except ValueError:
        # Keep the good records; the bad ones survive in the error log, not the dataset.
        good = []
        for record in records:
            try:
                to_table(record_type, [record])
            except ValueError as error:
                logger.error("dropping a log record (%s): %r", error, record)
            else:
                good.append(record)
        return to_table(record_type, good)


def _split_by_date(table: pa.Table) -> list[tuple[dt.date, pa.Table]]:
    if not table.num_rows:
        return []
    dates = pc.cast(table[TIME_COLUMN], pa.date32())
    unique_dates = pc.unique(dates)
    if len(unique_dates) == 1:
        return [(unique_dates[0].as_py(), table)]
    return [(date.as_py(), table.filter(pc.equal(dates, date))) for date in unique_dates.sort()]


def make_directories(path: Path) -> None:
    """``mkdir -p``, each new directory's entry made durable in its parent (nothing is
    fsynced when ``path`` exists)."""
    missing = []
    while not path.is_dir():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        directory.mkdir(exist_ok=True)
        fsync_directory(directory.parent)


def write_file(table: pa.Table, path: Path, suffix: str = ".tmp") -> None:
    """Write ``table`` to ``path`` atomically and durably, replacing any file there.

    The rows go to ``.<name>.<random><suffix>`` beside it, are fsynced, renamed over
    ``path``, and the directory is fsynced; the temporary file is removed on an error (a
    crash leaves it: ``suffix`` tells whose it is).
    """
    # The "." prefix hides the half-written file from pyarrow.dataset readers; the random
    # part keeps two writers of the same batch (a retry racing a recovery) apart.
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}{suffix}")
    try:
        pq.write_table(table, temporary)
        # fsync before the rename: after a power cut, a renamed but empty file would make
        # the whole dataset unreadable.
        descriptor = os.open(temporary, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)
