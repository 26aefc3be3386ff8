"""Locust load for the decision API: /v1/decide, a sampled share of /v1/outcomes, /readyz.

Run locust as its own process only (it monkey-patches with gevent; never import this file),
with an API key of role app in LIFTGATE_API_KEY:

    export LIFTGATE_API_KEY=$(.venv/bin/liftgate keys create --role app --name locust)
    .venv/bin/locust -f load_tests/locustfile.py --headless -u 5 -r 5 -t 10s \
        --host http://127.0.0.1:8000 --only-summary

Environment (the others optional):

- ``LIFTGATE_API_KEY``: the key every request carries (``Authorization: Bearer``);
- ``LIFTGATE_LOCUST_CUSTOMERS``: known customer ids are c0000000 .. c<N-1>, zero-padded to
  seven digits as the world generator writes them (default 12000, the customers of a
  60,000-row world);
- ``LIFTGATE_LOCUST_UNKNOWN``: share of requests with an unknown id (cold start; 0.05);
  the rest of the mix (candidate lists, request ids) is ``harness.request_mix``'s,
  the same as bench_decide.py's;
- ``LIFTGATE_LOCUST_OUTCOMES``: share of decisions whose outcome is reported (0.2);
- ``LIFTGATE_LOCUST_WAIT``: seconds each user waits between tasks (0.05).
"""

from __future__ import annotations

import os
import random

from harness.request_mix import UNKNOWN_SHARE, decide_body  # load_tests/, beside this file
from locust import HttpUser, constant, task

KEY_ENV = "LIFTGATE_API_KEY"
if not os.environ.get(KEY_ENV):
    raise SystemExit(f"{KEY_ENV}: expected an API key of role app (liftgate keys create)")
CUSTOMERS = int(os.environ.get("LIFTGATE_LOCUST_CUSTOMERS", "12000"))
UNKNOWN = float(os.environ.get("LIFTGATE_LOCUST_UNKNOWN", str(UNKNOWN_SHARE)))
OUTCOME_SHARE = float(os.environ.get("LIFTGATE_LOCUST_OUTCOMES", "0.2"))
WAIT_S = float(os.environ.get("LIFTGATE_LOCUST_WAIT", "0.05"))


def known_id(rng: random.Random) -> str:
    return f"c{rng.randrange(CUSTOMERS):07d}"


class DecisionUser(HttpUser):
    wait_time = constant(WAIT_S)

    def on_start(self) -> None:
        self.rng = random.Random()
        self.client.headers["Authorization"] = f"Bearer {os.environ[KEY_ENV]}"

    def body(self) -> dict:
        request_id = f"locust-{self.rng.randrange(10**12)}"
        return decide_body(self.rng, known_id, request_id, UNKNOWN)

    @task(20)
    def decide(self) -> None:
        with self.client.post(
            "/v1/decide", json=self.body(), name="/v1/decide", catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")
                return
            try:
                decision_id = response.json()["decision_id"]
            except (ValueError, KeyError) as exc:
                response.failure(f"no decision_id in the answer: {exc}")
                return
        if self.rng.random() < OUTCOME_SHARE:
            self.report_outcome(decision_id)

    def report_outcome(self, decision_id: str) -> None:
        if self.rng.random() < 0.5:
            body = {"decision_id": decision_id, "event": "conversion", "value": 1.0}
        else:
            value = round(self.rng.uniform(5, 250), 2)
            body = {"decision_id": decision_id, "event": "revenue", "value": value}
        with self.client.post(
            "/v1/outcomes", json=body, name="/v1/outcomes", catch_response=True
        ) as response:
            # `known_decision` may be false (another replica's unflushed decision): a hint,
            # not a failure
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")

    @task(1)
    def readyz(self) -> None:
        with self.client.get("/readyz", name="/readyz", catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"not ready: {response.text[:200]}")
