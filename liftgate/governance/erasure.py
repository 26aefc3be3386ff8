"""Erasing rows from Parquet files in place: each affected file is replaced whole, atomically.

:func:`erase_from_dataset` removes the rows that match (a :data:`Match`: one of the
values in any of the columns named) from every Parquet file of a dataset directory (a log:
``date=…/part-….parquet``); :func:`erase_from_file` does it for one file (the online
store's ``customers.parquet``).
A file with a matching row is rewritten without it: the kept rows go to a temporary file
beside it (``.<name>.<random>.erasing``, hidden from readers by its ``.``), which is
fsynced and renamed over the original, and the directory is fsynced
(:func:`experiments.logs.parquet_files.write_file`); a dataset file left with no row is
deleted instead. A file without a match is not touched (not even opened for writing), so
its inode and mtime stay.

So a crash at any point leaves every file whole, either old or new, and running the
erasure again finishes it: the files already rewritten have no match left. A temporary
file that a crash left is removed by the next run. Runs on the same dataset (and
retention, :mod:`liftgate.governance.retention`) take turns under one lock
(:func:`liftgate.core.jsonstate.locked` on the directory), so one never removes the
temporary file of another. Log writers only ever add new files, never rewrite one, so
they need no lock; the rows they still hold in write-ahead segments are the business of
:mod:`liftgate.governance.log_erasure`.

>>> import tempfile
>>> import pyarrow as pa, pyarrow.parquet as pq
>>> with tempfile.TemporaryDirectory() as tmp:
...     partition = Path(tmp) / "date=2024-05-01"
...     partition.mkdir()
...     pq.write_table(pa.table({"customer_id": ["c1", "c2"]}), partition / "part-a.parquet")
...     pq.write_table(pa.table({"customer_id": ["c1"]}), partition / "part-b.parquet")
...     pq.write_table(pa.table({"customer_id": ["c3"]}), partition / "part-c.parquet")
...     first = erase_from_dataset(Path(tmp), {"customer_id": {"c1"}})
...     again = erase_from_dataset(Path(tmp), {"customer_id": {"c1"}})
...     left = pq.read_table(partition / "part-a.parquet")["customer_id"].to_pylist()
>>> first.rows, [p.name for p in first.rewritten], [p.name for p in first.deleted], left
(2, ['part-a.parquet'], ['part-b.parquet'], ['c2'])
>>> again.rows, again.rewritten, again.deleted
(0, (), ())
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from functools import reduce
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from experiments.logs.parquet_files import write_file
from liftgate.core.errors import InputError
from liftgate.core.jsonstate import fsync_directory, locked

#: The suffix of erasure's temporary files; a crash leaves them, the next run removes them.
TEMPORARY_SUFFIX = ".erasing"

#: The rows to erase: those whose value in any of these columns is one of its values.
Match = Mapping[str, Collection[str]]


@dataclass(frozen=True)
class FileRewrite:
    """What an erasure did to a dataset: the files rewritten without the matching rows,
    the files deleted (every row matched), and the rows removed in all."""

    rewritten: tuple[Path, ...] = ()
    deleted: tuple[Path, ...] = ()
    rows: int = 0

    def to_json(self) -> dict:
        return {
            "rows": self.rows,
            "files_rewritten": [str(path) for path in self.rewritten],
            "files_deleted": [str(path) for path in self.deleted],
        }


class _Change(Enum):
    UNTOUCHED = "untouched"
    REWRITTEN = "rewritten"
    DELETED = "deleted"


def erase_from_dataset(directory: Path, match: Match) -> FileRewrite:
    """Remove the rows that ``match`` from every Parquet file under ``directory`` (not
    ``_wal/`` nor hidden files), file by file; see the module."""
    directory = Path(directory)
    wanted = _value_sets(match)
    if not wanted or not directory.is_dir():
        return FileRewrite()
    rewritten, deleted, rows = [], [], 0
    with locked(directory):
        remove_leftovers(directory)
        for path in _data_files(directory):
            change, removed = _erase(path, wanted, delete_if_empty=True)
            rows += removed
            if change is _Change.REWRITTEN:
                rewritten.append(path)
            elif change is _Change.DELETED:
                deleted.append(path)
    return FileRewrite(tuple(rewritten), tuple(deleted), rows)


def erase_from_file(path: Path, column: str, values: Collection[str]) -> int:
    """Remove the rows whose ``column`` is in ``values`` from the Parquet file at ``path``
    (kept, even with no row left: its readers expect it); return the rows removed. A
    missing file has none."""
    path = Path(path)
    wanted = _value_sets({column: values})
    if not wanted or not path.is_file():
        return 0
    with locked(path):
        remove_leftovers(path.parent, recursive=False)
        return _erase(path, wanted, delete_if_empty=False)[1]


def remove_leftovers(directory: Path, *, recursive: bool = True) -> list[Path]:
    """Remove the temporary files of erasures that crashed (under the directory's lock)."""
    pattern = f".*{TEMPORARY_SUFFIX}"
    found = directory.rglob(pattern) if recursive else directory.glob(pattern)
    leftovers = sorted(found)
    for leftover in leftovers:
        leftover.unlink(missing_ok=True)
    return leftovers


def _value_sets(match: Match) -> dict[str, pa.Array]:
    """The match as Arrow value sets; columns without values match nothing: left out."""
    return {
        column: pa.array(sorted(values), pa.string()) for column, values in match.items() if values
    }


def _data_files(directory: Path) -> Iterator[Path]:
    """The dataset's Parquet files, as readers see them: no part of the path under
    ``directory`` starts with ``.`` (temporary files) or ``_`` (``_wal/``)."""
    for path in sorted(directory.rglob("*.parquet")):
        parts = path.relative_to(directory).parts
        if not any(part.startswith((".", "_")) for part in parts):
            yield path


def _erase(
    path: Path, wanted: dict[str, pa.Array], *, delete_if_empty: bool
) -> tuple[_Change, int]:
    try:
        with pq.ParquetFile(path) as parquet:
            missing = sorted(set(wanted) - set(parquet.schema_arrow.names))
            if missing:
                raise InputError(f"{path}: expected the column(s) {missing} to erase by")
            # The key columns alone first: most files hold no matching row, and stay untouched.
            keys = parquet.read(columns=list(wanted))
            matches = reduce(
                pc.or_, (pc.is_in(keys[column], value_set=wanted[column]) for column in wanted)
            )
            removed = pc.sum(matches).as_py() or 0
            if not removed:
                return _Change.UNTOUCHED, 0
            table = parquet.read()
    except FileNotFoundError:  # deleted meanwhile (retention): nothing left to erase
        return _Change.UNTOUCHED, 0
    kept = table.filter(pc.invert(matches))
    if kept.num_rows == 0 and delete_if_empty:
        path.unlink()
        fsync_directory(path.parent)
        return _Change.DELETED, removed
    write_file(kept, path, suffix=TEMPORARY_SUFFIX)
    return _Change.REWRITTEN, removed
