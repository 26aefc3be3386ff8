"""Alerts never stall or kill the guard (liftgate/guard/alerts.py, controller.py): they are
recorded under the rollout's lock and delivered after it is released, within a deadline,
whatever the sending raises."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from configs.loader import load_config
from liftgate.core.home import Home
from liftgate.guard import alerts
from liftgate.guard.alerts import WEBHOOK_ENV
from liftgate.guard.controller import RolloutController
from liftgate.guard.state import read_record
from liftgate.guard.verdict import DriftObservation

ROLLOUT = "scorer-canary"  # packaged: drift on, on_drift hold
DRIFTING = DriftObservation(checked=True, dataset_drift=True, drift_share=1.0, columns=3)


class Registry:
    """The registry calls the controller makes, in memory."""

    def __init__(self) -> None:
        self.state = {"champion": "1", "challenger": "2"}

    def aliases(self, model: str) -> dict[str, str]:
        return dict(self.state)

    def set_aliases(self, model: str, target: dict, who=None, why=None) -> None:
        for alias, version in target.items():
            if version is None:
                self.state.pop(alias, None)
            else:
                self.state[alias] = version

    def tag_version(self, model: str, version: str, tags: dict) -> None:
        pass


class HangingWebhook:
    """A webhook that takes requests and answers none until released."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.released = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                length = int(self.headers.get("content-length", 0))
                hook.received.append(json.loads(self.rfile.read(length)))
                hook.released.wait()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"

    def stop(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook():
    webhook = HangingWebhook()
    yield webhook
    webhook.stop()


def guard(home: Home) -> RolloutController:
    return RolloutController(
        load_config(), home, registry=Registry(), drift_check=lambda rollout: DRIFTING
    )


def alert_log(home: Home) -> list[dict]:
    return [json.loads(line) for line in home.alerts_log.read_text().splitlines()]


def test_a_hanging_webhook_does_not_hold_up_an_abort(home, hook, monkeypatch, wait_until):
    monkeypatch.setenv(WEBHOOK_ENV, hook.url)
    monkeypatch.setattr(alerts, "TIMEOUT_S", 60.0)  # the webhook hangs for as long as it likes
    monkeypatch.setattr(alerts, "DEADLINE_S", 60.0)
    controller = guard(home)
    controller.start(ROLLOUT)
    ticking = threading.Thread(target=controller.tick, args=(ROLLOUT,))
    ticking.start()
    assert wait_until(lambda: len(hook.received) == 1)  # the drift alert: being delivered
    assert hook.received[0]["alert"] == "drift_detected"
    aborting = threading.Thread(target=controller.abort, args=(ROLLOUT,))
    aborting.start()
    assert wait_until(lambda: read_record(home, ROLLOUT).status == "aborted", timeout_s=3.0)
    assert [a["alert"] for a in alert_log(home)] == ["drift_detected", "rollout_rolled_back"]
    hook.released.set()
    for thread in (ticking, aborting):
        thread.join(timeout=10)
        assert not thread.is_alive()
    deliveries = [line for line in alert_log(home) if "delivery" in line]
    assert [d["delivery"]["delivered"] for d in deliveries] == [True, True]
    assert {d["alert_id"] for d in deliveries} == {a["alert_id"] for a in hook.received}


def test_a_webhook_that_raises_anything_leaves_the_guard_running(home, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("transport bug")

    monkeypatch.setenv(WEBHOOK_ENV, "http://127.0.0.1:9/alerts")
    monkeypatch.setattr(alerts.httpx, "post", broken)
    controller = guard(home)
    controller.start(ROLLOUT)
    with caplog.at_level(logging.WARNING):
        result = controller.tick(ROLLOUT)
    assert result["verdict"]["kind"] == "HOLD"
    assert read_record(home, ROLLOUT).history[-1]["alert"] == "drift_detected"
    alert, delivery = alert_log(home)
    assert delivery == {
        "alert_id": alert["alert_id"],
        "delivery": {"delivered": False, "status": "RuntimeError: transport bug", "attempts": 3},
    }
    assert "alert drift_detected (http://127.0.0.1:9/alerts) not delivered" in caplog.text


def test_delivery_ends_at_the_deadline_however_long_the_sending_blocks(monkeypatch) -> None:
    blocked = threading.Event()

    def post(*args, **kwargs) -> httpx.Response:
        blocked.wait()
        return httpx.Response(200)  # once released: no retry pauses after the test

    monkeypatch.setattr(alerts.httpx, "post", post)
    monkeypatch.setattr(alerts, "DEADLINE_S", 0.2)
    try:
        assert alerts.send_alert("http://hook", {"alert": "a"}) == {
            "delivered": False,
            "status": "no answer within 0.2 s",
            "attempts": 1,
        }
    finally:
        blocked.set()
