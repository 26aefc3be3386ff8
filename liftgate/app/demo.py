"""`liftgate demo`: the platform's loop on the embedded defaults, printed as it goes.

World (customers and their consent) → train and register (the gate rejects a broken
model) → creatives through the safety filter and review → serve with Ray Serve →
simulated customers through /v1/decide → each chosen action committed through
/v1/actions (a few customers unsubscribe first, a few come back the same day) and
delivered by the outbox worker → outcomes drawn from the world's ground truth through
/v1/outcomes → a summary from the logs, the action store and the audit chain → stop.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Mapping
from contextlib import closing
from dataclasses import dataclass, field

import httpx
import numpy as np
import pandas as pd

from configs.loader import LiftgateConfig, load_config
from experiments.logs.reader import decisions_with_outcomes
from liftgate.app import runner
from liftgate.core import audit
from liftgate.core.home import Home
from liftgate.governance.action_store import ActionStore
from liftgate.governance.creatives import CreativeStore, filter_for
from liftgate.sim.world import World, stock_home
from liftgate.sim.world.world import REVENUE_NOISE_SIGMA
from registry.client import ModelRegistry
from registry.pipeline import train_and_register
from registry.store import TrackingStore
from serving.api_keys import APP, KeyStore

CONCURRENCY = 8


def _training_line(label: str, summary: dict) -> str:
    m, gate = summary["metrics"], summary["gate"]
    verdict = "passed" if gate["passed"] else "FAILED: " + "; ".join(gate["reasons"])
    return (
        f"  {label:<32} v{summary['version']:<3} auc {m['auc']:.4f} "
        f"(baseline {m['baseline_auc']:.4f}, ECE {m['calibration_error']:.4f})  "
        f"gate {verdict}  aliases {summary['aliases'] or '-'}"
    )


@dataclass(frozen=True)
class Campaign:
    """How the demo's traffic commits its decisions (POST /v1/actions): the creative of
    each action, and the shares of customers who unsubscribe between decision and send,
    of dry runs, of retried requests and of customers who come back the same day."""

    name: str = "demo-spring"
    creatives: Mapping[str, str] = field(default_factory=dict)
    unsubscribe: float = 0.03
    dry_run: float = 0.05
    retry: float = 0.05
    returning: float = 0.10


#: The draws of a visit that neither unsubscribes, dry-runs nor retries.
PLAIN_VISIT = np.ones(3)


async def commit_action(
    client: httpx.AsyncClient,
    url: str,
    answer: dict,
    campaign: Campaign,
    draws: np.ndarray,
    channel_of: Mapping[str, str],
) -> list[dict]:
    """Commit the decision's chosen action to its channel (nothing for the control); the
    answers, a retry's included. `draws` (uniform) pick the unsubscribes, dry runs and
    retries."""
    channel = channel_of[answer["chosen"]]
    if channel == "none":
        return []
    customer = answer["customer_id"]
    if draws[0] < campaign.unsubscribe:  # the customer unsubscribed since the decision
        await client.put(
            f"{url}/v1/consent/{customer}",
            json={"channels": {channel: False}, "source": "unsubscribe-link"},
        )
    body = {
        "decision_id": answer["decision_id"],
        "action": answer["chosen"],
        "channel": channel,
        "campaign_id": campaign.name,
        "idempotency_key": f"{campaign.name}-{answer['decision_id']}",
        "dry_run": bool(draws[1] < campaign.dry_run),
    }
    if answer["chosen"] in campaign.creatives:
        body["creative_id"] = campaign.creatives[answer["chosen"]]
    sends = 2 if draws[2] < campaign.retry else 1  # a client retry: the same key
    return [(await client.post(f"{url}/v1/actions", json=body)).json() for _ in range(sends)]


async def send_traffic(
    url: str,
    key: str,
    world: World,
    customers: pd.DataFrame,
    seed: int,
    campaign: Campaign | None = None,
) -> list[dict]:
    """Decide for each customer, commit the chosen action as `campaign` says (if given),
    then report outcomes drawn from the world's ground truth; `key` is an API key of role
    app."""
    rng = np.random.default_rng([seed, 2])
    action_draws = rng.random((len(customers), 4))
    channel_of = {a.id: a.channel for a in world.catalogue.actions}
    truth_p = world.conversion_probability(customers)
    values = world.order_value(customers)
    draws = rng.random(len(customers))
    noise = rng.lognormal(-(REVENUE_NOISE_SIGMA**2) / 2, REVENUE_NOISE_SIGMA, len(customers))
    index = world.catalogue.index
    results: list[dict] = [{}] * len(customers)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(len(customers)):
        queue.put_nowait(i)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            body = {"customer_id": customers["customer_id"].iat[i]}
            response = await client.post(f"{url}/v1/decide", json=body)
            answer = response.json()
            k = index[answer["chosen"]]
            converted = bool(draws[i] < truth_p[i, k])
            if converted:
                revenue = round(float(values[i, k] * noise[i]), 2)
                for event, value in (("conversion", 1.0), ("revenue", revenue)):
                    await client.post(
                        f"{url}/v1/outcomes",
                        json={"decision_id": answer["decision_id"], "event": event, "value": value},
                    )
            actions = []
            if campaign is not None:
                visits = 3 if action_draws[i, 3] < campaign.returning else 1
                actions = await commit_action(
                    client, url, answer, campaign, action_draws[i], channel_of
                )
                for _ in range(1, visits):  # the same customer, back the same day
                    again = await client.post(f"{url}/v1/decide", json=body)
                    actions += await commit_action(
                        client, url, again.json(), campaign, PLAIN_VISIT, channel_of
                    )
            results[i] = {
                "answer": answer,
                "status": response.status_code,
                "k": k,
                "actions": actions,
            }

    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(timeout=10.0, headers=headers) as client:
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
    return results


def _mlflow_view(store: TrackingStore) -> str:
    """How to look at the registry the demo used: its server, or `mlflow ui` over the file."""
    return store.uri if store.is_server else f"mlflow ui --backend-store-uri {store.uri}"


def _summary_table(joined: pd.DataFrame) -> list[str]:
    by_action = joined.groupby("chosen").agg(
        decisions=("decision_id", "size"),
        conversion=("converted", "mean"),
        revenue=("revenue", "sum"),
    )
    lines = [f"  {'action':<15} {'decisions':>9} {'conversion':>10} {'revenue':>10}"]
    for row in by_action.sort_values("decisions", ascending=False).itertuples():
        lines.append(
            f"  {row.Index:<15} {row.decisions:>9,} {row.conversion:>10.1%} {row.revenue:>10,.0f}"
        )
    return lines


def register_creatives(config: LiftgateConfig, home: Home) -> dict[str, str]:
    """The campaign's creatives, through the safety filter and a review: three approved; the
    push text (an unresolved placeholder, flagged by the filter) is left pending, so its
    sends are refused."""
    texts = {
        "email_10": ("Take 10% off your next order this week.", True),
        "email_20": ("20% off everything in the shop until Sunday.", True),
        "free_shipping": ("Free shipping on your next order, this week only.", True),
        "push_reminder": ("{first_name}, your basket misses you!", False),
    }
    creatives = {}
    with closing(CreativeStore(home.creatives, filter_for(config.actions.creatives))) as store:
        for action, (text, approve) in texts.items():
            creative = store.add(action, text, who="demo-copywriter")
            if approve:
                store.review(creative.creative_id, True, "on brand", who="demo-reviewer")
            creatives[action] = creative.creative_id
    return creatives


def wait_for_deliveries(home: Home, timeout_s: float = 60.0) -> bool:
    """Whether the service's outbox worker delivered every queued action in time."""
    deadline = time.monotonic() + timeout_s
    with closing(ActionStore(home.actions)) as store:
        while store.counts_by_status().get("queued", 0):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
    return True


