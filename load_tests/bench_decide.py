"""Latency, throughput and memory of POST /v1/decide against the floor, measured in the same run.

Run: ``flock /tmp/liftgate-ray.lock .venv/bin/python load_tests/bench_decide.py [--json]
[--requests 2000] [--home DIR] [--only ...] [--fsync off,group] [--growth] [--no-core]``

First, before any server starts (so it has the cores to itself), the decision core in
process: ``python -m harness.core --home HOME --json`` (a decision without HTTP, mean and
p99 µs for 5, 20 and 100 candidates, fsync off). Then each server as its own process, one
after another (each is stopped before the next starts, so they never share the 2 cores),
in this order (``--only`` picks; default all but ``floor-plain``):

- ``fastapi``: plain FastAPI + uvicorn (1 worker, no access log) on the same classes
  (``serving.local``);
- ``floor``: the floor (load_tests/floor/: a dict lookup, one LightGBM booster on 5 rows, an
  argmax, JSON out through a FastAPI route) as one fused Ray Serve deployment with the
  replicas, CPUs per replica and Serve modes of ``configs/serving.yaml``: what the stack
  costs by itself;
- ``ray-fused``: ``python -m liftgate.app.cli.main serve --topology fused`` with the default
  ``configs/serving.yaml``, clients sent to its HTTP port;
- ``floor-composed``: the floor split into the deployments and hops of ``composed`` (the
  ingress calls a features deployment, then a scoring deployment, through handles, and
  takes the argmax itself; floor topology ``C3``);
- ``ray-composed``: ``liftgate serve --topology composed``;
- ``floor-plain`` (on request): the floor under plain uvicorn.

The floors answer POST /score; they have no stage histogram. Against each server, a closed
loop of POST at 1 and at 8 concurrent keep-alive connections: a warm-up of 200 requests on
8 connections, then ``--requests`` measured requests. Bodies are the same for every server
(fixed seed): known customer ids from the online store, some with candidate lists, a few
unknown ids. Requests to liftgate's servers carry an API key of role app, created in the
home, so the key check and the rate limit are on the measured path; /metrics is scraped
with an admin key.

Targets (harness.targets; exit 1 on a MISS): every serving target is a ratio to the floor
of the run's topology at the same clients — ray-fused at 8 clients ≥ 0.95× the floor's
req/s, p95 ≤ 1.05× the floor's, 0 errors; at 1 client p95 ≤ 1.05× the floor's;
ray-composed ≥ 0.9× floor-composed's req/s; the whole service's RSS ≤ 3 GiB; the core:
5 candidates mean ≤ 100 µs and p99 ≤ 250 µs, 100 candidates mean ≤ 400 µs.

The load client is ``harness.closed_loop``, a separate process: raw HTTP/1.1 keep-alive,
per-request timing, no coordinated-omission correction. It shares the 2 cores with the
server: the table shows the cores it used during each run and its share of the machine,
and a warning follows when that share is above 35 %.

RSS is the sum over the server's process tree (uvicorn; or the Serve driver, gcs, raylet,
Ray workers and agents, haproxy), sampled every 0.2 s during the measured runs; the table
shows the maximum. Errors are non-200 answers plus socket errors and timeouts. After each
measured run, every replica's ``/metrics`` (each direct-ingress port of a Ray ingress
replica, or the server port) is scraped and the ``liftgate_stage_seconds`` histogram is
differenced against a scrape before the run, giving the mean time per stage of the
measured requests.

With ``--fsync off,group`` (any of always, group, off) each server runs once per policy of
the logs' fsync (``serving.yaml`` ``decision_log.fsync``, set in a copy of the
configuration), one after another, and a last table gives each run's cost beside the same
run with ``off``; the targets are checked on the configured policy's runs.

With ``--growth``, ray-fused again for each number of candidates (5, 20, 100; a copy of the
configuration whose catalogue has that many actions, harness.catalogue) and replicas (1,
2), at 8 clients, with bodies of a customer id alone for customers who granted every
channel and meet every eligibility rule, so each decision scores every action: req/s, p95
and the whole service's RSS per row (about 1 minute a row). ``--only ''`` leaves the
servers above out.

Without ``--home`` a temporary LIFTGATE_HOME is built first (small world, online store,
``liftgate train``; about 30 s) and removed at the end. Progress goes to stderr;
``--json`` prints one JSON document on stdout and nothing else.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.catalogue import config_with_actions  # load_tests/, beside this file
from harness.closed_loop import ClientProcess, LoadSpec
from harness.config_copy import set_serving
from harness.fsync import COST_HEADER, config_with_fsync, cost_rows
from harness.homes import (
    api_key_headers,
    fill_online_store,
    known_customer_ids,
    offered_every_action,
)
from harness.machine import wait_quiet
from harness.metrics import STAGES, scrape_stages, stage_means
from harness.probes import HOST, port_free
from harness.replicas import settle
from harness.request_mix import customer_only_bodies, encoded_bodies
from harness.servers import Server
from harness.stats import latency_summary
from harness.tables import fmt, print_table, say
from harness.targets import CORE_LIMITS_US, add_ratios, check_targets, verdict
from harness.usage import CpuSnapshot, RssSampler, cpu_between

if TYPE_CHECKING:
    from configs.loader import LiftgateConfig

ROOT = Path(__file__).resolve().parents[1]
LOAD_TESTS = Path(__file__).resolve().parent
FLOOR = LOAD_TESTS / "floor"

READY_TIMEOUT_S = 240.0
CORE_TIMEOUT_S = 1800.0
#: Above this share of the machine the client takes cores the server would use.
CLIENT_SHARE_WARN_PCT = 35.0
GROWTH_CANDIDATES = (5, 20, 100)
GROWTH_REPLICAS = (1, 2)
GROWTH_CLIENTS = 8
#: Ports of the growth runs: --port-base + this + their index (past the --fsync policies').
GROWTH_PORT_OFFSET = 40
#: Handle hops of a composed request: ingress → features, ingress → scoring.
COMPOSED_HOPS = 2


@dataclass(frozen=True)
class Setup:
    """A server the benchmark can start: what the load posts to, whether it is liftgate's
    (it asks for API keys and serves the stage histogram) or the floor, the status of a
    successful answer, and whether it runs on Ray Serve (else plain uvicorn)."""

    name: str
    topology: str
    path: str
    liftgate: bool
    ok_status: int = 200
    ray: bool = True


SETUPS = (  # in the order they run; ports --port-base + index
    Setup("fastapi", "fused", "/v1/decide", True, ray=False),
    Setup("floor", "fused", "/score", False),
    Setup("ray-fused", "fused", "/v1/decide", True),
    Setup("floor-composed", "composed", "/score", False),
    Setup("ray-composed", "composed", "/v1/decide", True),
    Setup("floor-plain", "fused", "/score", False, ray=False),
)
DEFAULT_SETUPS = ("fastapi", "floor", "ray-fused", "floor-composed", "ray-composed")
#: The floor's Ray Serve topology of each of liftgate's (load_tests/floor/serve_apps.py).
FLOOR_TOPOLOGY = {"fused": "F", "composed": "C3"}


def make_servers(
    home: Path,
    run_dir: Path,
    port_base: int,
    names: list[str],
    config: LiftgateConfig,
    config_dir: Path | None = None,
) -> list[tuple[Setup, Server]]:
    """(setup, server) of each named setup, in SETUPS order; Ray servers get the Ray temp
    dir `liftgate serve` would use on their port, the floor's the replicas, CPUs and Serve
    modes of `config`. With `config_dir`, liftgate's servers read their configuration there
    (LIFTGATE_CONFIG_DIR)."""
    from liftgate.app.runner import ray_env, ray_temp_dir
    from liftgate.core.home import Home

    python = sys.executable
    env = {
        **os.environ,
        "LIFTGATE_HOME": str(home),
        "PYTHONUNBUFFERED": "1",
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_AUTH_MODE": "disabled",
        "RAY_USAGE_STATS_ENABLED": "0",
        "MLFLOW_ENABLE_TELEMETRY": "false",
        "DO_NOT_TRACK": "1",
    }
    if config_dir is not None:
        env["LIFTGATE_CONFIG_DIR"] = str(config_dir)
    servers = []
    for offset, setup in enumerate(SETUPS):
        if setup.name not in names:
            continue
        port = port_base + offset
        ray_temp = ray_temp_dir(Home(home), port) if setup.ray else None
        server_env = env
        if setup.liftgate and not setup.ray:
            command = [
                python, "-m", "uvicorn", "--factory", "serving.local:app_from_env",
                "--host", HOST, "--port", str(port), "--no-access-log",
            ]  # fmt: skip
        elif setup.liftgate:
            command = [
                python, "-m", "liftgate.app.cli.main", "serve",
                "--host", HOST, "--port", str(port), "--topology", setup.topology,
            ]  # fmt: skip
        elif not setup.ray:
            command = [
                python, "-m", "uvicorn", "--app-dir", str(FLOOR), "plain_app:app",
                "--host", HOST, "--port", str(port), "--no-access-log",
            ]  # fmt: skip
        else:
            server_env = {**env, **ray_env(config)}
            command = [
                python, str(FLOOR / "run_serve.py"), FLOOR_TOPOLOGY[setup.topology],
                "--port", str(port), "--replicas", str(config.serving.replicas),
                "--replica-cpus", str(config.serving.replica_cpus), "--ray-temp", ray_temp,
            ]  # fmt: skip
        log = run_dir / f"{setup.name}.log"
        server = Server(setup.name, setup.topology, port, command, server_env, log, ROOT, ray_temp)
        servers.append((setup, server))
    return servers


# --- measured runs ------------------------------------------------------------------------------


def measure(
    server: Server,
    setup: Setup,
    bodies: list[str],
    clients: int,
    keys: dict[str, dict[str, str]],
    args,
    work: Path,
) -> dict[str, Any]:
    """One measured run; `keys` holds the headers of an ``app`` and an ``admin`` API key."""
    import psutil

    spec = LoadSpec(
        port=server.port,
        path=setup.path,
        bodies=bodies[: args.warmup + args.requests],
        warmup=args.warmup,
        requests=args.requests,
        connections=clients,
        timeout_s=args.timeout,
        headers=keys["app"] if setup.liftgate else {},
        ok_status=setup.ok_status,
    )
    client = ClientProcess(spec, work / f"spec-{server.name}-{clients}.json")
    try:
        wait_quiet()
        ports = server.metrics_ports()
        before = scrape_stages(ports, keys["admin"]) if setup.liftgate else None
        sampler = RssSampler(server)
        sampler.start()
        cpu_before = CpuSnapshot.of(server)
        result = client.run()
        cpu_after = CpuSnapshot.of(server)
        peak = sampler.stop()
        after = scrape_stages(ports, keys["admin"]) if setup.liftgate else None
    finally:
        client.close()
    done = max(len(result["latencies_ns"]), 1)
    cpu = cpu_between(cpu_before, cpu_after, result["cpu_s"])
    wall_s = result["wall_s"]
    client_cores = result["cpu_s"] / wall_s if wall_s else None
    if result["error_samples"]:
        say(f"  errors: {result['errors']} e.g. {result['error_samples'][:3]}")
    return {
        "name": server.name,
        "topology": server.topology,
        "clients": clients,
        **latency_summary(result["latencies_ns"], wall_s),
        "errors": result["errors"]["status"] + result["errors"]["socket"],
        "rss_mb": round(peak / 2**20, 1),
        "stages_ms": stage_means(before, after) if setup.liftgate else dict.fromkeys(STAGES),
        "metrics_replicas": len(ports),
        "warmup_errors": sum(client.warm.get("warm_errors", {}).values()),
        "client_loop": result["loop"],
        "server_cpu_ms_per_req": round(cpu["server_s"] / done * 1000, 3),
        "client_cpu_ms_per_req": round(result["cpu_s"] / done * 1000, 3),
        "server_cores": round(cpu["server_s"] / wall_s, 2) if wall_s else None,
        # The load client's CPU during the run: cores, and share of the machine's.
        "client_cores": round(client_cores, 2) if client_cores is not None else None,
        "client_machine_pct": (
            round(100 * client_cores / (psutil.cpu_count() or 1), 1)
            if client_cores is not None
            else None
        ),
        "other_cpu_pct": cpu["other_pct"],
        "steal_pct": cpu["steal_pct"],
    }


def serve_and_measure(
    server: Server,
    setup: Setup,
    clients: list[int],
    bodies: list[str],
    keys: dict[str, dict[str, str]],
    args,
    work: Path,
    direct: int,
) -> list[dict[str, Any]]:
    """Start `server`, wait until it answers (and, on Ray, its `direct` direct-ingress
    replicas have registered), measure one run per number of `clients`, stop it and remove
    the Ray temp dir it made."""
    if not port_free(server.port):
        raise RuntimeError(f"port {server.port} is in use; pass --port-base")
    made_ray_temp = server.ray_temp is not None and not Path(server.ray_temp).exists()
    say(f"starting {server.name} on :{server.port} ...")
    started = time.perf_counter()
    runs = []
    try:
        server.start()
        server.wait_ready(READY_TIMEOUT_S)
        if server.ray_temp:
            settle(server.port, direct, server.direct_ports)
        say(f"  ready in {time.perf_counter() - started:.1f} s")
        for n in clients:
            result = measure(server, setup, bodies, n, keys, args, work)
            runs.append(result)
            say(
                f"  {n} client(s): p50 {result['p50_ms']} p95 {result['p95_ms']} "
                f"p99 {result['p99_ms']} ms, {result['rps']} req/s, "
                f"{result['errors']} errors, RSS {result['rss_mb']} MB, "
                f"stages {result['stages_ms']}, server CPU "
                f"{result['server_cpu_ms_per_req']} ms/req on "
                f"{result['server_cores']} cores, client {result['client_cores']} cores, "
                f"other {result['other_cpu_pct']} %"
            )
    finally:
        say(f"  stopping {server.name} ...")
        if killed := server.stop():
            say(f"  had to SIGKILL leftover pids {killed}")
        if made_ray_temp:
            shutil.rmtree(server.ray_temp, ignore_errors=True)
    return runs


def direct_replicas(config: LiftgateConfig, replicas: int) -> int:
    """Direct-ingress ports to wait for: one per ingress replica in throughput-optimized or
    HAProxy mode, none with the Python proxy."""
    mode = config.serving.mode
    return replicas if mode.throughput_optimized or mode.haproxy else 0


def run_core(home: Path, requests: int | None) -> dict[str, Any] | None:
    """harness.core's document (``{"core": [...], ...}``) for `home`, run as its own process
    while no server runs; None if it failed (said on stderr)."""
    command = [sys.executable, "-m", "harness.core", "--home", str(home), "--json"]
    if requests is not None:
        command += ["--requests", str(requests)]
    env = {**os.environ, "MLFLOW_ENABLE_TELEMETRY": "false", "DO_NOT_TRACK": "1"}
    say("the decision core in process (harness.core) ...")
    try:
        done = subprocess.run(
            command, cwd=LOAD_TESTS, env=env, stdout=subprocess.PIPE, text=True,
            timeout=CORE_TIMEOUT_S, check=False,
        )  # fmt: skip
        if done.returncode == 0:
            return json.loads(done.stdout)
        say(f"  harness.core failed (exit {done.returncode})")
    except (subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
        say(f"  harness.core failed: {exc}")
    return None


def measure_growth(
    home: Path, config: LiftgateConfig, keys: dict[str, dict[str, str]], args, work: Path
) -> list[dict[str, Any]]:
    """ray-fused at 8 clients for each number of replicas and of candidates, every action
    of the catalogue scored in every decision."""
    from liftgate.core.home import Home

    customers = offered_every_action(Home(home), config)
    if not customers:
        raise RuntimeError("no customer granted every channel and meets every action's rules")
    bodies = customer_only_bodies(customers, args.warmup + args.requests)
    say(f"growth: {len(customers):,} customers are offered every action")
    rows = []
    for k, (replicas, n) in enumerate(product(GROWTH_REPLICAS, GROWTH_CANDIDATES)):
        run_dir = work / f"growth-{replicas}-{n}"
        config_dir = config_with_actions(run_dir, config.directory, n)
        set_serving(config_dir, {"replicas": replicas})
        port = args.port_base + GROWTH_PORT_OFFSET + k
        [(setup, server)] = make_servers(home, run_dir, port, ["ray-fused"], config, config_dir)
        say(f"growth: {replicas} replica(s), {n} candidates")
        direct = direct_replicas(config, replicas)
        [run] = serve_and_measure(
            server, setup, [GROWTH_CLIENTS], bodies, keys, args, run_dir, direct
        )
        rows.append({"replicas": replicas, "candidates": n, **run})
    for row in rows:
        base = next(r for r in rows if r["replicas"] == row["replicas"] and r["candidates"] == 5)
        row["ratio_rps_vs_5"] = round(row["rps"] / base["rps"], 3) if base["rps"] else None
    return rows


def hop_cost(runs: list[dict[str, Any]]) -> dict[str, float] | None:
    """What one handle hop adds to a request, from floor-composed beside floor at 1 client
    (two hops a request): mean latency and server CPU, ms; None without both runs.

    >>> runs = [{"name": "floor", "clients": 1, "mean_ms": 1.0, "server_cpu_ms_per_req": 1.1},
    ...         {"name": "floor-composed", "clients": 1, "mean_ms": 5.0,
    ...          "server_cpu_ms_per_req": 4.1}]
    >>> hop_cost(runs)
    {'latency_ms': 2.0, 'server_cpu_ms': 1.5}
    """
    one = {r["name"]: r for r in runs if r["clients"] == 1}
    fused, composed = one.get("floor"), one.get("floor-composed")
    if fused is None or composed is None:
        return None
    return {
        key: round((composed[field] - fused[field]) / COMPOSED_HOPS, 3)
        for key, field in (("latency_ms", "mean_ms"), ("server_cpu_ms", "server_cpu_ms_per_req"))
    }


# --- home ---------------------------------------------------------------------------------------


def build_home(home: Path, rows: int) -> None:
    """A fresh LIFTGATE_HOME: a small world, its customers as the online store, a champion."""
    from liftgate.core.home import Home

    env = {**os.environ, "LIFTGATE_HOME": str(home), "MLFLOW_ENABLE_TELEMETRY": "false"}
    cli = [sys.executable, "-m", "liftgate.app.cli.main"]
    world = home / "worlds" / "w1"
    steps = [
        [*cli, "world", "generate", "--rows", str(rows), "--seed", "1", "--out", str(world)],
        [*cli, "train", "--data", str(world)],
    ]
    started = time.perf_counter()
    for i, step in enumerate(steps):
        done = subprocess.run(step, cwd=ROOT, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(step[2:])} failed:\n{done.stdout}\n{done.stderr}")
        if i == 0:
            fill_online_store(world, Home(home))
    say(f"built LIFTGATE_HOME {home} ({rows:,} rows) in {time.perf_counter() - started:.0f} s")


# --- report -------------------------------------------------------------------------------------

RUN_KEYS = ("name", "topology", "fsync", "clients", "p50_ms", "p95_ms", "p99_ms", "rps",
            "errors", "rss_mb", "ratio_p95_vs_fastapi", "floor", "ratio_rps_vs_floor",
            "ratio_p95_vs_floor", "server_cpu_ms_per_req", "client_cores",
            "client_machine_pct")  # fmt: skip
GROWTH_KEYS = ("replicas", "candidates", "p50_ms", "p95_ms", "p99_ms", "rps", "errors",
               "rss_mb", "ratio_rps_vs_5", "server_cpu_ms_per_req", "client_cores",
               "client_machine_pct")  # fmt: skip


def busy_clients(runs: list[dict[str, Any]]) -> list[str]:
    """A warning for each run whose load client used more than CLIENT_SHARE_WARN_PCT % of
    the machine."""
    return [
        f"warning: the load client used {r['client_machine_pct']} % of the machine "
        f"({r['client_cores']} cores) in {r['name']} at {r['clients']} client(s): it took "
        f"cores the server would use, so that run understates the server"
        for r in runs
        if (r.get("client_machine_pct") or 0) > CLIENT_SHARE_WARN_PCT
    ]


def print_report(
    runs: list[dict],
    core: dict | None,
    growth: list[dict],
    checks: list[dict],
    args,
    home: Path,
) -> None:
    if core is not None:
        print_core(core)
    if runs:
        print_runs(runs, args, home)
    if growth:
        print_growth(growth)
    for line in busy_clients([*runs, *growth]):
        print(line)
    print("\ntargets:")
    for c in checks:
        print(f"  [{verdict(c)}] {c['target']} {fmt(c['limit'])}: {fmt(c['value'])}")


def print_core(core: dict) -> None:
    """harness.core's rows, with the configured fsync policy's extra row and the targets."""
    rows = [*core["core"], *([core["configured"]] if core.get("configured") else [])]
    if not rows:
        print("the decision core in process: harness.core gave no result (see stderr)\n")
        return
    print("the decision core in process (harness.core: DecisionService.decide, no HTTP, one")
    print("request after another), µs:")
    header = ("candidates", "scored", "fsync", "mean µs", "p50 µs", "p99 µs", "target")
    print_table(header, [
        (str(r["candidates"]), fmt(r.get("scored"), 1), r["fsync"], fmt(r["mean_us"], 1),
         fmt(r["p50_us"], 1), fmt(r["p99_us"], 1),
         core_target(r["candidates"]) if r in core["core"] else "(configured fsync)")
        for r in rows
    ])  # fmt: skip
    print()


def core_target(candidates: int) -> str:
    """The core's targets for this number of candidates, as a table cell."""
    limits = [
        f"{statistic.removesuffix('_us')} ≤ {limit:.0f}"
        for n, statistic, limit in CORE_LIMITS_US
        if n == candidates
    ]
    return ", ".join(limits) or "-"


