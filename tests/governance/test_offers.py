"""The offers index (liftgate/governance/offers.py): one shard per writing process, found by
any reader, new shards seen, erased and pruned across shards; a dead writer's shard goes
once it is empty, a live writer's stays."""

from __future__ import annotations

import datetime as dt
import sqlite3
import subprocess
import sys
import time
from contextlib import closing

import pytest

from liftgate.governance import offers
from liftgate.governance.offers import OfferIndex

NOON = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)


@pytest.fixture
def directory(home):
    return home.offers


def test_a_reader_finds_what_any_writer_recorded(directory) -> None:
    first, second = OfferIndex.writer(directory), OfferIndex.writer(directory)
    reader = OfferIndex.reader(directory)
    first.record("d1", "c1", ["email_10", "no_action"], NOON)
    assert reader.find("d1").actions == ("email_10", "no_action")
    second.record("d2", "c2", ["push_reminder"], NOON + dt.timedelta(seconds=1))
    offer = reader.find("d2")
    assert (offer.customer_id, offer.ts) == ("c2", NOON + dt.timedelta(seconds=1))
    assert reader.find("unknown") is None
    for part in (first, second, reader):
        part.close()


def test_a_shard_created_after_the_reader_opened_is_seen(directory) -> None:
    reader = OfferIndex.reader(directory)
    assert reader.find("d1") is None  # no directory yet
    writer = OfferIndex.writer(directory)
    writer.record("d1", "c1", ["email_10"], NOON)
    assert reader.find("d1") is not None
    writer.close()
    reader.close()


def test_erase_deletes_a_customers_offers_in_every_shard(directory) -> None:
    writers = [OfferIndex.writer(directory) for _ in range(3)]
    for i, writer in enumerate(writers):
        writer.record(f"mine{i}", "c1", ["email_10"], NOON)
        writer.record(f"theirs{i}", "c2", ["email_10"], NOON)
    reader = OfferIndex.reader(directory)
    assert reader.erase("c1") == 3
    assert [reader.find(f"mine{i}") for i in range(3)] == [None] * 3
    assert all(reader.find(f"theirs{i}") for i in range(3))
    for part in (*writers, reader):
        part.close()


def _dead_writer(directory, decision_id: str) -> None:
    """A writer in a process that dies without closing anything."""
    code = (
        "import datetime as dt, os, sys; from pathlib import Path;"
        "from liftgate.governance.offers import OfferIndex;"
        "w = OfferIndex.writer(Path(sys.argv[1]));"
        "w.record(sys.argv[2], 'c1', ['email_10'], dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC));"
        "os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", code, str(directory), decision_id], check=True)


def test_prune_deletes_old_offers_and_the_emptied_shards_of_dead_writers(directory) -> None:
    _dead_writer(directory, "old-dead")
    live = OfferIndex.writer(directory)
    live.record("old-live", "c1", ["email_10"], NOON)
    live.record("new-live", "c1", ["email_10"], NOON + dt.timedelta(days=2))
    reader = OfferIndex.reader(directory)
    assert reader.find("old-dead") is not None  # a dead writer's offers are still found
    assert reader.prune(older_than=NOON + dt.timedelta(days=1)) == 2
    assert reader.find("old-dead") is None and reader.find("old-live") is None
    assert reader.find("new-live") is not None
    assert {path.stem.split(".")[0] for path in directory.iterdir()} == {live.path.stem}
    live.close()
    assert reader.prune(older_than=NOON + dt.timedelta(days=3)) == 1
    assert list(directory.iterdir()) == []  # closed, then emptied: gone
    reader.close()


def test_a_shard_deleted_by_another_reader_is_forgotten(directory) -> None:
    _dead_writer(directory, "d1")
    mine, other = OfferIndex.reader(directory), OfferIndex.reader(directory)
    assert mine.find("d1") is not None
    other.prune(older_than=NOON + dt.timedelta(days=1))
    assert mine.find("d1") is None and mine.find("d2") is None
    assert mine.erase("c1") == 0
    mine.close()
    other.close()


# --- the journal: one append on the decision path, moved into the shard by a thread ----------


