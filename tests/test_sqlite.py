"""The shared SQLite adapter (liftgate/core/sqlite.py): set-up, write transactions, and
read-modify-writes that several processes run at once without losing one."""

from __future__ import annotations

import multiprocessing
import sqlite3
import time
from pathlib import Path

import pytest
from racing import race  # tests/, beside this file

from liftgate.core.sqlite import SharedDatabase

SCHEMA = "CREATE TABLE IF NOT EXISTS counter (n INTEGER NOT NULL)"
PROCESSES, ROUNDS = 4, 25


def pragma(database: SharedDatabase, name: str) -> object:
    with database.read() as db:
        return db.execute(f"PRAGMA {name}").fetchone()[0]


@pytest.mark.parametrize(
    ("synchronous", "level", "journal_mode"),
    [("FULL", 2, "WAL"), ("NORMAL", 1, "WAL"), ("OFF", 0, "DELETE")],
)
def test_the_file_is_opened_as_asked(tmp_path: Path, synchronous, level, journal_mode) -> None:
    path = tmp_path / "new" / "dir" / "store.db"
    with SharedDatabase(
        path, SCHEMA, synchronous=synchronous, journal_mode=journal_mode
    ) as database:
        assert pragma(database, "synchronous") == level
        assert pragma(database, "journal_mode") == journal_mode.lower()
        assert pragma(database, "busy_timeout") == 10_000
        with database.read() as db:
            assert not db.in_transaction  # autocommit outside `write`
            assert db.execute("SELECT COUNT(*) FROM counter").fetchone() == (0,)


def test_a_block_that_raises_writes_nothing(tmp_path: Path) -> None:
    with SharedDatabase(tmp_path / "store.db", SCHEMA) as database:
        with database.write() as db:
            db.execute("INSERT INTO counter VALUES (1)")
        with pytest.raises(KeyboardInterrupt), database.write() as db:
            db.execute("INSERT INTO counter VALUES (2)")
            raise KeyboardInterrupt  # any exception, not only errors
        with database.read() as db:
            assert db.execute("SELECT n FROM counter").fetchall() == [(1,)]
            assert not db.in_transaction


def test_a_write_holds_the_write_lock_from_its_first_statement(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with SharedDatabase(path, SCHEMA) as database, database.write() as db:
        db.execute("SELECT COUNT(*) FROM counter")  # only a read so far
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
            assert other.execute("SELECT COUNT(*) FROM counter").fetchone() == (0,)  # WAL
        finally:
            other.close()


def test_a_closed_database_refuses_work(tmp_path: Path) -> None:
    database = SharedDatabase(tmp_path / "store.db", SCHEMA)
    database.close()
    with pytest.raises(sqlite3.ProgrammingError), database.read() as db:
        db.execute("SELECT 1")


def increment(path: Path, start: multiprocessing.synchronize.Event) -> None:
    start.wait()
    with SharedDatabase(path, SCHEMA) as database:  # processes racing to create the file
        for _ in range(ROUNDS):
            with database.write() as db:
                (count,) = db.execute("SELECT COUNT(*) FROM counter").fetchone()
                time.sleep(0.001)  # a window for another writer, were it let in
                db.execute("INSERT INTO counter VALUES (?)", (count + 1,))


def test_concurrent_processes_lose_no_read_modify_write(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    assert race(increment, path, processes=PROCESSES) == [0] * PROCESSES
    with SharedDatabase(path, SCHEMA) as database, database.read() as db:
        counts = [n for (n,) in db.execute("SELECT n FROM counter ORDER BY rowid")]
    # Each insert counted every row before it: no two writers read the same count.
    assert counts == list(range(1, PROCESSES * ROUNDS + 1))
