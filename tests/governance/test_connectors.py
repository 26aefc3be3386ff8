"""Connectors: the file connector's lines stay whole under concurrent workers and crashes;
the webhook sends the idempotency key and tells retryable failures from final ones."""

from __future__ import annotations

import json
import multiprocessing
import threading

import pytest
from outbox_helpers import make_delivery
from webhook_receiver import Receiver

from configs.schema import ChannelPolicy
from liftgate.governance.connectors import (
    DeliveryFailed,
    FileConnector,
    WebhookConnector,
    connector_for,
    connectors_for,
    payload_of,
)


def test_the_payload_names_the_action_its_key_its_reasons_and_the_creative():
    delivery = make_delivery("a7", creative_id="cr1")
    payload = payload_of(delivery, "Spring: 10 % off")
    assert payload == {
        "action_id": "a7",
        "idempotency_key": "key-a7",
        "decision_id": "decision-a7",
        "customer_id": "c0000042",
        "action": "email_10",
        "channel": "email",
        "campaign_id": "spring",
        "send_at": "2024-05-01T12:00:00+00:00",
        "creative": {"id": "cr1", "text": "Spring: 10 % off"},
    }
    assert "creative" not in payload_of(make_delivery())


def test_the_file_connector_appends_one_line_per_delivery_with_its_key(home):
    connector = connector_for("push", ChannelPolicy(), home)
    for action_id in ("a1", "a2"):
        delivery = make_delivery(action_id, channel="push")
        connector.deliver(delivery, payload_of(delivery))
    lines = (home.deliveries / "push.jsonl").read_text().splitlines()
    assert [json.loads(line)["idempotency_key"] for line in lines] == ["key-a1", "key-a2"]


def test_a_configured_file_lies_under_the_home(home):
    policy = ChannelPolicy.model_validate({"connector": {"kind": "file", "path": "out/mail.jsonl"}})
    connector = connector_for("email", policy, home)
    assert isinstance(connector, FileConnector) and connector.path == home.root / "out/mail.jsonl"


def test_a_line_torn_by_a_crash_stays_apart_from_the_next(home):
    path = home.deliveries / "email.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text('{"idempotency_key": "key-a0"}\n{"idempotency_ke')  # killed mid-line
    delivery = make_delivery()
    FileConnector(path).deliver(delivery, payload_of(delivery))
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[2])["idempotency_key"] == "key-a1"


def test_a_file_that_cannot_be_written_is_a_retryable_failure(home):
    home.root.joinpath("taken").write_text("a file, not a directory")
    connector = FileConnector(home.root / "taken" / "email.jsonl")
    with pytest.raises(DeliveryFailed) as failed:
        connector.deliver(make_delivery(), {})
    assert failed.value.retryable and "taken" in failed.value.detail


def _append_many(path, worker: int, count: int) -> None:
    connector = FileConnector(path)
    for i in range(count):
        delivery = make_delivery(f"w{worker}-{i}")
        # Long lines: several pages each, which unlocked appends would interleave.
        connector.deliver(delivery, payload_of(delivery, "x" * 20_000))


def test_concurrent_workers_write_whole_lines(home):
    path = home.deliveries / "email.jsonl"
    workers, count = 4, 40
    fork = multiprocessing.get_context("fork")
    processes = [fork.Process(target=_append_many, args=(path, w, count)) for w in range(workers)]
    threads = [threading.Thread(target=_append_many, args=(path, w, count)) for w in (8, 9)]
    for started in (*processes, *threads):
        started.start()
    for started in (*processes, *threads):
        started.join(timeout=60)
    assert all(process.exitcode == 0 for process in processes)
    keys = [json.loads(line)["idempotency_key"] for line in path.read_text().splitlines()]
    expected = {f"key-w{w}-{i}" for w in (*range(workers), 8, 9) for i in range(count)}
    assert len(keys) == len(expected) and set(keys) == expected


def test_the_webhook_posts_the_payload_with_the_idempotency_key(home, free_port):
    delivery = make_delivery()
    policy = ChannelPolicy.model_validate(
        {"connector": {"kind": "webhook", "url": f"http://127.0.0.1:{free_port}/hook"}}
    )
    with Receiver(free_port) as receiver:
        connector_for("email", policy, home).deliver(delivery, payload_of(delivery))
    assert receiver.requests == [("key-a1", payload_of(delivery))]


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(500, True), (503, True), (429, True), (408, True), (400, False), (404, False), (422, False)],
)
def test_webhook_answers_that_may_pass_later_are_retryable(free_port, status, retryable):
    receiver = Receiver(free_port, statuses=[status])
    with receiver, pytest.raises(DeliveryFailed) as failed:
        WebhookConnector(receiver.url, timeout_s=5).deliver(make_delivery(), {})
    assert failed.value.retryable is retryable
    assert f"HTTP {status}" in failed.value.detail and receiver.url in failed.value.detail


def test_an_unreachable_or_silent_receiver_is_retryable(free_port):
    with pytest.raises(DeliveryFailed) as refused:  # nothing listens on the port
        WebhookConnector(f"http://127.0.0.1:{free_port}/hook", timeout_s=5).deliver(
            make_delivery(), {}
        )
    assert refused.value.retryable and "ConnectError" in refused.value.detail
    silent_receiver = Receiver(free_port, hold=threading.Event())  # never answers in time
    with silent_receiver, pytest.raises(DeliveryFailed) as silent:
        WebhookConnector(silent_receiver.url, timeout_s=0.2).deliver(make_delivery(), {})
    assert silent.value.retryable and "Timeout" in silent.value.detail


def test_every_channel_that_contacts_someone_has_a_connector(home):
    from configs.loader import load_config

    connectors = connectors_for(load_config().actions, home)
    assert set(connectors) == {"email", "push", "sms", "web"}
    assert connectors["sms"].path == home.deliveries / "sms.jsonl"  # no policy: the default