def _journals(directory) -> list:
    return sorted(directory.glob(f"*{offers.JOURNAL_SUFFIX}"))


def _shard_rows(path) -> list[tuple]:
    with closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT decision_id, customer_id FROM offers").fetchall()


def test_an_offer_is_found_in_its_journal_then_in_the_shard(directory) -> None:
    writer, reader = OfferIndex.writer(directory), OfferIndex.reader(directory)
    writer.record("d1", "c1", ["email_10"], NOON)
    assert reader.find("d1").customer_id == "c1"  # before the move: from the journal
    offers._drain_journals(directory)  # a live writer's: waited for
    assert _shard_rows(writer.path) == [("d1", "c1")]
    assert reader.find("d1").actions == ("email_10",)
    writer.close()
    reader.close()
    assert _journals(directory) == []


def test_a_journal_line_a_crash_cut_short_is_no_offer(directory) -> None:
    _dead_writer(directory, "whole")
    (journal,) = _journals(directory)
    with journal.open("ab") as tail:
        tail.write(b'["torn","c1","email_10",17')  # the crash came mid-append
    reader = OfferIndex.reader(directory)
    assert reader.find("whole") is not None and reader.find("torn") is None
    assert reader.prune(older_than=NOON - dt.timedelta(days=1)) == 0  # moves the journal
    assert _journals(directory) == [] and reader.find("whole") is not None
    reader.close()


def test_a_journal_moved_twice_is_one_offer(directory) -> None:
    """A writer that dies between its move and the journal's deletion leaves offers that
    are in its shard already: moved again, they stay one each."""
    _dead_writer(directory, "d1")
    (journal,) = _journals(directory)
    copy = journal.read_bytes()
    reader = OfferIndex.reader(directory)
    reader.prune(older_than=NOON - dt.timedelta(days=1))
    journal.write_bytes(copy)
    reader.prune(older_than=NOON - dt.timedelta(days=1))
    (shard,) = directory.glob("*.db")
    assert _shard_rows(shard) == [("d1", "c1")]
    reader.close()


def test_a_failed_move_is_retried_and_its_offers_found_meanwhile(directory, monkeypatch) -> None:
    failures = []
    insert = offers._insert

    def fail_once(db, lines):
        if not failures:
            failures.append(len(lines))
            raise sqlite3.OperationalError("disk I/O error")
        insert(db, lines)

    monkeypatch.setattr(offers, "_insert", fail_once)
    writer, reader = OfferIndex.writer(directory), OfferIndex.reader(directory)
    writer.record("d1", "c1", ["email_10"], NOON)
    deadline = time.monotonic() + 10
    while not failures and time.monotonic() < deadline:
        time.sleep(0.01)
    assert failures and reader.find("d1") is not None
    offers._drain_journals(directory)
    assert _shard_rows(writer.path) == [("d1", "c1")]
    writer.close()
    reader.close()


def test_erasure_does_not_wait_for_ever_for_a_stuck_writer(directory, monkeypatch) -> None:
    monkeypatch.setattr(offers, "DRAIN_TIMEOUT_S", 0.2)
    writer = OfferIndex.writer(directory)
    writer._closing = True  # its mover stops: the journal stays
    writer._due.set()
    writer._mover.join()
    writer.record("d1", "c1", ["email_10"], NOON)
    reader = OfferIndex.reader(directory)
    with pytest.raises(TimeoutError, match="not moved"):
        reader.erase("c1")
    writer.close()  # moves what is left
    assert reader.erase("c1") == 1
    reader.close()


def test_prune_removes_a_dead_writers_empty_journal_with_its_shard(directory) -> None:
    code = (
        "import os, sys; from pathlib import Path;"
        "from liftgate.governance.offers import OfferIndex;"
        "OfferIndex.writer(Path(sys.argv[1])); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", code, str(directory)], check=True)
    assert len(_journals(directory)) == 1  # created with its writer, never written to
    reader = OfferIndex.reader(directory)
    assert reader.prune(older_than=NOON) == 0
    assert list(directory.iterdir()) == []
    reader.close()
