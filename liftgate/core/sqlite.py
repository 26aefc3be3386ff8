"""A SQLite file that several processes and threads share: one connection, one lock, and
write transactions that take the write lock first.

The stores under LIFTGATE_HOME (actions, consent, creatives, the outcome ledger, API keys)
are small SQLite files that replicas, the delivery worker and `liftgate` commands open at
the same time. `SharedDatabase` opens each the same way:

- the parent directory is created, then one connection for the process, used by one thread
  at a time (a `threading.Lock`: a sqlite3 connection must not run two statements at once);
- autocommit (``isolation_level=None``): a statement outside `write` is a transaction of its
  own and sees every commit before it; the sqlite3 module never opens one behind our back;
- WAL journal (the default): readers never wait for the writer, nor the writer for them
  (processes that open a new file at once wait for each other's switch to WAL);
- ``synchronous``: ``FULL`` fsyncs every commit (an answered commit survives a power cut),
  ``NORMAL`` only at checkpoints in WAL (a commit survives the crash of the process; a power
  cut may lose the last ones), ``OFF`` never;
- a busy timeout: a writer waits for another process's write lock instead of failing;
- `write` begins with ``BEGIN IMMEDIATE``, which takes the write lock before the first read:
  what the block reads, no other process changes before it commits (a read-modify-write
  across processes). A deferred BEGIN would take it at the first write and fail there, at
  once, if another process had committed since the block read;
- the schema (``CREATE … IF NOT EXISTS``) runs at each opening, in such a transaction, so
  processes that open a new file at the same moment do not race to create its tables.

>>> import tempfile
>>> schema = "CREATE TABLE IF NOT EXISTS counts (n INTEGER NOT NULL)"
>>> with tempfile.TemporaryDirectory() as directory:
...     with SharedDatabase(Path(directory) / "new" / "counts.db", schema) as database:
...         with database.write() as db:
...             _ = db.execute("INSERT INTO counts VALUES (1)")
...         try:
...             with database.write() as db:
...                 _ = db.execute("INSERT INTO counts VALUES (2)")
...                 raise RuntimeError("not committed")
...         except RuntimeError:
...             pass
...         with database.read() as db:
...             rows = db.execute("SELECT n FROM counts").fetchall()
...             journal = db.execute("PRAGMA journal_mode").fetchone()
>>> rows, journal
([(1,)], ('wal',))
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

Synchronous = Literal["FULL", "NORMAL", "OFF"]
#: WAL, unless a reader depends on the rollback journal (the API keys: `serving.api_keys`
#: sees a commit in the file header's change counter, which WAL commits leave alone).
JournalMode = Literal["WAL", "DELETE"]
#: How long an opener waits before it asks again for the lock that a journal mode change takes.
_RETRY_S = 0.01


def _set_journal_mode(db: sqlite3.Connection, mode: JournalMode, busy_timeout_s: float) -> None:
    # Processes opening a new file at the same moment all try to switch it to WAL, which takes
    # an exclusive lock; SQLite answers "database is locked" at once, without waiting out the
    # busy timeout, to the one that would otherwise deadlock. So wait here, as long.
    deadline = time.monotonic() + busy_timeout_s
    while True:
        try:
            db.execute(f"PRAGMA journal_mode={mode}")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(_RETRY_S)


class SharedDatabase:
    """The SQLite file at `path` (created, with its directory, if missing), `schema` run on
    it; the module's docstring says how it is opened and why."""

    def __init__(
        self,
        path: Path,
        schema: str,
        *,
        synchronous: Synchronous = "NORMAL",
        journal_mode: JournalMode = "WAL",
        busy_timeout_s: float = 10.0,
    ):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        self._lock = threading.Lock()
        with self._lock:
            _set_journal_mode(self._db, journal_mode, busy_timeout_s)
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.executescript(f"BEGIN IMMEDIATE; {schema}; COMMIT;")

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A transaction that holds the write lock from its first statement: committed if
        the block completes, rolled back if it raises."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """The connection, for this thread alone during the block. Each statement is its own
        transaction: reads, and a write that is one statement with nothing read before it."""
        with self._lock:
            yield self._db

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> SharedDatabase:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
