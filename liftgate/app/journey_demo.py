"""`liftgate demo --scenario cart-abandonment`: the cart-abandonment journey on a simulated world.

In its own LIFTGATE_HOME (`<home>/scenarios/cart-abandonment`): a world, a champion trained
and registered in MLflow, the API (`serving.local`: `/v1/events`, `/v1/consent`) in this
process with the outbox delivering to files, and the journey worker (`liftgate journey
worker`) as a child process, on a clock that runs an hour a second (`liftgate.core.clock`).

The world's customers abandon carts over ten hours (`POST /v1/events`); the journey
(configs/journeys/cart_abandonment.yaml) waits, decides among e-mail offers and no action,
sends through the checks of `/v1/actions`, waits for a purchase, reminds. 10 % of the
customers are its holdout. Purchases follow the world's truth: a customer buys on their own
with the probability of "no action", and a delivered offer adds its true uplift; some
customers revoke their e-mail consent mid-journey. Once, while most runs wait, the worker is
killed with SIGKILL and started again. The summary counts what was sent and refused, checks
that nothing was sent twice, and estimates the revenue the journey recovered against the
holdout with the statistics engine.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import uvicorn

from configs.journey_schema import JourneyConfig
from configs.loader import DEFAULT_DIR, load_config
from experiments.stats.aggregate import MetricSpec
from experiments.stats.analysis import analyze
from liftgate.core.clock import CompressedClock
from liftgate.core.errors import CheckFailed
from liftgate.core.home import HOME_ENV, Home
from liftgate.core.local_services import free_loopback_port
from liftgate.governance.outbox import delivery_worker
from liftgate.journeys.clock_file import write_clock
from liftgate.journeys.state import ACTIVE, OPEN_STATUSES, JourneyState, RunRow
from liftgate.sim.world import World, stock_home
from liftgate.sim.world.world import LAG_MEDIAN_HOURS, LAG_SIGMA, REVENUE_NOISE_SIGMA
from registry.client import ModelRegistry
from registry.pipeline import train_and_register
from serving.api_keys import APP, KeyStore
from serving.local import create_local_app

JOURNEY = "cart-abandonment"
SPEED = 3600.0  # journey seconds per real second: an hour a second
ORIGIN = datetime(2026, 3, 2, 8, tzinfo=UTC)
ABANDON_SPAN = timedelta(hours=10)
KILL_AT = timedelta(hours=12)  # most runs wait for a purchase then
REVOKE_SHARE = 0.05  # customers who revoke e-mail consent mid-journey
STEP_S = 0.05  # the driver's real-time tick


class Api:
    """The local API in a thread of this process."""

    def __init__(self, config, home: Home):
        self.port = free_loopback_port()
        app = create_local_app(config, home)
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError("the local API did not become ready")

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def _start_worker(home: Home, config_dir: Path, log: Path) -> subprocess.Popen:
    env = {**os.environ, HOME_ENV: str(home.root)}
    command = [
        sys.executable,
        "-c",
        "from liftgate.app.cli.main import app; app()",
        "journey",
        "worker",
        "--config-dir",
        str(config_dir),
    ]
    return subprocess.Popen(command, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def _delivered(path: Path, offset: int) -> tuple[list[dict], int]:
    """New lines of a file connector's deliveries since `offset`."""
    if not path.exists():
        return [], offset
    with path.open("rb") as f:
        f.seek(offset)
        data = f.read()
    end = data.rfind(b"\n") + 1
    lines = [json.loads(line) for line in data[:end].splitlines() if line.strip()]
    return lines, offset + end


@dataclass(frozen=True)
class Request:
    """A call the simulated customers make on the API."""

    method: str
    path: str
    body: dict


