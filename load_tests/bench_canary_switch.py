"""Canary weight switch on the real Ray Serve app: in-place `user_config` vs. replaced replicas.

    .venv/bin/python load_tests/bench_canary_switch.py [--switches 10] [--rollbacks 3]
        [--baseline 3] [--rate 200] [--port 8131] [--json]

Setup: a throw-away LIFTGATE_HOME under /tmp (World(seed=3, n_customers=5000), 40,000 rows,
``train_and_register`` with seeds 0 and 1 → v1 champion, v2 challenger, the customers as
online store), a copy of ``configs/`` with ``serving.guard: false`` (the bench, not the
guard, drives the rollout), then ``liftgate.app.runner.serve_detached`` (fused, 2 replicas,
HAProxy) on ``--port``. Its time until /readyz is printed as the cold start.

While a load thread sends POST /v1/decide at ``--rate`` requests/s (known customer ids;
non-200 answers and socket errors are errors; an app API key), a watch thread polls
/v1/canary (an operator key) through HAProxy and on each ingress replica's own
direct-ingress port. Then:

- in place: ``--switches`` weight changes 5 % → 25 % → 50 % → 0 → … written with
  ``experiments.canary_state.write_split``; the driver of ``liftgate serve`` sees the new revision
  (it polls every 0.1 s) and redeploys declaratively with a new ``user_config``;
- rollback: ``RolloutController.start("scorer-canary")`` then ``.abort`` (weights and registry
  aliases in one transition), ``--rollbacks`` times (the challenger alias is put back in
  between); the transition's own timings come from the record's history;
- baseline, old way: ``serve.run`` of the Python application (``build_application`` with a
  new ``user_config``) from a second Ray driver attached to the app's cluster, ``--baseline``
  times: a new code version each time, so Serve replaces every replica.

Per switch: seconds from the write (or the call) to the first /v1/canary answer showing the new
revision (any replica), to the start of ``--streak`` answers in a row through HAProxy with it
("all replicas"), and to the slowest replica's own port showing it (in-place and rollback
only: replaced replicas get new ports). Errors are counted from the write to 0.5 s after
all replicas showed it. Replica pids (``pgrep -f ServeReplica``) are compared before and
after each phase. Target: a rollback reaches every replica within 2 s (exit code 1 if not).
Progress goes to stderr; ``--json`` prints one JSON document on stdout and nothing else.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from harness.homes import (  # load_tests/, beside this
    api_key_headers,
    fill_online_store,
    known_customer_ids,
)
from harness.machine import wait_for_no_serve
from harness.probes import HOST, get
from harness.replicas import all_direct_ports, replica_pids, settle
from harness.stats import spread
from harness.steady_load import SteadyLoad
from harness.tables import fmt, print_table, say

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ROLLOUT = "scorer-canary"
WEIGHTS = (0.05, 0.25, 0.50, 0.0)
ROLLBACK_TARGET_S = 2.0
SWITCH_TIMEOUT_S = 120.0
ERROR_TAIL_S = 0.5
FAILED = "failed"  # the state of a /v1/canary poll that got no answer


def now() -> float:
    return time.perf_counter()  # the clock of SteadyLoad's events


# --- the home ----------------------------------------------------------------------------------


def build_home(home, rows: int, customers: int) -> tuple[Path, dict]:
    """A champion (seed 0) and a challenger (seed 1) trained on one small world, the online
    store, and a copy of the configs with the guard off."""
    import yaml

    from configs.loader import DEFAULT_DIR, load_config
    from liftgate.sim.world import World
    from registry.client import ModelRegistry
    from registry.pipeline import train_and_register

    home.ensure()
    config_dir = home.configs
    shutil.copytree(DEFAULT_DIR, config_dir, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    serving_yaml = config_dir / "serving.yaml"
    serving = yaml.safe_load(serving_yaml.read_text())
    serving["guard"] = False
    serving_yaml.write_text(yaml.safe_dump(serving))
    config = load_config(config_dir)
    started = now()
    world = home.worlds / "w1"
    World(seed=3, n_customers=customers).write(world, rows=rows)
    fill_online_store(world, home)
    registry = ModelRegistry(home, config.models.registry)
    train_and_register(world, config, registry, seed=0)
    train_and_register(world, config, registry, seed=1)
    aliases = registry.aliases(config.models.scorer.name)
    if "challenger" not in aliases:
        raise RuntimeError(f"the second model did not become challenger: {aliases}")
    say(f"built {home.root} ({rows:,} rows, aliases {aliases}) in {now() - started:.0f} s")
    return config_dir, aliases


# --- the watch ---------------------------------------------------------------------------------


class Watch(threading.Thread):
    """Polls /v1/canary (with `headers`: an operator API key) through HAProxy and on each
    replica's direct port; records every answer as (sent, answered, source, state), state =
    the canary's revision, None or FAILED."""

    def __init__(self, port: int, headers: dict[str, str], pause_s: float = 0.005):
        super().__init__(daemon=True, name="watch")
        self.port, self.headers, self.pause_s = port, headers, pause_s
        self.direct: list[int] = []
        self.answers: list[tuple[float, float, str, Any]] = []
        self.stopped = threading.Event()

    def poll(self, port: int) -> tuple[float, float, Any]:
        sent = now()
        status, body = get(port, "/v1/canary", timeout_s=1.0, headers=self.headers)
        state: Any = FAILED
        if status == 200:
            with contextlib.suppress(ValueError, KeyError):
                canary = json.loads(body)["canary"]
                state = None if canary is None else int(canary["revision"])
        return sent, now(), state

    def run(self) -> None:
        while not self.stopped.wait(self.pause_s):
            for source, port in [("proxy", self.port), *((str(p), p) for p in self.direct)]:
                sent, answered, state = self.poll(port)
                self.answers.append((sent, answered, source, state))