def print_runs(runs: list[dict], args, home: Path) -> None:
    header = ("name", "topology", "fsync", "clients", "p50 ms", "p95 ms", "p99 ms", "req/s",
              "errors", "RSS MB", "vs", "req/s ÷ vs", "p95 ÷ vs", "p95/fastapi", "cli cores",
              "cli % box")  # fmt: skip
    rows = [
        (
            r["name"],
            r["topology"],
            r["fsync"],
            str(r["clients"]),
            fmt(r["p50_ms"]),
            fmt(r["p95_ms"]),
            fmt(r["p99_ms"]),
            fmt(r["rps"], 0),
            str(r["errors"]),
            fmt(r["rss_mb"], 0),
            fmt(r["floor"]),
            fmt(r["ratio_rps_vs_floor"]),
            fmt(r["ratio_p95_vs_floor"]),
            fmt(r["ratio_p95_vs_fastapi"]),
            fmt(r["client_cores"]),
            fmt(r["client_machine_pct"], 0),
        )  # fmt: skip
        for r in runs
    ]
    client = runs[0]["client_loop"]
    print(
        f"POST /v1/decide (the floors: POST /score), closed loop, {args.requests} requests per "
        f"run after a {args.warmup}-request warm-up on 8 connections; LIFTGATE_HOME {home}\n"
        f"client: harness.closed_loop (own process, {client}, raw HTTP/1.1 keep-alive, "
        f"per-request timing, no coordinated-omission correction)\n"
        f"vs: the floor of the run's topology, same clients, same run; cli: the load "
        f"client's CPU during the run, in cores and in % of the machine's\n"
    )
    print_table(header, rows)
    if hop := hop_cost(runs):
        print(
            f"\none handle hop (floor-composed beside floor, 1 client, {COMPOSED_HOPS} hops a "
            f"request): +{hop['latency_ms']:.2f} ms mean latency, +{hop['server_cpu_ms']:.2f} "
            f"ms server CPU"
        )

    print("\nmean ms per stage inside the service (liftgate_stage_seconds, measured requests,")
    print("summed over replicas; `total` excludes HTTP, validation and JSON encoding; CPU in")
    print("ms per request of the server tree and of the load client, server cores busy, and")
    print("the share of all cores used by other processes (not interrupts) / stolen by the host):")
    sheader = ("name", "clients", *STAGES, "client mean", "mean - total", "srv CPU/req",
               "srv cores", "cli CPU/req", "other %", "steal %")  # fmt: skip
    srows = []
    for r in runs:
        s = r["stages_ms"]
        outside = None
        if s.get("total") is not None:
            # mean client latency minus mean in-service total: framework + proxy + network
            outside = r["mean_ms"] - s["total"] if r.get("mean_ms") is not None else None
        srows.append((r["name"], str(r["clients"]), *(fmt(s.get(st), 3) for st in STAGES),
                      fmt(r["mean_ms"], 3), fmt(outside, 3), fmt(r["server_cpu_ms_per_req"], 3),
                      fmt(r["server_cores"]), fmt(r["client_cpu_ms_per_req"], 3),
                      fmt(r["other_cpu_pct"], 1), fmt(r["steal_pct"], 1)))  # fmt: skip
    print_table(sheader, srows)


