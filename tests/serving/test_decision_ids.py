"""The decision-id key (serving/decision_ids.py): created once, whole, by whichever replica
starts first; every other replica reads the same key."""

from __future__ import annotations

import hmac
import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from liftgate.core.home import Home
from serving.decision_ids import DecisionIds

REPLICAS = 8
ROUNDS = 10  # fresh homes: the race is short, so it is run several times


def _start_replica(root: str, barrier, ids) -> None:
    barrier.wait()  # all replicas create the key at once
    ids.put(DecisionIds.for_home(Home(Path(root))).new())


def test_replicas_starting_together_on_a_fresh_home_share_one_key(tmp_path) -> None:
    context = multiprocessing.get_context("fork")
    for round_ in range(ROUNDS):
        home = Home(tmp_path / f"home{round_}")
        barrier, ids = context.Barrier(REPLICAS), context.Queue()
        replicas = [
            context.Process(target=_start_replica, args=(str(home.root), barrier, ids))
            for _ in range(REPLICAS)
        ]
        for replica in replicas:
            replica.start()
        issued = [ids.get(timeout=30) for _ in replicas]
        for replica in replicas:
            replica.join(timeout=30)
        key = DecisionIds.for_home(home)
        assert all(key.issued(decision_id) for decision_id in issued)
        assert len(home.decision_ids_key.read_bytes()) == 32
        assert [p.name for p in home.decision_ids_key.parent.iterdir()] == ["decision_ids.key"]


def test_a_truncated_key_is_refused_naming_the_file(tmp_path) -> None:
    home = Home(tmp_path)
    home.decision_ids_key.parent.mkdir(parents=True)
    home.decision_ids_key.write_bytes(b"")
    with pytest.raises(ValueError, match=r"decision_ids\.key: expected a 32-byte key"):
        DecisionIds.for_home(home)


def _earlier_mac(key: bytes, body: str) -> str:
    """The MAC as the first version of this format computed it."""
    return hmac.new(key, b"decision-id:time-random:" + body.encode(), "sha256").hexdigest()[:8]


def test_ids_keep_their_format_and_mac() -> None:
    """Ids issued before the MAC was computed from a kept HMAC state still verify, and new
    ones carry the same MAC."""
    key = bytes(range(32))
    ids = DecisionIds(key)
    body = "0190f1e2d3c4" + "ab" * 10
    assert ids.issued(body + _earlier_mac(key, body))
    fresh = ids.new()
    assert fresh[-8:] == _earlier_mac(key, fresh[:32])


def test_ids_issued_on_many_threads_are_all_different() -> None:
    """The random parts come from one buffer of kernel randomness: no two ids share one."""
    ids = DecisionIds(b"k" * 32)
    with ThreadPoolExecutor(max_workers=8) as pool:
        issued = list(pool.map(lambda _: [ids.new() for _ in range(2_000)], range(8)))
    flat = [decision_id for batch in issued for decision_id in batch]
    assert len({decision_id[12:32] for decision_id in flat}) == len(flat)
    assert all(ids.issued(decision_id) for decision_id in flat[:100])
