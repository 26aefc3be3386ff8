"""Retention: deleting the log partitions older than N days.

The logs are partitioned by the UTC date of ``ts`` (``date=YYYY-MM-DD/``,
:mod:`experiments.logs.parquet_files`), so retention deletes whole partition directories:
those dated before :func:`oldest_kept`, today's UTC date minus ``days``. A retention of at
least one day never deletes today's partition nor yesterday's.

A partition is first renamed to a hidden name (``.date=….<random>.expired``: readers skip
it at once, and no reader sees half a partition), then removed; one that a crash left
hidden is removed by the next run. The rename and the removal happen under the dataset's
lock (:func:`liftgate.core.jsonstate.locked`), which erasure
(:mod:`liftgate.governance.erasure`) takes too. The write-ahead segments (``_wal/``) are
not partitions: a writer turns them into Parquet and deletes them itself.

>>> import datetime as dt, tempfile
>>> now = dt.datetime(2024, 5, 10, 8, tzinfo=dt.UTC)
>>> with tempfile.TemporaryDirectory() as tmp:
...     for day in ("2024-05-01", "2024-05-03", "2024-05-10"):
...         (Path(tmp) / f"date={day}").mkdir()
...     planned = delete_expired([Path(tmp)], days=7, now=now, dry_run=True)
...     deleted = delete_expired([Path(tmp)], days=7, now=now)
...     left = sorted(path.name for path in Path(tmp).iterdir())
>>> [path.name for path in planned] == [path.name for path in deleted] == ["date=2024-05-01"]
True
>>> left
['date=2024-05-03', 'date=2024-05-10']
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path

from experiments.logs.schema import PARTITION_COLUMN
from liftgate.core.errors import InputError
from liftgate.core.jsonstate import fsync_directory, locked

_PREFIX = f"{PARTITION_COLUMN}="
_EXPIRED_SUFFIX = ".expired"


def oldest_kept(now: dt.datetime, days: int) -> dt.date:
    """The oldest partition date that a retention of ``days`` keeps at ``now``: the UTC
    date ``days`` days before today's. ``days`` is at least 1, so today's partition and
    yesterday's (which still holds rows younger than a day) are always kept.

    >>> oldest_kept(dt.datetime(2024, 5, 10, 23, 59, tzinfo=dt.UTC), 7)
    datetime.date(2024, 5, 3)
    >>> oldest_kept(dt.datetime(2024, 3, 1, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))), 1)
    datetime.date(2024, 2, 28)
    """
    if days < 1:
        raise InputError(f"expected a whole number of days >= 1; got {days}", parameter="days")
    if now.tzinfo is None:
        raise ValueError(f"{now!r} must be timezone-aware")
    return now.astimezone(dt.UTC).date() - dt.timedelta(days=days)


def expired_partitions(directory: Path, days: int, now: dt.datetime) -> list[Path]:
    """The partition directories of the dataset in ``directory`` dated before
    :func:`oldest_kept`, oldest first (other entries are not partitions: ignored)."""
    cutoff = oldest_kept(now, days)
    if not Path(directory).is_dir():
        return []
    expired = []
    for entry in sorted(Path(directory).iterdir()):
        date = _partition_date(entry)
        if date is not None and date < cutoff:
            expired.append(entry)
    return expired


def delete_expired(
    directories: Iterable[Path], days: int, now: dt.datetime, *, dry_run: bool = False
) -> list[Path]:
    """Delete the expired partitions of each dataset (see the module); return them. With
    ``dry_run``, return what would be deleted and delete nothing."""
    deleted = []
    for directory in directories:
        directory = Path(directory)
        if dry_run:
            deleted += expired_partitions(directory, days, now)
            continue
        if not directory.is_dir():
            continue
        with locked(directory):
            for hidden in directory.glob(f".{_PREFIX}*{_EXPIRED_SUFFIX}"):
                shutil.rmtree(hidden, ignore_errors=True)  # a crashed run's
            for partition in expired_partitions(directory, days, now):
                random = uuid.uuid4().hex[:8]
                hidden = partition.with_name(f".{partition.name}.{random}{_EXPIRED_SUFFIX}")
                os.replace(partition, hidden)
                fsync_directory(directory)
                shutil.rmtree(hidden)
                deleted.append(partition)
    return deleted


def _partition_date(entry: Path) -> dt.date | None:
    if not entry.is_dir() or not entry.name.startswith(_PREFIX):
        return None
    try:
        return dt.date.fromisoformat(entry.name.removeprefix(_PREFIX))
    except ValueError:
        return None
