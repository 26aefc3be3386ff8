"""Alerts: a JSON payload to a webhook (Alertmanager / PagerDuty style), kept locally too.

`record_alert` appends an alert to LIFTGATE_HOME/alerts.jsonl (fsynced) with an
`alert_id` before anyone tries to deliver it, so a page that never arrived is still on
record, even after a crash; `deliver_alert` sends it and appends its `delivery` as a line
with the same `alert_id`. The rollout controller records alerts while it holds a rollout's
lock and delivers them once it has released it, so a webhook that hangs never holds up
another command. Delivery is retried briefly (`tenacity`: up to 3 attempts, 0.2 s then
0.4 s apart, when sending fails in any way or the answer is a 5xx), each attempt bounded by
`TIMEOUT_S` and the whole by `DEADLINE_S`; it never raises: a failure is logged and
recorded. `AlertReceiver` is a small local webhook that the demo runs to print what an
on-call engineer would receive.

>>> receiver = AlertReceiver().start()
>>> send_alert(receiver.url, {"alert": "test", "summary": "hello"})
{'delivered': True, 'status': 200, 'attempts': 1}
>>> receiver.received[0]["summary"]
'hello'
>>> receiver.stop()
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from tenacity import Retrying, retry_if_result, stop_after_attempt, wait_incrementing

from liftgate.core.home import Home

WEBHOOK_ENV = "LIFTGATE_ALERT_WEBHOOK"
TIMEOUT_S = 2.0  # one attempt: connect, send, answer
DEADLINE_S = 8.0  # every attempt and pause: past it, the delivery is recorded as failed

logger = logging.getLogger(__name__)


def webhook_url(configured: str | None) -> str | None:
    return os.environ.get(WEBHOOK_ENV) or configured


def send_alert(url: str, payload: dict[str, Any], retries: int = 3) -> dict[str, Any]:
    """POST the payload; a few quick retries when sending fails or the answer is a 5xx.

    Never raises, and returns within `DEADLINE_S`: the sending runs in a thread of its own,
    left to finish on its own (a daemon) if it outlasts the deadline.
    """
    attempts: list[int] = []  # one entry an attempt, counted from the sending thread
    outcome: list[dict[str, Any]] = []
    sender = threading.Thread(
        target=lambda: outcome.append(_send(url, payload, retries, attempts)),
        name="alert-delivery",
        daemon=True,
    )
    sender.start()
    sender.join(DEADLINE_S)
    if outcome:
        return outcome[0]
    return {
        "delivered": False,
        "status": f"no answer within {DEADLINE_S:g} s",
        "attempts": len(attempts),
    }


def _send(url: str, payload: dict[str, Any], retries: int, attempts: list[int]) -> dict[str, Any]:
    def post() -> dict[str, Any]:
        attempts.append(1)
        try:
            body = json.dumps(payload, default=str)  # as alerts.jsonl has it
            headers = {"content-type": "application/json"}
            status = httpx.post(url, content=body, headers=headers, timeout=TIMEOUT_S).status_code
        except Exception as exc:  # any failure to send is the delivery's outcome, not the guard's
            return {"delivered": False, "status": f"{type(exc).__name__}: {exc}"}
        return {"delivered": status < 300, "status": status}

    retrying = Retrying(
        stop=stop_after_attempt(retries),
        wait=wait_incrementing(start=0.2, increment=0.2),
        retry=retry_if_result(_transient_failure),
        retry_error_callback=lambda state: state.outcome.result(),  # the last failure
    )
    delivery = retrying(post)
    return {**delivery, "attempts": retrying.statistics["attempt_number"]}


def _transient_failure(delivery: dict[str, Any]) -> bool:
    """Sending failed (no answer, or an error before one), or a server error: worth another
    attempt."""
    status = delivery["status"]
    return isinstance(status, str) or status >= 500


def record_alert(home: Home, payload: dict[str, Any]) -> dict[str, Any]:
    """Append the alert, with a new `alert_id`, to alerts.jsonl, durably; not delivered yet."""
    document = {"alert_id": secrets.token_hex(8), **payload}
    _append(home, document)
    return document


def deliver_alert(home: Home, document: dict[str, Any], url: str | None) -> dict[str, Any]:
    """Send a recorded alert to the webhook (if any) and append its delivery to alerts.jsonl.
    Never raises: a failure is logged, and recorded when the log can be written."""
    delivery = send_alert(url, document) if url else {"delivered": False, "status": "no webhook"}
    if url and not delivery["delivered"]:
        logger.warning("alert %s (%s) not delivered: %s", document["alert"], url, delivery)
    try:
        _append(home, {"alert_id": document["alert_id"], "delivery": delivery})
    except OSError:
        logger.exception("recording the delivery of alert %s failed", document["alert_id"])
    return delivery


def _append(home: Home, line: dict[str, Any]) -> None:
    home.alerts_log.parent.mkdir(parents=True, exist_ok=True)
    with home.alerts_log.open("a") as handle:
        handle.write(json.dumps(line, default=str) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


class AlertReceiver:
    """A webhook on 127.0.0.1 that keeps (and optionally prints) what it receives."""

    def __init__(self, port: int = 0, on_alert: Callable[[dict], None] | None = None):
        self.received: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                length = int(self.headers.get("content-length", 0))
                try:
                    payload = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    self.send_response(400)
                    self.end_headers()
                    return
                receiver.received.append(payload)
                if on_alert is not None:
                    on_alert(payload)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/alerts"

    def start(self) -> AlertReceiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
