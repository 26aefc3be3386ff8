"""`liftgate demo`: the platform's loop on the embedded defaults, printed as it goes.

World → train and register (the gate rejects a broken model) → serve with Ray Serve →
simulated customers through /v1/decide → outcomes drawn from the world's ground truth
through /v1/outcomes → a summary from the logs → stop.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable

import httpx
import numpy as np
import pandas as pd

from configs.loader import load_config
from experiments.logs.reader import decisions_with_outcomes
from liftgate.app import runner
from liftgate.core.home import Home
from liftgate.sim.world import World
from liftgate.sim.world.world import REVENUE_NOISE_SIGMA
from registry.client import ModelRegistry
from registry.pipeline import train_and_register
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


async def send_traffic(
    url: str, key: str, world: World, customers: pd.DataFrame, seed: int
) -> list[dict]:
    """Decide for each customer, then report outcomes drawn from the world's ground truth;
    `key` is an API key of role app."""
    rng = np.random.default_rng([seed, 2])
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
            results[i] = {"answer": answer, "status": response.status_code, "k": k}

    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(timeout=10.0, headers=headers) as client:
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
    return results


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

    home.customers.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(out / "customers.parquet", home.customers)
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
            results = asyncio.run(send_traffic(service["url"], app_key.key, world, sample, seed))
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
    eligible = world.eligibility(sample)
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
        f"state      {home.root} (MLflow: mlflow ui --backend-store-uri {home.mlflow_uri})",
    ]
    summary["report"] = "\n".join(lines)
    return summary
