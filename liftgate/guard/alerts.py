"""Alerts: a JSON payload to a webhook (Alertmanager / PagerDuty style), kept locally too.

Every alert is appended to LIFTGATE_HOME/alerts.jsonl whether or not the webhook answers,
so a page that never arrived is still on record; delivery is retried briefly and its
outcome recorded in the payload's `delivery` (`tenacity`: up to 3 attempts, 0.2 s then 0.4 s
apart, on connection errors and 5xx answers). `AlertReceiver` is a small local webhook
that the demo runs to print what an on-call engineer would receive.

>>> receiver = AlertReceiver().start()
>>> send_alert(receiver.url, {"alert": "test", "summary": "hello"})
{'delivered': True, 'status': 200, 'attempts': 1}
>>> receiver.received[0]["summary"]
'hello'
>>> receiver.stop()
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from tenacity import Retrying, retry_if_result, stop_after_attempt, wait_incrementing

from liftgate.core.home import Home

WEBHOOK_ENV = "LIFTGATE_ALERT_WEBHOOK"


def webhook_url(configured: str | None) -> str | None:
    return os.environ.get(WEBHOOK_ENV) or configured


def send_alert(
    url: str, payload: dict[str, Any], retries: int = 3, timeout_s: float = 2.0
) -> dict[str, Any]:
    """POST the payload; a few quick retries on connection errors and 5xx answers."""

    def post() -> dict[str, Any]:
        try:
            status = httpx.post(url, json=payload, timeout=timeout_s).status_code
        except httpx.HTTPError as exc:
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
    """No answer (a connection error), or a server error: worth another attempt."""
    status = delivery["status"]
    return isinstance(status, str) or status >= 500


def record_alert(home: Home, payload: dict[str, Any], url: str | None) -> dict[str, Any]:
    """Deliver to the webhook (if any) and append the alert with its delivery to alerts.jsonl."""
    delivery = send_alert(url, payload) if url else {"delivered": False, "status": "no webhook"}
    document = {**payload, "delivery": delivery}
    home.alerts_log.parent.mkdir(parents=True, exist_ok=True)
    with home.alerts_log.open("a") as handle:
        handle.write(json.dumps(document, default=str) + "\n")
    return document


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
