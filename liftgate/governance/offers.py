"""What each decision offered: the index a commit checks "this decision exists, is not expired
and offered this action as eligible" against, on any replica.

Every `/v1/decide` records one offer (decision id, customer, the eligible actions, the time)
right after its decision is logged and before its answer, so the write sits on the decision's
hot path. Each writing process has files of its own under ``Home.offers``, so no two processes
ever contend for a lock:

- a *journal* (``<writer>.<n>.journal``): `OfferWriter.record` appends the offer to it as one
  JSON line, one ``write(2)``: from then on it survives the death of the process and every
  process can read it;
- a SQLite *shard* (``<writer>.db``, WAL mode, ``synchronous=NORMAL``): the writer's thread
  moves each journal into it in one statement, every `MOVE_INTERVAL_S` or `MOVE_EVERY`
  offers, then deletes the journal.

An INSERT a decision cost 22–27 µs here (eight system calls: SQLite's locks and a 4 KiB WAL
frame for a 100-byte row); the journal's append costs 3 µs (``cd load_tests &&
../.venv/bin/python -m harness.pieces --home DIR``).

A reader (the action service, on every replica) searches every shard, keeps its connections,
and lists the directory again when an id is not found, so a shard created since is seen; for
an id no shard has, it reads the journals (a few hundred lines each), then the shards again:
an offer moved meanwhile is in a shard by the time its journal is gone.

A writer holds a `flock` on ``<writer>.lock`` for as long as it lives (the kernel drops it
however the process dies), so a reader can tell the files of dead writers: `erase` and
`prune` first move the journals of dead writers into their shards themselves, and wait (at
most `DRAIN_TIMEOUT_S`) for live writers to move theirs, so that they see every offer
recorded before they began; a dead writer's shard is deleted once pruning has emptied it.
They find their rows by a scan without a lock (WAL readers take none), then delete them by
decision id in short transactions: an index on the customer or the time would make every
move dearer, and these are rare, off the decision path.

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
import logging
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic_core import from_json, to_json

logger = logging.getLogger(__name__)

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
_MICROSECOND = dt.timedelta(microseconds=1)
_BUSY_TIMEOUT_S = 10.0
#: How often a writer moves its journal into its shard, at the latest, and after how many
#: offers at the earliest: a journal stays small for readers to search (at 2,000 decisions a
#: second, 500 lines), and the shard gets one transaction for hundreds of offers.
MOVE_INTERVAL_S = 0.25
MOVE_EVERY = 1_000
#: How long `erase` and `prune` wait for live writers to move their journals.
DRAIN_TIMEOUT_S = 30.0
JOURNAL_SUFFIX = ".journal"
_MOVE = """
INSERT OR IGNORE INTO offers
SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each(?)
"""
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
    return (moment - _EPOCH) // _MICROSECOND


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


class _Journal:
    """A journal file being appended to, and the lines appended (to move them unread)."""

    def __init__(self, path: Path):
        self.path = path
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND
        self.descriptor = os.open(path, flags, 0o644)
        self.lines: list[bytes] = []

    def close(self, *, delete: bool) -> None:
        if delete:
            self.path.unlink(missing_ok=True)
        os.close(self.descriptor)


class OfferWriter:
    """One process's journal and shard: `record` a decision's offer; a thread moves the
    journal into the shard. Thread-safe."""

    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self.name = secrets.token_hex(8)
        # The lock first: a reader sees only ``.db`` files, each with its writer's lock held.
        self._lock_file = (directory / f"{self.name}.lock").open("a")
        fcntl.flock(self._lock_file, fcntl.LOCK_EX)
        self.path = directory / f"{self.name}.db"
        self._db = _connect(self.path, create=True)
        self._journals = 0
        self._journal = self._next_journal()
        self._unmoved: list[_Journal] = []  # closed journals a failed move left behind
        self._lock = threading.Lock()  # the journal being appended to
        self._due = threading.Event()
        self._closing = False
        self._mover = threading.Thread(target=self._move_loop, name="offers", daemon=True)
        self._mover.start()

    def record(
        self, decision_id: str, customer_id: str, actions: Sequence[str], ts: dt.datetime
    ) -> None:
        """What `decision_id` offered `customer_id` at `ts`: one line appended to the
        journal (an OSError if it cannot be written)."""
        line = to_json((decision_id, customer_id, _SEPARATOR.join(actions), _micros(ts)))
        line += b"\n"
        with self._lock:
            journal = self._journal
            os.write(journal.descriptor, line)  # a short write to a regular file: whole
            journal.lines.append(line)
            due = len(journal.lines) >= MOVE_EVERY
        if due:
            self._due.set()

    def _next_journal(self) -> _Journal:
        self._journals += 1
        return _Journal(self.path.with_name(f"{self.name}.{self._journals}{JOURNAL_SUFFIX}"))

    def _move_loop(self) -> None:
        while not self._closing:
            self._due.wait(MOVE_INTERVAL_S)
            self._due.clear()
            self._move()

    def _move(self) -> None:
        """Move the journal's offers into the shard (and any a failed move left), then
        delete it; a new journal takes the next offers."""
        if self._journal.lines:
            fresh = self._next_journal()  # opened here, not on the decision path
            with self._lock:
                full, self._journal = self._journal, fresh
            self._unmoved.append(full)
        while self._unmoved:
            journal = self._unmoved[0]
            try:
                _insert(self._db, journal.lines)
            except sqlite3.Error:  # kept, found by readers in its file; retried next time
                logger.exception("moving the offers of %s into %s failed", journal.path, self.path)
                return
            journal.close(delete=True)
            self._unmoved.pop(0)

    def close(self) -> None:
        self._closing = True
        self._due.set()
        self._mover.join()
        self._move()  # leaves the journal appended to empty
        self._journal.close(delete=not self._journal.lines)
        for journal in self._unmoved:  # in their files: the next reader's drain moves them
            journal.close(delete=False)
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
        """The offer of `decision_id`, or None if no shard or journal has it."""
        with self._lock:
            offer = _search(list(self._shards.values()), decision_id)
            if offer is None:
                offer = _search_journals(self.directory, decision_id)
            if offer is None:  # moved since the first search, or in a new shard
                self._relist()
                offer = _search(list(self._shards.values()), decision_id)
            return offer

    def erase(self, customer_id: str) -> int:
        """Delete every offer to `customer_id` recorded before the call, in every shard;
        the number deleted."""
        _drain_journals(self.directory)
        return self._delete("customer_id = ?", customer_id)

    def prune(self, older_than: dt.datetime) -> int:
        """Delete offers made before `older_than` (commits of their decisions would be
        refused as expired anyway), and the shards of dead writers left empty; the number of
        offers deleted."""
        _drain_journals(self.directory)
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


def _insert(db: sqlite3.Connection, lines: Sequence[bytes]) -> None:
    """Journal lines into a shard, one statement (SQLite reads the lines as one JSON array);
    offers already there (a move cut short by a crash) are left as they are."""
    array = b"[" + b",".join(line.rstrip(b"\n") for line in lines) + b"]"
    db.execute(_MOVE, (array.decode(),))


def _offer(line: bytes) -> Offer:
    decision_id, customer_id, actions, ts = from_json(line)
    return Offer(decision_id, customer_id, tuple(actions.split(_SEPARATOR)), _moment(ts))


def _lines(journal: Path) -> list[bytes]:
    """The whole lines of a journal (a line a crash cut short is no offer: the decision it
    belonged to was never answered); none if it is gone."""
    try:
        data = journal.read_bytes()
    except FileNotFoundError:  # moved into its shard meanwhile
        return []
    return data.split(b"\n")[:-1]


def _search_journals(directory: Path, decision_id: str) -> Offer | None:
    start = b'["' + decision_id.encode() + b'",'
    for journal in directory.glob(f"*{JOURNAL_SUFFIX}"):
        for line in _lines(journal):
            if line.startswith(start):
                return _offer(line)
    return None


def _drain_journals(directory: Path) -> None:
    """Return once every journal that held offers on entry is in its shard: a dead
    writer's moved here, a live writer's waited for (a `TimeoutError` after
    `DRAIN_TIMEOUT_S`)."""
    waiting = {j for j in directory.glob(f"*{JOURNAL_SUFFIX}") if _has_offers(j)}
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while waiting := {j for j in waiting if j.exists() and not _moved_if_dead(j)}:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the offers of {sorted(waiting)} were not moved into shards")
        time.sleep(MOVE_INTERVAL_S / 5)


def _has_offers(journal: Path) -> bool:
    try:
        return journal.stat().st_size > 0
    except FileNotFoundError:
        return False


def _moved_if_dead(journal: Path) -> bool:
    """Move the journal into its writer's shard if the writer is dead (under its lock, so
    no one else moves it at once); whether it did."""
    name = journal.name.split(".")[0]
    try:
        handle = journal.with_name(f"{name}.lock").open("r")
    except FileNotFoundError:  # no writer left a lock: no one else moves it either
        handle = None
    try:
        if handle is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # alive: it moves its journals itself
        lines = _lines(journal)
        if lines:
            db = _connect(journal.with_name(f"{name}.db"), create=True)
            try:
                _insert(db, lines)
            finally:
                db.close()
        journal.unlink(missing_ok=True)
        return True
    finally:
        if handle is not None:
            handle.close()


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
    """Delete a dead writer's files: its shard, and its journals (empty ones: the others
    were moved into the shard first)."""
    journals = shard.parent.glob(f"{shard.stem}.*{JOURNAL_SUFFIX}")
    for path in (shard, Path(f"{shard}-wal"), Path(f"{shard}-shm"), *journals):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(shard.with_suffix(".lock"))  # last: the sign of a writer's files


class OfferIndex:
    """The offers under a directory (``Home.offers``): a process writes its own shard and
    reads them all."""

    @staticmethod
    def writer(directory: Path) -> OfferWriter:
        return OfferWriter(directory)

    @staticmethod
    def reader(directory: Path) -> OfferReader:
        return OfferReader(directory)
