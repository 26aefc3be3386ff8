"""What each decision offered: the index a commit checks "this decision exists, is not expired
and offered this action as eligible" against, on any replica.

Every `/v1/decide` writes one row (decision id, customer, the eligible actions, the time) right
after its decision is logged, so the write sits on the decision's hot path: each writing
process has a SQLite file of its own under ``Home.offers`` (``<random>.db``, WAL mode,
``synchronous=NORMAL``, one INSERT a decision: ~20 µs here), and no two processes ever
contend for a write lock. A reader (the action service, on every replica) searches every
shard, keeps its connections, and lists the directory again when an id is not found, so a
shard created since is seen.

A writer holds a `flock` on ``<random>.lock`` beside its shard for as long as it lives (the
kernel drops it however the process dies), so `OfferReader.prune` can tell the shards of dead
writers; a dead writer's shard is deleted once pruning has emptied it. `erase` and `prune`
find their rows by a scan without a lock (WAL readers take none), then delete them by
decision id in short transactions: an index on the customer or the time would make every
INSERT about twice as dear, and these are rare, off the decision path.

>>> import datetime as dt, tempfile
>>> noon = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)
>>> with tempfile.TemporaryDirectory() as directory:
...     writer = OfferIndex.writer(Path(directory))
...     writer.record("d1", "c1", ["email_10", "no_action"], noon)
...     reader = OfferIndex.reader(Path(directory))
...     found, missing = reader.find("d1"), reader.find("d2")
...     erased = reader.erase("c1")
...     writer.close(); reader.close()
>>> found.actions, found.ts == noon, missing, erased
(('email_10', 'no_action'), True, None, 1)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import secrets
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS offers (
    decision_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    actions TEXT NOT NULL,
    ts INTEGER NOT NULL
) WITHOUT ROWID
"""
#: Action ids are ``[a-z][a-z0-9_]*`` (configs/schema.py), so a comma cannot be part of one.
_SEPARATOR = ","
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_BUSY_TIMEOUT_S = 10.0
#: Rows deleted per transaction by `erase` and `prune`: short enough that a writer waiting
#: for the lock waits milliseconds.
_CHUNK = 500


@dataclass(frozen=True)
class Offer:
    """A decision as a commit checks it: who it was for, the actions it offered as eligible
    (ranked), and when it was made."""

    decision_id: str
    customer_id: str
    actions: tuple[str, ...]
    ts: dt.datetime


def _micros(moment: dt.datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} must be timezone-aware")
    return (moment - _EPOCH) // dt.timedelta(microseconds=1)


def _moment(micros: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=micros)


def _connect(path: Path, *, create: bool) -> sqlite3.Connection:
    # Autocommit: each INSERT is its own transaction, which WAL mode makes a single append.
    # mode=rw never creates a shard a pruner has just deleted.
    uri = f"file:{path}?mode={'rwc' if create else 'rw'}"
    connection = sqlite3.connect(
        uri, uri=True, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )
    connection.execute("PRAGMA journal_mode=WAL")
    # A commit survives the death of the process; a power cut may lose the last offers,
    # whose commits are then refused (`decision`), never wrongly accepted.
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute(_SCHEMA)
    return connection


class OfferWriter:
    """One process's shard: `record` a decision's offer. Not shared between threads without
    a lock of the caller's (the decision service calls it from its event loop)."""

    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        name = secrets.token_hex(8)
        # The lock first: a reader sees only ``.db`` files, each with its writer's lock held.
        self._lock_file = (directory / f"{name}.lock").open("a")
        fcntl.flock(self._lock_file, fcntl.LOCK_EX)
        self.path = directory / f"{name}.db"
        self._db = _connect(self.path, create=True)

    def record(
        self, decision_id: str, customer_id: str, actions: Sequence[str], ts: dt.datetime
    ) -> None:
        """What `decision_id` offered `customer_id` at `ts`: one INSERT."""
        self._db.execute(
            "INSERT INTO offers VALUES (?, ?, ?, ?)",
            (decision_id, customer_id, _SEPARATOR.join(actions), _micros(ts)),
        )

    def close(self) -> None:
        self._db.close()
        self._lock_file.close()  # the flock goes with it: the shard is a dead writer's now