class Shoppers:
    """The demo's customers and their truth (`liftgate.sim.world`): when each abandons a cart,
    whether and when they buy — on their own with P(no action), or because a delivered offer
    adds its true uplift — for how much, and who revokes e-mail consent mid-journey."""

    def __init__(self, world: World, n: int, window: timedelta, rng: np.random.Generator):
        rows = rng.choice(len(world.customers), size=n, replace=False)
        people = world.customers.iloc[rows].reset_index(drop=True)
        self.ids = people["customer_id"].astype(str).tolist()
        self.cart_value = people["avg_order_value"].astype(float).tolist()
        self.position = {customer: i for i, customer in enumerate(self.ids)}
        self.p_convert = world.conversion_probability(people)
        self.value = world.order_value(people)
        self.action_index = {a: i for i, a in enumerate(world.action_ids)}
        self.window, self.rng = window, rng
        self.abandon_at = [ORIGIN + ABANDON_SPAN * u for u in np.sort(rng.uniform(size=n))]
        none = self.action_index["no_action"]
        self.purchase: dict[int, tuple[datetime, float]] = {}  # time, revenue
        for i in range(n):
            if rng.uniform() < self.p_convert[i, none]:
                self._buy(i, self.abandon_at[i] + self._lag(), "no_action")
        revokers = rng.choice(n, size=int(REVOKE_SHARE * n), replace=False).tolist()
        self.revoke_at = {
            i: self.abandon_at[i] + timedelta(hours=float(rng.uniform(2, 20))) for i in revokers
        }
        self._posted, self._done = 0, set()

    def _lag(self) -> timedelta:
        return timedelta(hours=LAG_MEDIAN_HOURS * float(np.exp(LAG_SIGMA * self.rng.normal())))

    def _buy(self, i: int, at: datetime, action: str) -> None:
        noise = np.exp(REVENUE_NOISE_SIGMA * self.rng.normal() - REVENUE_NOISE_SIGMA**2 / 2)
        self.purchase[i] = (at, float(self.value[i, self.action_index[action]] * noise))

    def delivered(self, customer_id: str, action: str, now: datetime) -> None:
        """An offer reached the customer: they buy sooner with its uplift over no action."""
        i, a = self.position[customer_id], self.action_index[action]
        base = self.p_convert[i, self.action_index["no_action"]]
        at = now + self._lag()
        sooner = i not in self.purchase or at < self.purchase[i][0]
        if sooner and self.rng.uniform() < (self.p_convert[i, a] - base) / (1 - base):
            self._buy(i, at, action)

    def due(self, now: datetime) -> list[Request]:
        """What the customers do by `now` that they have not done yet."""
        requests = []
        while self._posted < len(self.ids) and self.abandon_at[self._posted] <= now:
            i, self._posted = self._posted, self._posted + 1
            requests.append(
                self._event(f"cart-{i}", i, "cart_abandoned", cart_value=self.cart_value[i])
            )
        for i, (at, revenue) in self.purchase.items():
            if ("buy", i) not in self._done and at <= now and self.converted(i):
                self._done.add(("buy", i))
                requests.append(self._event(f"purchase-{i}", i, "purchase", revenue=revenue))
        for i, at in self.revoke_at.items():
            if ("revoke", i) not in self._done and at <= now:
                self._done.add(("revoke", i))
                body = {"channels": {"email": False}, "source": "preference-centre"}
                requests.append(Request("PUT", f"/v1/consent/{self.ids[i]}", body))
        return requests

    def _event(self, event_id: str, i: int, kind: str, **properties: float) -> Request:
        body = {"event_id": event_id, "customer_id": self.ids[i], "type": kind}
        return Request("POST", "/v1/events", {**body, "properties": properties})

    @property
    def all_abandoned(self) -> bool:
        return self._posted == len(self.ids)

    def converted(self, i: int) -> bool:
        """Bought within the goal's window of abandoning the cart."""
        return i in self.purchase and self.purchase[i][0] - self.abandon_at[i] <= self.window

    def unit_table(self, runs: list[RunRow], holdout_arms: frozenset[str]) -> pa.Table:
        """One row per entered customer: arm (journey or holdout), converted, revenue."""
        arms, converted, revenue = [], [], []
        for run in runs:
            i = self.position[run.customer_id]
            arms.append("holdout" if run.arm in holdout_arms else "journey")
            converted.append(int(self.converted(i)))
            revenue.append(self.purchase[i][1] if self.converted(i) else 0.0)
        return pa.table({"arm": arms, "converted": converted, "revenue": revenue})