def measure_switch(watch: Watch, start: float, target: Any, streak: int, direct: list[int]):
    """Wait until `streak` proxy answers in a row and every direct port show `target`."""
    deadline = start + SWITCH_TIMEOUT_S
    while now() < deadline:
        answers = [a for a in list(watch.answers) if a[0] >= start]
        proxy = [a for a in answers if a[2] == "proxy"]
        run_start, run = None, 0
        all_at = None
        for _, answered, _, state in proxy:
            if state == target:
                run_start, run = run_start or answered, run + 1
                if run >= streak:
                    all_at = run_start
                    break
            else:
                run_start, run = None, 0
        per_replica = {}
        for port in direct:
            seen = [a[1] for a in answers if a[2] == str(port) and a[3] == target]
            if seen:
                per_replica[port] = seen[0]
        if all_at is not None and len(per_replica) == len(direct):
            matching = [a[1] for a in answers if a[3] == target]
            return {
                "first_s": min(matching) - start,
                "all_s": all_at - start,
                "slowest_replica_s": max(per_replica.values()) - start if direct else None,
                "done_at": max([all_at, *per_replica.values()]),
            }
        time.sleep(0.05)
    raise TimeoutError(f"revision {target} did not reach every replica in {SWITCH_TIMEOUT_S} s")


# --- the phases ---------------------------------------------------------------------------------


def in_place_switches(home, challenger: str, n: int, watch, load, streak, direct, pause_s):
    from experiments.canary import CanarySplit
    from experiments.canary_state import write_split

    rows = []
    for i in range(n):
        weight = WEIGHTS[i % len(WEIGHTS)]
        split = None
        if weight > 0:
            split = CanarySplit("bench-switch", "bench-switch", weight, True, challenger)
        start = now()
        written = write_split(home, split)
        target = written.revision if written else None
        result = measure_switch(watch, start, target, streak, direct)
        traffic = load.window(start, result.pop("done_at") + ERROR_TAIL_S)
        rows.append({"weight": weight, "revision": target, **result, **traffic})
        say(
            f"  {weight:>4.0%} (rev {target}): first {result['first_s']:.3f} s, all "
            f"{result['all_s']:.3f} s, slowest replica {seconds(result['slowest_replica_s'])} s, "
            f"{traffic['errors']} errors / {traffic['requests']} requests"
        )
        time.sleep(pause_s)
    return rows