def consented(world: World, customers: pd.DataFrame) -> np.ndarray:
    """(customers × actions): may the action be offered, by the customer's consent?"""
    opt_in = {"email": "email_opt_in", "push": "push_opt_in"}
    columns = [
        np.ones(len(customers), bool)
        if channel is None
        else customers[opt_in[channel]].to_numpy(bool)
        if channel in opt_in
        else np.zeros(len(customers), bool)
        for channel in world.catalogue.consent_channels
    ]
    return np.column_stack(columns)


def _action_lines(home: Home, results: list[dict], drained: bool) -> list[str]:
    answers = [a for r in results for a in r["actions"]]
    first = [a for a in answers if not a.get("replayed")]
    refused = Counter(a["check"] for a in first if a.get("status") == "refused")
    with closing(ActionStore(home.actions)) as store:
        stored = store.counts_by_status()
    delivered = {
        path.stem: sum(1 for _ in path.open()) for path in sorted(home.deliveries.glob("*.jsonl"))
    }
    verdict = audit.verify(home.audit_log)
    lines = [
        f"actions    {len(first):,} commits through consent, TTL, caps, quiet hours and "
        f"creative review; {sum(a.get('replayed', False) for a in answers):,} retries "
        "answered from the idempotency store",
        f"  delivered {stored.get('delivered', 0):,} "
        f"({', '.join(f'{c} {n:,}' for c, n in delivered.items()) or 'none'}), "
        f"dry runs {stored.get('dry_run', 0):,}, failed {stored.get('failed', 0):,}"
        + ("" if drained else f", still queued {stored.get('queued', 0):,}"),
        "  refused by check: "
        + (", ".join(f"{check} {n:,}" for check, n in refused.most_common()) or "none"),
        f"audit      {verdict.head_seq:,} records, chain "
        + ("intact" if verdict.ok else f"BROKEN: {verdict.problem}")
        + " (liftgate audit verify)",
    ]
    return lines