class OfferReader:
    """Every shard of a directory: `find` an offer, `erase` a customer, `prune` old rows.
    Thread-safe."""

    def __init__(self, directory: Path):
        self.directory = directory
        self._shards: dict[Path, sqlite3.Connection] = {}
        self._lock = threading.Lock()

    def _relist(self) -> list[sqlite3.Connection]:
        """Open the shards created since the last listing, forget deleted ones; return the
        new connections."""
        present = set(self.directory.glob("*.db")) if self.directory.is_dir() else set()
        for gone in set(self._shards) - present:
            self._shards.pop(gone).close()
        opened = []
        for path in sorted(present - set(self._shards)):
            try:
                self._shards[path] = connection = _connect(path, create=False)
            except sqlite3.OperationalError:  # deleted by a pruner since the listing
                continue
            opened.append(connection)
        return opened

    def find(self, decision_id: str) -> Offer | None:
        """The offer of `decision_id`, or None if no shard has it."""
        with self._lock:
            offer = _search(list(self._shards.values()), decision_id)
            return offer if offer is not None else _search(self._relist(), decision_id)

    def erase(self, customer_id: str) -> int:
        """Delete every offer to `customer_id`, in every shard; the number deleted."""
        return self._delete("customer_id = ?", customer_id)

    def prune(self, older_than: dt.datetime) -> int:
        """Delete offers made before `older_than` (commits of their decisions would be
        refused as expired anyway), and the shards of dead writers left empty; the number of
        offers deleted."""
        deleted = self._delete("ts < ?", _micros(older_than))
        with self._lock:
            for path, connection in list(self._shards.items()):
                empty = connection.execute("SELECT 1 FROM offers LIMIT 1").fetchone() is None
                if empty and _writer_is_dead(path):
                    self._shards.pop(path).close()
                    _remove_shard(path)
        return deleted

    def _delete(self, condition: str, value: object) -> int:
        deleted = 0
        with self._lock:
            self._relist()
            for connection in self._shards.values():
                ids = [
                    row[0]
                    for row in connection.execute(
                        f"SELECT decision_id FROM offers WHERE {condition}", (value,)
                    )
                ]
                for start in range(0, len(ids), _CHUNK):
                    chunk = ids[start : start + _CHUNK]
                    marks = ", ".join("?" * len(chunk))
                    deleted += connection.execute(
                        f"DELETE FROM offers WHERE decision_id IN ({marks})", chunk
                    ).rowcount
        return deleted

    def close(self) -> None:
        with self._lock:
            for connection in self._shards.values():
                connection.close()
            self._shards.clear()


def _search(connections: list[sqlite3.Connection], decision_id: str) -> Offer | None:
    for connection in connections:
        row = connection.execute(
            "SELECT customer_id, actions, ts FROM offers WHERE decision_id = ?", (decision_id,)
        ).fetchone()
        if row is not None:
            customer_id, actions, ts = row
            return Offer(decision_id, customer_id, tuple(actions.split(_SEPARATOR)), _moment(ts))
    return None


def _writer_is_dead(shard: Path) -> bool:
    """Whether no process holds the shard's lock (a missing lock file: no writer either)."""
    try:
        handle = shard.with_suffix(".lock").open("r")
    except FileNotFoundError:
        return True
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


def _remove_shard(shard: Path) -> None:
    for path in (shard, Path(f"{shard}-wal"), Path(f"{shard}-shm"), shard.with_suffix(".lock")):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


class OfferIndex:
    """The offers under a directory (``Home.offers``): a process writes its own shard and
    reads them all."""

    @staticmethod
    def writer(directory: Path) -> OfferWriter:
        return OfferWriter(directory)

    @staticmethod
    def reader(directory: Path) -> OfferReader:
        return OfferReader(directory)
