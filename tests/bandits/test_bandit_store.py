"""The shared state file of a served bandit (experiments/bandits/store.py)."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from served_helpers import NOON, bandit_experiment, spec_of

from experiments.bandits.base import Batch
from experiments.bandits.store import BanditState, BanditStateError, BanditStore
from liftgate.core.home import Home


@pytest.fixture
def spec():
    return spec_of(bandit_experiment())


def test_state_round_trips_through_the_file(home: Home, spec) -> None:
    store = BanditStore(home, spec.name)
    with store.transaction(lambda: BanditState.initial(spec)) as state:
        state.policy.update(Batch(None, np.array([1, 2, 2]), np.array([1.0, 0.0, 1.0])))
        state.counts[[1, 2]] += [1, 2]
        state.watermark = NOON
    restored = BanditStore(home, spec.name).read()
    assert restored.policy.state_dict() == state.policy.state_dict()
    assert restored.watermark == NOON and restored.counts.tolist() == [0, 1, 2, 0, 0]
    assert restored.policy.n_updates_ == 3
    assert json.loads(store.path.read_text())["actions"] == list(spec.action_ids)
    assert not list(home.root.glob("bandits/.*.tmp"))  # the temp file was renamed into place


def test_readers_reload_only_when_the_file_changes(home: Home, spec) -> None:
    writer, reader = BanditStore(home, spec.name), BanditStore(home, spec.name)
    assert reader.read_if_changed() is None  # no file yet
    reader_state = reader.ensure(lambda: BanditState.initial(spec))
    assert reader_state.policy.n_updates_ == 0 and writer.path.exists()
    assert reader.read_if_changed() is None
    with writer.transaction(lambda: BanditState.initial(spec)) as state:
        state.policy.update(Batch(None, np.array([0]), np.array([1.0])))
    assert reader.read_if_changed().policy.n_updates_ == 1
    assert reader.read_if_changed() is None


def test_a_transaction_that_changes_nothing_does_not_rewrite(home: Home, spec) -> None:
    store = BanditStore(home, spec.name)
    store.ensure(lambda: BanditState.initial(spec))
    before = store.path.stat()
    with store.transaction(lambda: BanditState.initial(spec)):
        pass
    after = store.path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_failed_transaction_writes_nothing(home: Home, spec) -> None:
    store = BanditStore(home, spec.name)
    with pytest.raises(RuntimeError), store.transaction(lambda: BanditState.initial(spec)) as s:
        s.counts[0] += 1
        raise RuntimeError("boom")
    assert not store.path.exists()


def test_concurrent_writers_serialise_on_the_lock(home: Home, spec) -> None:
    def add_one() -> None:
        store = BanditStore(home, spec.name)
        for _ in range(5):
            with store.transaction(lambda: BanditState.initial(spec)) as state:
                state.counts[0] += 1

    threads = [threading.Thread(target=add_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert BanditStore(home, spec.name).read().counts[0] == 20


def test_a_corrupt_file_is_an_error_naming_it(home: Home, spec) -> None:
    store = BanditStore(home, spec.name)
    store.path.parent.mkdir(parents=True)
    store.path.write_text("{not json")
    with pytest.raises(BanditStateError, match=str(store.path)):
        store.read()
