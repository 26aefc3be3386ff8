"""The outbox worker over the action store: backoff, retries to a real receiver with one
idempotency key, final failures, expiry, send_at, and a delivery whose worker was killed is
delivered once its lease runs out."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from outbox_helpers import NOON, SETTINGS, queue_action
from webhook_receiver import Receiver

from configs.schema import DeliverySettings
from liftgate.governance.action_store import ActionStore
from liftgate.governance.connectors import DeliveryFailed, FileConnector, WebhookConnector
from liftgate.governance.outbox import OutboxWorker, retry_delay

CHILD = Path(__file__).with_name("outbox_child.py")


@given(
    attempts=st.integers(1, 120),
    backoff_s=st.floats(0.01, 100),
    max_backoff_s=st.floats(0.01, 1_000),
    max_attempts=st.integers(1, 100),
    action_id=st.text(max_size=20),
)
def test_backoff_doubles_up_to_its_cap_with_jitter_in_its_upper_half_until_attempts_run_out(
    attempts, backoff_s, max_backoff_s, max_attempts, action_id
):
    settings = DeliverySettings(
        backoff_s=backoff_s, max_backoff_s=max_backoff_s, max_attempts=max_attempts
    )
    delay = retry_delay(attempts, settings, action_id)
    if attempts >= max_attempts:
        assert delay is None
        return
    ceiling = min(backoff_s * 2.0 ** (attempts - 1), max_backoff_s)
    assert ceiling / 2 < delay <= ceiling
    assert delay == retry_delay(attempts, settings, action_id)  # replays exactly


def test_jitter_spreads_actions_that_failed_together():
    delays = {retry_delay(3, SETTINGS, f"a{i}") for i in range(100)}
    assert len(delays) == 100 and max(delays) - min(delays) > 1.5  # in (2, 4]


@pytest.fixture
def store(home):
    store = ActionStore(home.actions)
    yield store
    store.close()


class FailingConnector:
    def __init__(self, retryable: bool = True):
        self.retryable, self.calls = retryable, 0

    def deliver(self, delivery, payload) -> None:
        self.calls += 1
        raise DeliveryFailed("receiver down", retryable=self.retryable)


def webhook_worker(store: ActionStore, receiver: Receiver) -> OutboxWorker:
    return OutboxWorker(store, {"email": WebhookConnector(receiver.url, timeout_s=5)}, SETTINGS)


def statuses(store: ActionStore, action_id: str) -> list[str]:
    return [event["status"] for event in store.get(action_id)["history"]]


def last_detail(store: ActionStore, action_id: str) -> str:
    return store.get(action_id)["history"][-1]["detail"]


def test_a_receiver_failing_twice_gets_the_action_three_times_with_one_key(store, free_port):
    action_id = queue_action(store, "k1")
    with Receiver(free_port, statuses=[503, 500]) as receiver:
        worker = webhook_worker(store, receiver)
        now, rounds = NOON, []
        while store.get(action_id)["status"] == "queued" and len(rounds) < 10:
            rounds.append(worker.run_once(now))
            now += dt.timedelta(seconds=SETTINGS.max_backoff_s)
    assert [(r.retried, r.delivered) for r in rounds] == [(1, 0), (1, 0), (0, 1)]
    assert receiver.keys == ["k1"] * 3
    assert [body for _, body in receiver.requests] == [receiver.requests[0][1]] * 3
    assert statuses(store, action_id) == ["queued", "attempt_failed", "attempt_failed", "delivered"]


def test_a_retry_waits_for_its_backoff(store):
    action_id = queue_action(store)
    failing = FailingConnector()
    worker = OutboxWorker(store, {"email": failing}, SETTINGS)
    worker.run_once(NOON)
    delay = dt.timedelta(seconds=retry_delay(1, SETTINGS, action_id))
    assert worker.run_once(NOON + delay * 0.99).claimed == 0
    assert worker.run_once(NOON + delay).claimed == 1
    assert failing.calls == 2


def test_a_refusal_fails_at_once_without_retry(store, free_port):
    action_id = queue_action(store)
    with Receiver(free_port, statuses=[422]) as receiver:
        done = webhook_worker(store, receiver).run_once(NOON)
    assert (done.failed, done.retried, receiver.keys) == (1, 0, ["k1"])
    assert store.get(action_id)["status"] == "failed"
    assert "HTTP 422" in last_detail(store, action_id)


def test_retries_end_after_max_attempts(store):
    action_id = queue_action(store)
    failing = FailingConnector()
    worker = OutboxWorker(store, {"email": failing}, SETTINGS)
    for hour in range(10):
        worker.run_once(NOON + dt.timedelta(hours=hour))
    assert failing.calls == SETTINGS.max_attempts
    assert store.get(action_id)["status"] == "failed"
    assert "retries exhausted" in last_detail(store, action_id)


def test_an_expired_action_fails_unsent(store):
    action_id = queue_action(store, expires_at=NOON + dt.timedelta(minutes=5))
    failing = FailingConnector()
    worker = OutboxWorker(store, {"email": failing}, SETTINGS)
    done = worker.run_once(NOON + dt.timedelta(minutes=5))
    assert (done.expired, failing.calls) == (1, 0)
    assert store.get(action_id)["status"] == "failed"
    assert last_detail(store, action_id).endswith("expired")


def test_no_retry_is_planned_past_the_expiry(store):
    action_id = queue_action(store, expires_at=NOON + dt.timedelta(seconds=0.1))
    done = OutboxWorker(store, {"email": FailingConnector()}, SETTINGS).run_once(NOON)
    assert done.failed == 1 and "expires before a retry" in last_detail(store, action_id)


def test_an_action_waits_for_its_send_at(store):
    later = NOON + dt.timedelta(hours=2)
    action_id = queue_action(store, send_at=later)
    delivered = []
    worker = OutboxWorker(store, {"email": Recording(delivered)}, SETTINGS)
    assert worker.run_once(later - dt.timedelta(seconds=1)).claimed == 0
    assert worker.run_once(later).delivered == 1
    assert delivered == [action_id] and store.get(action_id)["status"] == "delivered"


def test_a_channel_without_a_connector_fails(store):
    action_id = queue_action(store, action="push_reminder", channel="push")
    assert OutboxWorker(store, {}, SETTINGS).run_once(NOON).failed == 1
    assert "no connector for channel 'push'" in last_detail(store, action_id)


class Recording:
    def __init__(self, delivered: list[str]):
        self.delivered = delivered

    def deliver(self, delivery, payload) -> None:
        self.delivered.append(delivery.action_id)


def test_the_worker_delivers_in_the_background_until_stopped(home, store, wait_until):
    action_id = queue_action(store)
    connector = FileConnector(home.deliveries / "email.jsonl")
    settings = SETTINGS.model_copy(update={"poll_s": 0.01})
    worker = OutboxWorker(store, {"email": connector}, settings, clock=lambda: NOON)
    stop, rounds = threading.Event(), []
    thread = threading.Thread(target=worker.run, args=(stop, rounds.append))
    thread.start()
    try:
        assert wait_until(lambda: store.get(action_id)["status"] == "delivered")
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive() and rounds[0].delivered == 1


def test_a_delivery_whose_worker_was_killed_is_delivered_after_its_lease(
    home, store, free_port, wait_until
):
    action_id = queue_action(store)
    hold = threading.Event()  # the receiver holds requests: the child is killed mid-delivery
    with Receiver(free_port, hold=hold) as receiver:
        child = subprocess.Popen([sys.executable, str(CHILD), str(home.actions), receiver.url])
        try:
            assert wait_until(lambda: receiver.keys == ["k1"], timeout_s=30)
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait()
        hold.set()
        worker = webhook_worker(store, receiver)
        lease = dt.timedelta(seconds=SETTINGS.lease_s)
        assert worker.run_once(NOON + lease - dt.timedelta(seconds=1)).claimed == 0  # leased
        done = worker.run_once(NOON + lease + dt.timedelta(seconds=1))
    assert done.delivered == 1 and receiver.keys == ["k1", "k1"]
    assert statuses(store, action_id) == ["queued", "delivered"]


def test_every_attempt_is_logged_with_what_became_of_it(home, store):
    from experiments.logs.reader import read_actions
    from experiments.logs.schema import ActionRecord
    from experiments.logs.writer import LogWriter

    action_id = queue_action(store)
    failing = FailingConnector()
    with LogWriter(home.action_log, ActionRecord) as log:
        worker = OutboxWorker(store, {"email": failing}, SETTINGS, log)
        worker.run_once(NOON)
        worker.connectors = {"email": Recording([])}
        worker.run_once(NOON + dt.timedelta(hours=1))
    logged = read_actions(home.action_log).sort_by("attempt").to_pylist()
    assert [(r["action_id"], r["attempt"], r["status"]) for r in logged] == [
        (action_id, 1, "attempt_failed"),
        (action_id, 2, "delivered"),
    ]
    assert logged[0]["detail"] == "receiver down" and logged[0]["idempotency_key"] == "k1"


def test_the_configured_worker_sends_an_approved_creatives_text(home):
    from configs.loader import load_config
    from liftgate.governance.creatives import CreativeStore
    from liftgate.governance.outbox import delivery_worker

    creatives = CreativeStore(home.creatives)
    creative = creatives.add("email_10", "Your 10% code inside", who="alice")
    creatives.review(creative.creative_id, True, "on brand", who="bob")
    creatives.close()
    with delivery_worker(load_config(), home) as worker:
        queue_action(worker.store, creative_id=creative.creative_id)
        assert worker.run_once(NOON).delivered == 1
    (line,) = (home.deliveries / "email.jsonl").read_text().splitlines()
    assert json.loads(line)["creative"] == {
        "id": creative.creative_id,
        "text": "Your 10% code inside",
    }


def test_a_round_that_outlasts_half_its_lease_leaves_the_rest_to_the_next(store):
    first, second = queue_action(store, "k1"), queue_action(store, "k2")
    delivered = []

    class Slow(Recording):
        def deliver(self, delivery, payload) -> None:
            time.sleep(0.02)  # longer than half of the lease below
            super().deliver(delivery, payload)

    settings = SETTINGS.model_copy(update={"lease_s": 0.02})
    worker = OutboxWorker(store, {"email": Slow(delivered)}, settings)
    assert (worker.run_once(NOON).delivered, worker.run_once(NOON).claimed) == (1, 0)
    done = worker.run_once(NOON + dt.timedelta(seconds=1))  # the lease ran out
    assert done.delivered == 1 and sorted(delivered) == sorted([first, second])