def rollbacks(config, home, n: int, watch, load, streak, direct, pause_s):
    """The guard's rollback: start the rollout (5 %), wait until served, abort."""
    from experiments.canary_state import read_split
    from liftgate.core.vocabulary import CHALLENGER
    from liftgate.guard.controller import RolloutController

    controller = RolloutController(config, home)
    challenger = controller.registry.alias_version(controller.model, CHALLENGER)
    rows = []
    for i in range(n):
        if i:  # the abort removed the alias; the next rollout needs it back
            controller.registry.set_aliases(
                controller.model, {CHALLENGER: challenger}, who="bench", why="bench rollback"
            )
        started = now()
        controller.start(ROLLOUT, who="bench")
        _, revision = read_split(home)
        measure_switch(watch, started, revision, streak, direct)
        time.sleep(pause_s)
        start = now()
        record = controller.abort(ROLLOUT, who="bench", why="bench rollback")
        call_s = now() - start
        result = measure_switch(watch, start, None, streak, direct)
        traffic = load.window(start, result.pop("done_at") + ERROR_TAIL_S)
        event = next(e for e in reversed(record.history) if e["event"] == "aborted")
        transition = event["transition"]
        replicas_s = max(result["all_s"], result["slowest_replica_s"] or 0.0)
        rows.append(
            {
                "transition_s": transition["elapsed_s"],
                "weights_s": transition["weights_s"],
                "aliases_s": transition["aliases_s"],
                "abort_call_s": call_s,
                **result,
                "until_all_replicas_s": replicas_s,
                **traffic,
            }
        )
        say(
            f"  rollback {i + 1}: transition {transition['elapsed_s']:.3f} s (weights "
            f"{transition['weights_s']:.3f}, aliases {transition['aliases_s']:.3f}), abort() "
            f"{call_s:.3f} s, all replicas without the canary after {replicas_s:.3f} s"
        )
        time.sleep(pause_s)
    return rows


def gcs_address(temp_dir: str) -> str:
    """The GCS address of the app's Ray cluster: its gcs_server listens on a dynamic port,
    which Ray writes to the session directory (else: the port gcs_server listens on)."""
    import psutil

    for path in sorted(Path(temp_dir, "session_latest").glob("gcs_server_port_*")):
        port = path.read_text().strip()
        if port.isdigit() and int(port) > 0:
            return f"{HOST}:{port}"
    for p in psutil.process_iter(["cmdline"]):
        cmdline = p.info["cmdline"] or []
        if cmdline and "gcs_server" in cmdline[0] and any(temp_dir in c for c in cmdline):
            for c in p.net_connections(kind="tcp"):
                if c.status == psutil.CONN_LISTEN:
                    return f"{HOST}:{c.laddr.port}"
    raise RuntimeError(f"no gcs_server of {temp_dir} found")


def replaced_switches(config, config_dir, home, port, challenger, n, watch, load, streak, pause_s):
    """The old way: `serve.run` of the Python application with a new `user_config`, from a
    second driver attached to the app's cluster. Each call draws a new code version."""
    from liftgate.app.runner import ray_env, ray_temp_dir

    os.environ.update(ray_env(config))
    import ray
    from ray import serve

    from experiments.canary import CanarySplit
    from serving.ray_app import APP_NAME, build_application, canary_user_config

    address = gcs_address(ray_temp_dir(home, port))
    with socket.create_connection((HOST, int(address.split(":")[1])), timeout=5):  # or a hang
        pass
    ray.init(address=address, log_to_driver=False)
    rows = []
    try:
        for i in range(n):
            weight = WEIGHTS[i % len(WEIGHTS)] or WEIGHTS[0]
            revision = 10_000 + i  # never written to the weights file: the driver keeps still
            split = CanarySplit("bench-old", "bench-old", weight, True, challenger, revision)
            app = build_application(
                str(config_dir),
                str(home.root),
                "fused",
                config.serving.replicas,
                config.serving.replica_cpus,
                canary_user_config(split, revision),
            )
            before = replica_pids()
            watch.direct = []  # replaced replicas get new ports
            start = now()
            serve.run(app, name=APP_NAME, route_prefix="/")
            run_s = now() - start
            result = measure_switch(watch, start, revision, streak, [])
            traffic = load.window(start, result.pop("done_at") + ERROR_TAIL_S)
            after = settle(port, config.serving.replicas, all_direct_ports)
            watch.direct = after
            pids = replica_pids()
            restarted = len(set(before) - set(pids))
            rows.append(
                {
                    "weight": weight,
                    "revision": revision,
                    "serve_run_s": run_s,
                    **result,
                    **traffic,
                    "replicas_restarted": restarted,
                }
            )
            say(
                f"  serve.run {i + 1}: returned after {run_s:.3f} s, first {result['first_s']:.3f}"
                f" s, all {result['all_s']:.3f} s, {traffic['errors']} errors / "
                f"{traffic['requests']} requests, {restarted} replicas replaced"
            )
            time.sleep(pause_s)
    finally:
        ray.shutdown()
    return rows


