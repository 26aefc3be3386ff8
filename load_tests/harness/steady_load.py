"""POST /v1/decide at a steady rate from a thread, recording the outcome of every request."""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from typing import Any

from harness.probes import HOST


class SteadyLoad(threading.Thread):
    """Known customer ids at `rate` requests/s on one keep-alive connection to `port`, with
    `headers` (an app API key); each answer is recorded as (perf_counter time, "ok" |
    "fallback:<why>" | an error)."""

    def __init__(
        self,
        port: int,
        customer_ids: list[str],
        rate: float,
        headers: dict[str, str],
        seed: int = 7,
    ):
        super().__init__(daemon=True, name="load")
        self.port, self.ids, self.interval, self.seed = port, customer_ids, 1.0 / rate, seed
        self.headers = {"Content-Type": "application/json", **headers}
        self.events: list[tuple[float, str]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        rng = random.Random(self.seed)
        connection = None
        next_at = time.perf_counter()
        while not self.stopped.is_set():
            body = json.dumps({"customer_id": rng.choice(self.ids)})
            try:
                if connection is None:
                    connection = http.client.HTTPConnection(HOST, self.port, timeout=10)
                connection.request("POST", "/v1/decide", body, self.headers)
                response = connection.getresponse()
                payload = response.read()
                if response.status != 200:
                    outcome = f"status {response.status}"
                else:
                    reason = json.loads(payload).get("fallback_reason")
                    outcome = f"fallback:{reason}" if reason else "ok"
            except (OSError, http.client.HTTPException, ValueError) as exc:
                outcome = f"socket {type(exc).__name__}"
                if connection is not None:
                    connection.close()
                connection = None
            self.events.append((time.perf_counter(), outcome))
            next_at += self.interval
            pause = next_at - time.perf_counter()
            if pause > 0:
                self.stopped.wait(pause)
            else:
                next_at = time.perf_counter()
        if connection is not None:
            connection.close()

    def window(self, start: float, end: float) -> dict[str, Any]:
        """Requests, errors (non-200, socket) and fallbacks answered between two times."""
        outcomes = [o for t, o in list(self.events) if start <= t <= end]
        errors = [o for o in outcomes if o != "ok" and not o.startswith("fallback:")]
        fallbacks = [o for o in outcomes if o.startswith("fallback:")]
        return {
            "requests": len(outcomes),
            "errors": len(errors),
            "fallbacks": len(fallbacks),
            "error_kinds": sorted(set(errors)),
            "fallback_kinds": sorted(set(fallbacks)),
        }
