"""The offers index (liftgate/governance/offers.py): one shard per writing process, found by
any reader, new shards seen, erased and pruned across shards; a dead writer's shard goes
once it is empty, a live writer's stays."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest

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