def print_growth(growth: list[dict]) -> None:
    print(f"\ngrowth: ray-fused at {GROWTH_CLIENTS} clients against candidates and replicas")
    print("(a customer id alone, every action offered and scored; RSS of the whole service):")
    header = ("replicas", "candidates", "p50 ms", "p95 ms", "p99 ms", "req/s", "÷ 5 cand.",
              "errors", "RSS MB", "srv CPU/req", "cli cores", "cli % box")  # fmt: skip
    print_table(header, [
        (str(r["replicas"]), str(r["candidates"]), fmt(r["p50_ms"]), fmt(r["p95_ms"]),
         fmt(r["p99_ms"]), fmt(r["rps"], 0), fmt(r["ratio_rps_vs_5"]), str(r["errors"]),
         fmt(r["rss_mb"], 0), fmt(r["server_cpu_ms_per_req"], 3), fmt(r["client_cores"]),
         fmt(r["client_machine_pct"], 0))
        for r in growth
    ])  # fmt: skip


# --- main -------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="One JSON document on stdout.")
    parser.add_argument("--requests", type=int, default=2000, help="Measured requests per run.")
    parser.add_argument("--warmup", type=int, default=200, help="Warm-up requests per run.")
    parser.add_argument("--home", type=Path, help="LIFTGATE_HOME (default: build a fresh one).")
    parser.add_argument("--rows", type=int, default=60_000, help="World rows for a fresh home.")
    parser.add_argument("--port-base", type=int, default=18100, help="Ports base, base+1, ...")
    parser.add_argument("--clients", default="1,8", help="Concurrent connections per run.")
    parser.add_argument(
        "--only",
        default=",".join(DEFAULT_SETUPS),
        help=f"Servers, in this order, of: {','.join(s.name for s in SETUPS)} ('': none).",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="Per-request timeout, s.")
    parser.add_argument(
        "--fsync",
        help="Run each server once per log fsync policy, of always,group,off (default: "
        "serving.yaml's only), and print the cost of each beside off.",
    )
    parser.add_argument(
        "--growth", action="store_true", help="Also ray-fused against candidates and replicas."
    )
    parser.add_argument("--no-core", action="store_true", help="Leave the core out.")
    parser.add_argument("--core-requests", type=int, help="harness.core's --requests.")
    parser.add_argument("--keep-home", action="store_true", help="Keep a fresh home.")
    args = parser.parse_args()

    clients = [int(c) for c in args.clients.split(",")]
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    if unknown := set(names) - {s.name for s in SETUPS}:
        parser.error(f"unknown servers {sorted(unknown)}")
    fresh = args.home is None
    home = Path(tempfile.mkdtemp(prefix="lgbench-")) if fresh else args.home.resolve()
    work = Path(tempfile.mkdtemp(prefix="lgbench-run-"))
    runs: list[dict] = []
    try:
        if fresh:
            build_home(home, args.rows)
        from configs.loader import load_config
        from liftgate.core.home import Home

        core = None
        if not args.no_core:
            wait_quiet()
            core = run_core(home, args.core_requests) or {"core": []}
        bodies = encoded_bodies(known_customer_ids(Home(home)), args.warmup + args.requests)
        keys = {role: api_key_headers(Home(home), role) for role in ("app", "admin")}
        config = load_config()
        direct = direct_replicas(config, config.serving.replicas)
        configured = config.serving.decision_log.fsync
        policies = args.fsync.split(",") if args.fsync else [configured]
        for k, policy in enumerate(policies):  # each policy's servers on ports of their own
            config_dir = config_with_fsync(work, config.directory, policy) if args.fsync else None
            run_dir = work / f"fsync-{policy}"
            port_base = args.port_base + 10 * k
            for setup, server in make_servers(home, run_dir, port_base, names, config, config_dir):
                say(f"{server.name}, fsync {policy}:")
                for result in serve_and_measure(
                    server, setup, clients, bodies, keys, args, run_dir, direct
                ):
                    runs.append({**result, "fsync": policy})
        growth = measure_growth(home, config, keys, args, work) if args.growth else []
        add_ratios(runs)
        measured = [r for r in runs if r["fsync"] == configured]
        checks = check_targets(measured, core and core["core"], growth)
        if args.json:
            for line in busy_clients([*runs, *growth]):
                say(line)
            document = {
                "runs": [{k: r[k] for k in RUN_KEYS} for r in runs],
                "core": core and core["core"],
                "core_configured": core and core.get("configured"),
                "hop": hop_cost(measured),
                "growth": [{k: r[k] for k in GROWTH_KEYS} for r in growth],
                "targets": checks,
            }
            print(json.dumps(document))
        else:
            print_report(runs, core, growth, checks, args, home)
            if len(policies) > 1:
                print("\nthe logs' fsync policy (serving.yaml decision_log.fsync), each run beside")
                print("the same server and clients with fsync off (written, not fsynced):")
                print_table(COST_HEADER, cost_rows(runs))
        return 0 if all(c["pass"] is not False for c in checks) else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if fresh and not args.keep_home:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