def run_cart_abandonment(
    base: Home, seed: int = 0, customers: int = 1_500, progress: Callable[[str], None] = print
) -> dict:
    home = base.scenario(JOURNEY)
    if home.root.exists():
        shutil.rmtree(home.root)
    home.ensure()
    shutil.copytree(DEFAULT_DIR, home.configs, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    config = load_config(home.configs)
    journey = config.journeys[JOURNEY]

    progress(f"[1/5] {JOURNEY}: a world of 20,000 customers; training the champion")
    world = World(seed, 20_000, "stationary", config.actions)
    world_dir = home.worlds / f"seed{seed}"
    world.write(world_dir, 30_000)
    trained = train_and_register(
        world_dir, config, ModelRegistry(home, config.models.registry), seed=seed
    )
    gate = trained["gate"]
    if not gate["passed"]:  # no champion: nothing would serve the journey's decisions
        raise CheckFailed(
            f"the champion trained on seed {seed} did not pass the registration gate "
            f"({'; '.join(gate['reasons'])}); the journey needs one: try another --seed"
        )
    stock_home(home, world_dir)
    shoppers = Shoppers(world, customers, journey.goal.window, np.random.default_rng([seed, 15]))

    clock = CompressedClock.starting(ORIGIN, SPEED)
    write_clock(home, clock)
    state = JourneyState(home.journey_state)
    state.set_status(JOURNEY, ACTIVE, clock.now())
    key = KeyStore.for_home(home).create(APP, name="journey demo").key
    worker_log = home.root / "journey_worker.log"
    progress("[2/5] starting the API (events, consent) and the journey worker")
    stop_delivery = threading.Event()
    deliveries = home.deliveries / "email.jsonl"
    keys_delivered: Counter[str] = Counter()
    open_at_kill: set[str] | None = None
    with Api(config, home) as url, delivery_worker(config, home, clock.now) as outbox:
        delivery = threading.Thread(target=outbox.run, args=(stop_delivery,), daemon=True)
        delivery.start()
        worker = _start_worker(home, home.configs, worker_log)
        client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        offset = 0
        progress(f"[3/5] {customers:,} carts abandoned over 10 journey hours; an hour a second")
        try:
            while True:
                now = clock.now()
                for request in shoppers.due(now):
                    client.request(
                        request.method, request.path, json=request.body
                    ).raise_for_status()
                lines, offset = _delivered(deliveries, offset)
                for line in lines:
                    keys_delivered[line["idempotency_key"]] += 1
                    shoppers.delivered(line["customer_id"], line["action"], now)
                if open_at_kill is None and now >= ORIGIN + KILL_AT:
                    open_at_kill = {r.run_id for r in state.runs(JOURNEY, OPEN_STATUSES)}
                    progress(f"[4/5] SIGKILL to the worker with {len(open_at_kill):,} runs open")
                    worker.send_signal(signal.SIGKILL)
                    worker.wait()
                    worker = _start_worker(home, home.configs, worker_log)
                counts = state.counts(JOURNEY)
                if shoppers.all_abandoned and not any(counts[s] for s in OPEN_STATUSES):
                    lines, offset = _delivered(deliveries, offset)
                    keys_delivered.update(line["idempotency_key"] for line in lines)
                    break
                if worker.poll() is not None:
                    raise RuntimeError(f"the journey worker exited; see {worker_log}")
                time.sleep(STEP_S)
        finally:
            worker.terminate()
            worker.wait(timeout=60)
            stop_delivery.set()
            delivery.join(timeout=30)
            client.close()
    progress("[5/5] the journey's figures")
    try:
        summary = _summary(home, state, journey, shoppers, keys_delivered, open_at_kill or set())
    finally:
        state.close()
    summary["report"] = _report(summary)
    return summary


def _summary(
    home: Home,
    state: JourneyState,
    journey: JourneyConfig,
    shoppers: Shoppers,
    keys_delivered: Counter[str],
    open_at_kill: set[str],
) -> dict:
    runs = state.runs(JOURNEY)
    acts = state.history_of(JOURNEY, "act")
    refused = Counter(a["check"] for a in acts if a["status"] == "refused")
    result = analyze(
        shoppers.unit_table(runs, journey.holdout_arms),
        "arm",
        "holdout",
        [
            MetricSpec("revenue", "revenue", "mean"),
            MetricSpec("conversion", "converted", "binomial"),
        ],
    )
    lift = next(r for r in result["results"] if r["metric"] == "revenue")["rel"]
    resumed = [r for r in runs if r.run_id in open_at_kill and r.status not in OPEN_STATUSES]
    return {
        "scenario": JOURNEY,
        "journeys_started": len(runs),
        "entries_refused": state.refused_entries(JOURNEY),
        "actions_sent": sum(1 for a in acts if a["status"] == "queued"),
        "actions_refused": sum(refused.values()),
        "refused_by_reason": dict(refused),
        "holdout_share": round(
            sum(r.arm in journey.holdout_arms for r in runs) / max(len(runs), 1), 4
        ),
        "recovery_revenue_lift": {k: lift[k] for k in ("estimate", "ci_low", "ci_high")},
        "duplicate_sends": sum(n - 1 for n in keys_delivered.values() if n > 1),
        "deliveries": sum(keys_delivered.values()),
        "crash_resumed": len(resumed) == len(open_at_kill) > 0,
        "runs_open_at_kill": len(open_at_kill),
        "counts": state.counts(JOURNEY),
        "home": str(home.root),
    }


def _report(s: dict) -> str:
    lift = s["recovery_revenue_lift"]
    reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(s["refused_by_reason"].items())) or "none"
    return "\n".join(
        [
            "",
            f"liftgate demo --scenario {s['scenario']}",
            f"  journeys started     {s['journeys_started']:,} (holdout {s['holdout_share']:.1%}); "
            f"entries refused {s['entries_refused']}",
            f"  actions sent         {s['actions_sent']:,}; "
            f"refused {s['actions_refused']:,} ({reasons})",
            f"  revenue lift         {lift['estimate']:+.1%} against the holdout "
            f"(95 % CI {lift['ci_low']:+.1%} to {lift['ci_high']:+.1%})",
            f"  duplicate sends      {s['duplicate_sends']} of {s['deliveries']:,} deliveries",
            f"  crash resumed        {s['crash_resumed']} "
            f"({s['runs_open_at_kill']:,} runs open at the SIGKILL)",
        ]
    )