# --- report -------------------------------------------------------------------------------------


def seconds(value) -> str:
    return fmt(value, 3)


def spread_of(rows: list[dict], key: str) -> dict[str, float | None]:
    return spread(r.get(key) for r in rows)


def summary(rows: list[dict], restarted: int | None) -> dict[str, Any]:
    return {
        "switches": len(rows),
        "first_s": spread_of(rows, "first_s"),
        "all_s": spread_of(rows, "all_s"),
        "slowest_replica_s": spread_of(rows, "slowest_replica_s"),
        "errors": sum(r["errors"] for r in rows),
        "requests": sum(r["requests"] for r in rows),
        "fallbacks": sum(r["fallbacks"] for r in rows),
        "replicas_restarted": restarted,
    }


def print_report(document: dict) -> None:
    setup = document["setup"]
    print(
        f"canary weight switch, Ray Serve fused x{setup['replicas']} behind HAProxy on "
        f":{setup['port']}; load {setup['rate']:g} POST /v1/decide per s during the run; "
        f"'all' = {setup['streak']} /v1/canary answers in a row through HAProxy"
    )
    header = ("how", "switches", "first med s", "first max s", "all med s", "all max s",
              "slowest replica med/max s", "errors/fallbacks/requests",
              "replicas restarted")  # fmt: skip
    rows = []
    for label, key in (
        ("in place: user_config (serving.json)", "in_place"),
        ("rollback: guard start + abort", "rollback"),
        ("old: serve.run, replicas replaced", "baseline"),
    ):
        s = document["summary"].get(key)
        if s is None:
            continue
        rows.append(
            (
                label,
                str(s["switches"]),
                seconds(s["first_s"]["median"]),
                seconds(s["first_s"]["max"]),
                seconds(s["all_s"]["median"]),
                seconds(s["all_s"]["max"]),
                "/".join(seconds(s["slowest_replica_s"][k]) for k in ("median", "max")),
                f"{s['errors']}/{s['fallbacks']}/{s['requests']}",
                fmt(s["replicas_restarted"]),
            )
        )
    print_table(header, rows, first_left=True)
    print(
        "seconds from the write (rollback: the abort() call; old: the serve.run call); "
        "fallbacks: 200 answers from the rules-based fallback"
    )
    rb = document["summary"].get("rollback")
    if rb:
        print(
            "rollback transition (weights + aliases): median "
            f"{seconds(rb['transition_s']['median'])} s, max "
            f"{seconds(rb['transition_s']['max'])} s; abort() call median "
            f"{seconds(rb['abort_call_s']['median'])} s; until every replica serves without the "
            f"canary: median {seconds(rb['until_all_replicas_s']['median'])} s, max "
            f"{seconds(rb['until_all_replicas_s']['max'])} s"
        )
    base = document["summary"].get("baseline")
    if base:
        print(
            f"old way: serve.run returned after median {seconds(base['serve_run_s']['median'])} s; "
            f"cold start of the app (serve_detached until /readyz): {setup['cold_start_s']:.1f} s"
        )
    target = document["target"]
    verdict = "PASS" if target["pass"] else "FAIL"
    print(
        f"target: rollback reaches every replica ≤ {target['limit_s']:g} s (max over "
        f"{rb['switches'] if rb else 0} rollbacks): {seconds(target['value_s'])} s {verdict}"
    )


