"""`liftgate demo --scenario …`: the guard at work on the real application.

Each scenario runs in its own LIFTGATE_HOME (`<home>/scenarios/<name>`): a world, a champion
and a challenger registered in MLflow, the Ray Serve application with the guard running
in it, a local webhook that prints alerts, and simulated customers whose outcomes come
from the world's ground truth. Then:

- bad-challenger: the challenger is trained on corrupted labels (a tracking bug counted
  every "no action" as a conversion — offline validation on the same data passes); it
  starts at 5 % and the guard rolls it back;
- good-challenger: the champion was trained on a third of the data, the challenger on all
  of it; the guard promotes it step by step to champion;
- drift: covariate drift (lapsed, discount-seeking customers arrive more) begins
  mid-run; the drift alert fires and the rollout holds.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from unittest.mock import patch

import httpx
import numpy as np
import pandas as pd
import yaml

from configs.loader import DEFAULT_DIR, load_config
from liftgate.app import runner
from liftgate.app.demo import send_traffic
from liftgate.core.errors import CheckFailed, InputError
from liftgate.core.home import Home
from liftgate.core.vocabulary import CHALLENGER, CHAMPION
from liftgate.guard.alerts import WEBHOOK_ENV, AlertReceiver
from liftgate.guard.controller import RolloutController
from liftgate.guard.state import ACTIVE, ROLLED_BACK, read_record
from liftgate.sim.world import World, stock_home
from liftgate.sim.world.customers import arrival_weights
from registry.client import ModelRegistry
from registry.pipeline import train_and_register
from serving.api_keys import APP, OPERATOR, KeyStore

SCENARIOS = ("bad-challenger", "good-challenger", "drift")
ROLLOUT = "demo-canary"
BATCH = 400  # customers per traffic batch; the rollout's status is checked between batches
CORRUPTED_ACTION = "no_action"

#: The demo's rollout: the default steps with minimums sized for a few minutes of traffic.
DEMO_ROLLOUT = {
    "name": ROLLOUT,
    "description": "liftgate demo --scenario",
    "challenger": "challenger",
    "baseline": True,
    "steps": [
        {"weight": 0.05, "min_units": 500, "min_duration_s": 5},
        {"weight": 0.25, "min_units": 1_500, "min_duration_s": 5},
        {"weight": 0.50, "min_units": 2_500, "min_duration_s": 5},
        {"weight": 1.0},
    ],
    "analysis": {"interval_s": 2, "alpha": 0.05, "attribution_window_hours": 1},
    "metrics": [
        {
            "name": "conversion",
            "kind": "binomial",
            "column": "converted",
            "max_relative_drop": 0.02,
        },
        {"name": "revenue", "kind": "mean", "column": "revenue", "max_relative_drop": 0.02},
    ],
    "drift": {"enabled": True, "every_s": 4, "window_rows": 1_500, "max_drift_share": 0.5},
    "failure_limit": 3,
}


def _corrupt(logged: pd.DataFrame) -> pd.DataFrame:
    """A tracking bug: every contact of CORRUPTED_ACTION is recorded as a conversion."""
    corrupted = logged.copy()
    rows = corrupted["action"] == CORRUPTED_ACTION
    typical = logged.loc[logged["converted"].astype(bool), "revenue"].median()
    corrupted.loc[rows, "converted"] = True
    corrupted.loc[rows, "revenue"] = typical
    return corrupted


def _train(scenario: str, world_dir: Path, config, registry, seed: int, progress) -> dict:
    logged = pd.read_parquet(world_dir / "logged.parquet")
    variants = world_dir.parent / "training"
    variants.mkdir(exist_ok=True)
    if scenario == "good-challenger":
        champion_data = variants / "champion.parquet"
        logged.iloc[: len(logged) // 3].to_parquet(champion_data)
    else:
        champion_data = world_dir
    progress("  champion")
    champion = train_and_register(champion_data, config, registry, seed=seed)
    challenger_data = world_dir
    if scenario == "bad-challenger":
        challenger_data = variants / "corrupted.parquet"
        _corrupt(logged).to_parquet(challenger_data)
    progress("  challenger")
    challenger = train_and_register(challenger_data, config, registry, seed=seed + 1)
    if CHALLENGER not in challenger["aliases"]:
        raise CheckFailed(f"the challenger did not pass the gate: {challenger['gate']}")
    return {"champion": champion, "challenger": challenger}


def _customers(world: World, n: int, drifted: bool, rng: np.random.Generator) -> pd.DataFrame:
    p = arrival_weights(world.customers, 2.0) if drifted else None
    rows = rng.choice(len(world.customers), size=n, p=p)
    return world.customers.iloc[rows].reset_index(drop=True)


class CanaryWatch(threading.Thread):
    """Polls /v1/canary with an operator's `key` (either replica answers) and notes when the
    replicas stop serving the canary: the first of `confirmations` answers in a row without
    it."""

    def __init__(self, url: str, key: str, confirmations: int = 6):
        super().__init__(daemon=True)
        self.url, self.key, self.confirmations = url, key, confirmations
        self.cleared_at: datetime | None = None
        self.stopped = threading.Event()

    def run(self) -> None:
        streak_start, streak = None, 0
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(timeout=2.0, headers=headers) as client:
            while not self.stopped.wait(0.02):
                try:
                    canary = client.get(f"{self.url}/v1/canary").json()["canary"]
                except httpx.HTTPError:
                    continue
                if canary is not None:
                    streak_start, streak, self.cleared_at = None, 0, None
                    continue
                streak_start, streak = streak_start or datetime.now(UTC), streak + 1
                if streak >= self.confirmations and self.cleared_at is None:
                    self.cleared_at = streak_start


def run_scenario(
    scenario: str,
    base: Home,
    seed: int = 0,
    port: int | None = None,
    max_decisions: int = 60_000,
    progress: Callable[[str], None] = print,
) -> dict:
    if scenario not in SCENARIOS:
        raise InputError(
            f"expected one of {', '.join(SCENARIOS)}; got {scenario!r}", parameter="scenario"
        )
    home = base.scenario(scenario)
    if home.root.exists():
        shutil.rmtree(home.root)
    home.ensure()
    config_dir = home.configs
    shutil.copytree(DEFAULT_DIR, config_dir, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (config_dir / "rollouts" / f"{ROLLOUT}.yaml").write_text(yaml.safe_dump(DEMO_ROLLOUT))
    config = load_config(config_dir)
    registry = ModelRegistry(home, config.models.registry)

    progress(f"[1/5] {scenario}: a world of 50,000 customers and 60,000 logged decisions")
    world = World(seed, 50_000, "stationary", config.actions)
    world_dir = home.worlds / f"seed{seed}"
    world.write(world_dir, 60_000)
    progress("[2/5] training and registering the champion and the challenger")
    trained = _train(scenario, world_dir, config, registry, seed, progress)
    champion_before = registry.alias_version(config.models.scorer.name, CHAMPION)
    stock_home(home, world_dir)  # the online store, and the consent store

    alerts: list[dict] = []

    def show(alert: dict) -> None:
        alerts.append(alert)
        progress(f"  ALERT [{alert['severity']}] {alert['alert']}: {alert['summary']}")

    receiver = AlertReceiver(on_alert=show).start()
    keys = KeyStore.for_home(home)  # in the scenario's own home, which goes with it
    app_key = keys.create(APP, name=f"demo {scenario}").key
    operator_key = keys.create(OPERATOR, name=f"demo {scenario}: canary watch").key
    port = port or config.serving.port
    progress(f"[3/5] starting Ray Serve with the guard on port {port}")
    with patch.dict(os.environ, {WEBHOOK_ENV: receiver.url}):  # for the server's guard
        service = runner.serve_detached(
            home, config.serving.host, port, config.serving.topology, config_dir
        )
    url = service["url"]
    rng = np.random.default_rng([seed, 7])
    sent, verdict_at, status = 0, None, "running"
    watch = CanaryWatch(url, operator_key)
    try:
        controller = RolloutController(config, home, registry=registry)
        controller.start(ROLLOUT, who="demo")
        watch.start()
        progress(f"[4/5] rollout {ROLLOUT} started at 5 %; sending customers until a verdict")
        while sent < max_decisions:
            drifted = scenario == "drift" and sent >= max_decisions // 4
            batch = _customers(world, BATCH, drifted, rng)
            asyncio.run(send_traffic(url, app_key, world, batch, seed + sent))
            sent += len(batch)
            status = read_record(home, ROLLOUT).status
            if status not in ACTIVE:
                verdict_at = sent
                time.sleep(3.0)  # let the watch confirm the replicas
                break
            if scenario == "drift" and any(a["alert"] == "drift_detected" for a in alerts):
                verdict_at = verdict_at or sent
                if sent >= verdict_at + 4 * BATCH:  # it keeps holding
                    break
    finally:
        progress("[5/5] stopping the service")
        watch.stopped.set()
        runner.stop_process(service["pid"])
        receiver.stop()

    record = read_record(home, ROLLOUT)
    name = config.models.scorer.name
    verdict = (record.last_verdict or {}).get("kind")
    applied_s = None
    if record.status == ROLLED_BACK and watch.cleared_at is not None:
        applied_s = watch.cleared_at - datetime.fromisoformat(record.last_verdict["at"])
        applied_s = applied_s.total_seconds()
    action = next(
        (e.get("transition") for e in reversed(record.history) if e.get("transition")), None
    )
    summary = {
        "scenario": scenario,
        "verdict": verdict,
        "status": record.status,
        "decisions_until_verdict": verdict_at,
        "decisions": sent,
        "champion_before": champion_before,
        "champion_after": registry.alias_version(name, CHAMPION),
        "challenger": trained["challenger"]["version"],
        "challenger_offline": {  # what the validation gate saw, on the challenger's own data
            "auc": trained["challenger"]["metrics"]["auc"],
            "gate_passed": trained["challenger"]["gate"]["passed"],
        },
        "challenger_weight_after": record.weight,
        "rollback": None
        if applied_s is None
        else {"transition": action, "replicas_applied_s_after_verdict": round(applied_s, 3)},
        "alerts": alerts,
        "home": str(home.root),
    }
    summary["report"] = _report(summary)
    return summary


def _report(summary: dict) -> str:
    lines = [
        "",
        f"liftgate demo --scenario {summary['scenario']}",
        f"verdict    {summary['verdict']} after {summary['decisions_until_verdict'] or '-'} "
        f"decisions (rollout {summary['status']})",
        f"champion   v{summary['champion_before']} → v{summary['champion_after']} "
        f"(challenger v{summary['challenger']}, "
        f"weight now {summary['challenger_weight_after']:.0%}; offline: auc "
        f"{summary['challenger_offline']['auc']:.3f}, gate "
        f"{'passed' if summary['challenger_offline']['gate_passed'] else 'failed'})",
    ]
    if summary["rollback"]:
        transition = summary["rollback"]["transition"] or {}
        lines.append(
            f"rollback   weights + aliases in {transition.get('elapsed_s', float('nan')):.3f} s "
            f"({transition.get('seconds_after_verdict', float('nan')):.3f} s after the verdict); "
            "every replica serving without the canary "
            f"{summary['rollback']['replicas_applied_s_after_verdict']:.2f} s after the guard's "
            "interval began (target ≤ 2 s)"
        )
    for alert in summary["alerts"]:
        lines.append(f"alert      [{alert['severity']}] {alert['alert']}: {alert['summary']}")
    lines.append(f"state      {summary['home']} (liftgate audit tail, liftgate rollout status)")
    return "\n".join(lines)