def run_demo(
    home: Home,
    rows: int = 60_000,
    customers_served: int = 3_000,
    seed: int = 0,
    port: int | None = None,
    progress: Callable[[str], None] = print,
) -> dict:
    config = load_config()
    home.ensure()
    registry = ModelRegistry(home, config.models.registry)
    out = home.worlds / f"demo-seed{seed}"
    progress(f"[1/6] generating a world of {rows:,} logged decisions in {out}")
    world = World(seed, max(1_000, rows // 5), "stationary", config.actions)
    world_summary = world.write(out, rows)

    progress("[2/6] training and registering a model (the first to pass becomes champion)")
    trained = train_and_register(out, config, registry, seed=seed, progress=progress)
    progress("[3/6] training a broken model on shuffled labels (the gate must reject it)")
    broken = train_and_register(
        out, config, registry, seed=seed, shuffle_labels=True, progress=progress
    )

    stock_home(home, out)  # the online store, and the consent store
    campaign = Campaign(creatives=register_creatives(config, home))
    port = port or config.serving.port
    keys = KeyStore.for_home(home)
    app_key = keys.create(APP, name="demo")  # the demo's traffic; revoked when it is done
    progress(
        f"[4/6] starting Ray Serve ({config.serving.topology}) on port {port}; "
        f"API key {app_key.record.key_id} (role app) for the traffic"
    )
    try:
        service = runner.serve_detached(
            home, config.serving.host, port, config.serving.topology, config.directory
        )
        try:
            sample = world.customers.sample(customers_served, random_state=seed)
            sample = sample.reset_index(drop=True)
            progress(f"[5/6] sending {customers_served:,} simulated customers through /v1/decide")
            results = asyncio.run(
                send_traffic(service["url"], app_key.key, world, sample, seed, campaign)
            )
            drained = wait_for_deliveries(home)
        finally:
            progress("[6/6] stopping the service (the logs flush on shutdown)")
            runner.stop_process(service["pid"])
    finally:
        keys.revoke(app_key.record.key_id)

    answers = [r["answer"] for r in results]
    latency = np.array([a["latency_ms"] for a in answers])
    errors = sum(r["status"] != 200 for r in results)
    joined = decisions_with_outcomes(home).to_pandas()
    served_ids = {a["decision_id"] for a in answers}
    joined = joined[joined["decision_id"].isin(served_ids)]

    # The served policy against uniform random on the same customers, by the world's truth.
    truth = world.expected_reward(sample)
    eligible = world.eligibility(sample) & consented(world, sample)
    chosen = np.array([r["k"] for r in results])
    served_value = truth[np.arange(len(sample)), chosen].mean()
    random_value = (np.where(eligible, truth, 0).sum(1) / eligible.sum(1)).mean()
    oracle_value = np.where(eligible, truth, -np.inf).max(1).mean()

    summary = {
        "world": world_summary,
        "model": {
            "name": trained["model"],
            "version": trained["version"],
            "auc": trained["metrics"]["auc"],
            "aliases": trained["aliases"],
        },
        "broken_model_gate": broken["gate"],
        "decisions": len(answers),
        "logged_decisions": int(len(joined)),
        "errors": errors,
        "server_latency_ms": {
            "p50": float(np.percentile(latency, 50)),
            "p95": float(np.percentile(latency, 95)),
        },
        "fallback_rate": float(np.mean([a["fallback"] for a in answers])),
        "conversion_rate": float(joined["converted"].mean()),
        "revenue": float(joined["revenue"].sum()),
        "expected_profit_per_decision": {
            "served": float(served_value),
            "uniform_random": float(random_value),
            "oracle": float(oracle_value),
        },
    }
    lines = [
        "",
        "liftgate demo",
        f"world      {world_summary['logged_rows']:,} logged decisions, "
        f"{world_summary['customers']:,} customers (seed {seed})",
        _training_line("model", trained),
        _training_line("broken model (shuffled labels)", broken),
        f"serving    {summary['decisions']:,} decisions, {errors} errors, "
        f"{summary['logged_decisions']:,} in the decision log; server latency "
        f"p50 {summary['server_latency_ms']['p50']:.2f} ms, "
        f"p95 {summary['server_latency_ms']['p95']:.2f} ms; "
        f"fallback rate {summary['fallback_rate']:.1%}",
        f"outcomes   conversion {summary['conversion_rate']:.1%}, "
        f"revenue {summary['revenue']:,.0f} (drawn from the world's ground truth)",
        *_summary_table(joined),
        "policy     expected profit per decision (world truth, same customers): served "
        f"{served_value:.2f} vs uniform random {random_value:.2f} "
        f"({(served_value / random_value - 1):+.0%}); oracle {oracle_value:.2f}",
        *_action_lines(home, results, drained),
        f"state      {home.root} (MLflow: {_mlflow_view(registry.store)})",
    ]
    summary["report"] = "\n".join(lines)
    return summary