# --- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--switches", type=int, default=10, help="in-place weight changes")
    parser.add_argument("--rollbacks", type=int, default=3, help="guard start + abort rounds")
    parser.add_argument("--baseline", type=int, default=3, help="serve.run redeploys (0: none)")
    parser.add_argument("--rate", type=float, default=200.0, help="POST /v1/decide per second")
    parser.add_argument("--streak", type=int, default=10, help="/v1/canary answers in a row")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between switches")
    parser.add_argument("--port", type=int, default=8131)
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--wait", type=float, default=1800.0, help="max s to wait for the box")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)

    for key, value in {"MLFLOW_ENABLE_TELEMETRY": "false", "DO_NOT_TRACK": "1"}.items():
        os.environ.setdefault(key, value)
    from configs.loader import load_config
    from liftgate.app.runner import ray_temp_dir, serve_detached, stop_process
    from liftgate.core.home import HOME_ENV, Home

    home = Home(Path(tempfile.mkdtemp(prefix="lgsw-", dir="/tmp")))
    os.environ[HOME_ENV] = str(home.root)
    service = None
    load = watch = None
    try:
        config_dir, aliases = build_home(home, args.rows, args.customers)
        config = load_config(config_dir)
        replicas = config.serving.replicas
        ids = known_customer_ids(home)
        app_key, operator_key = api_key_headers(home, "app"), api_key_headers(home, "operator")
        wait_for_no_serve(args.wait)
        say(f"starting the app on :{args.port} ...")
        started = now()
        service = serve_detached(home, HOST, args.port, "fused", config_dir)
        cold_start_s = now() - started
        direct = settle(args.port, replicas, all_direct_ports)
        say(f"  ready in {cold_start_s:.1f} s; replicas {replica_pids()} on ports {direct}")
        if len(direct) < replicas:
            raise RuntimeError(f"found {len(direct)} direct-ingress ports, expected {replicas}")
        load = SteadyLoad(args.port, ids, args.rate, app_key)
        watch = Watch(args.port, operator_key)
        watch.direct = direct
        load.start()
        watch.start()
        time.sleep(2.0)  # the load and the watch running before the first switch

        say(f"in place: {args.switches} switches")
        pids_before = replica_pids()
        in_place = in_place_switches(
            home, aliases["challenger"], args.switches, watch, load, args.streak, direct,
            args.pause,
        )  # fmt: skip
        pids_switched = replica_pids()
        say(f"rollback: {args.rollbacks} x guard start + abort")
        rolled = rollbacks(
            config, home, args.rollbacks, watch, load, args.streak, direct, args.pause
        )
        pids_rolled = replica_pids()
        baseline = []
        if args.baseline:
            say(f"old way: {args.baseline} x serve.run with a new user_config")
            baseline = replaced_switches(
                config, config_dir, home, args.port, aliases["challenger"], args.baseline, watch,
                load, args.streak, args.pause,
            )  # fmt: skip
        pids_end = replica_pids()
        load.stopped.set()
        watch.stopped.set()

        restarted_in_place = len(set(pids_before) - set(pids_switched))
        restarted_rollback = len(set(pids_switched) - set(pids_rolled))
        rollback_summary = {
            **summary(rolled, restarted_rollback),
            **{
                key: spread_of(rolled, key)
                for key in (
                    "transition_s",
                    "weights_s",
                    "aliases_s",
                    "abort_call_s",
                    "until_all_replicas_s",
                )  # fmt: skip
            },
        }
        summaries = {
            "in_place": summary(in_place, restarted_in_place),
            "rollback": rollback_summary,
        }
        if baseline:
            summaries["baseline"] = {
                **summary(baseline, sum(r["replicas_restarted"] for r in baseline)),
                "serve_run_s": spread_of(baseline, "serve_run_s"),
            }
        worst = rollback_summary["until_all_replicas_s"]["max"]
        passed = worst is not None and worst <= ROLLBACK_TARGET_S
        document = {
            "setup": {
                "port": args.port,
                "replicas": replicas,
                "rate": args.rate,
                "streak": args.streak,
                "rows": args.rows,
                "customers": args.customers,
                "cold_start_s": round(cold_start_s, 3),
                "aliases": aliases,
                "ray_temp_dir": ray_temp_dir(home, args.port),
            },
            "replica_pids": {
                "before": pids_before,
                "after_switches": pids_switched,
                "after_rollbacks": pids_rolled,
                "after_baseline": pids_end,
            },
            "summary": summaries,
            "in_place": in_place,
            "rollback": rolled,
            "baseline": baseline,
            "errors_whole_run": load.window(0.0, now()),
            "target": {"limit_s": ROLLBACK_TARGET_S, "value_s": worst, "pass": passed},
        }
        if args.json:
            print(json.dumps(document, default=str))
        else:
            print_report(document)
        return 0 if passed else 1
    finally:
        for thread in (load, watch):
            if thread is not None:
                thread.stopped.set()
        if service is not None:
            say("stopping the app ...")
            stop_process(service["pid"])
        shutil.rmtree(ray_temp_dir(home, args.port), ignore_errors=True)
        shutil.rmtree(home.root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
