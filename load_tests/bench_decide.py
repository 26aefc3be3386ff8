"""Latency, throughput and memory of POST /v1/decide: plain FastAPI vs. Ray Serve (fused, composed).

Run: ``.venv/bin/python load_tests/bench_decide.py [--json] [--requests 2000] [--home DIR]
[--fsync off,group]``

One run starts each server as its own process, one after another (each is stopped before
the next starts, so they never share the 2 cores):

- ``fastapi``: plain FastAPI + uvicorn (1 worker, no access log) on the same classes
  (``serving.local``), the baseline;
- ``ray-fused`` / ``ray-composed``: ``python -m liftgate.app.cli.main serve --topology ...``
  with the default ``configs/serving.yaml`` (replicas, Serve modes), clients sent to its HTTP port;
- on request (``--only``), ``floor`` / ``floor-ray``: the floor (load_tests/floor/), the
  smallest app that does what /v1/decide does at its core, under plain uvicorn and as one
  fused Ray Serve deployment with the same replicas and Serve modes: the stack's own cost.
  They answer POST /score; they have no stage histogram.

Against each, a closed loop of POST /v1/decide at 1 and at 8 concurrent keep-alive
connections: a warm-up of 200 requests on 8 connections, then ``--requests`` measured
requests. Bodies are the same for every server (fixed seed): known customer ids from the
online store, some with request context, some with candidate lists, a few unknown ids.
Requests to liftgate's servers carry an API key of role app, created in the home, so the
key check and the rate limit are on the measured path; /metrics is scraped with an admin key.

The load client is ``harness.closed_loop``, a separate process: raw HTTP/1.1 keep-alive,
per-request timing, no coordinated-omission correction. The client shares the 2 cores with
the server.

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

Without ``--home`` a temporary LIFTGATE_HOME is built first (small world, online store,
``liftgate train``; about 30 s) and removed at the end. Progress goes to stderr;
``--json`` prints one JSON document on stdout and nothing else.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.closed_loop import ClientProcess, LoadSpec  # load_tests/, beside this file
from harness.fsync import COST_HEADER, config_with_fsync, cost_rows
from harness.homes import api_key_headers, fill_online_store, known_customer_ids
from harness.machine import wait_quiet
from harness.metrics import STAGES, scrape_stages, stage_means
from harness.probes import HOST, port_free
from harness.replicas import settle
from harness.request_mix import encoded_bodies
from harness.servers import Server
from harness.stats import latency_summary
from harness.tables import fmt, print_table, say
from harness.usage import CpuSnapshot, RssSampler, cpu_between

if TYPE_CHECKING:
    from configs.loader import LiftgateConfig

ROOT = Path(__file__).resolve().parents[1]
FLOOR = Path(__file__).resolve().parent / "floor"

# Targets (milliseconds, requests per second, bytes).
FUSED_8_P95_MS = 8.0
FUSED_8_P99_MS = 25.0
FUSED_8_RPS = 1500.0
FUSED_8_RATIO = 1.5
FUSED_1_P95_MS = 2.0
COMPOSED_P95_MS = 40.0
COMPOSED_RPS = 300.0
RSS_LIMIT_MB = 3 * 1024.0

READY_TIMEOUT_S = 240.0


@dataclass(frozen=True)
class Setup:
    """A server the benchmark can start: what the load posts to, whether it is liftgate's
    (it asks for API keys and serves the stage histogram) or the floor, and the status of
    a successful answer."""

    name: str
    topology: str
    path: str
    liftgate: bool
    ok_status: int = 200


SETUPS = (  # ports --port-base + index
    Setup("fastapi", "fused", "/v1/decide", True),
    Setup("ray-fused", "fused", "/v1/decide", True),
    Setup("ray-composed", "composed", "/v1/decide", True),
    Setup("floor", "floor", "/score", False),
    Setup("floor-ray", "floor F", "/score", False),
)


def make_servers(
    home: Path,
    run_dir: Path,
    port_base: int,
    names: list[str],
    config: LiftgateConfig,
    config_dir: Path | None = None,
) -> list[tuple[Setup, Server]]:
    """(setup, server) of each named setup, in SETUPS order; Ray servers get the Ray temp
    dir `liftgate serve` would use on their port. With `config_dir`, liftgate's servers
    read their configuration there (LIFTGATE_CONFIG_DIR)."""
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
        ray_temp = None
        server_env = env
        if setup.name == "fastapi":
            command = [
                python, "-m", "uvicorn", "--factory", "serving.local:app_from_env",
                "--host", HOST, "--port", str(port), "--no-access-log",
            ]  # fmt: skip
        elif setup.name == "floor":
            command = [
                python, "-m", "uvicorn", "--app-dir", str(FLOOR), "plain_app:app",
                "--host", HOST, "--port", str(port), "--no-access-log",
            ]  # fmt: skip
        elif setup.name == "floor-ray":
            ray_temp = ray_temp_dir(Home(home), port)
            server_env = {**env, **ray_env(config)}
            command = [
                python, str(FLOOR / "run_serve.py"), "F", "--port", str(port),
                "--replicas", str(config.serving.replicas),
                "--replica-cpus", str(config.serving.replica_cpus), "--ray-temp", ray_temp,
            ]  # fmt: skip
        else:
            command = [
                python, "-m", "liftgate.app.cli.main", "serve",
                "--host", HOST, "--port", str(port), "--topology", setup.topology,
            ]  # fmt: skip
            ray_temp = ray_temp_dir(Home(home), port)
        log = run_dir / f"{setup.name}.log"
        server = Server(setup.name, setup.topology, port, command, server_env, log, ROOT, ray_temp)
        servers.append((setup, server))
    return servers


# --- one measured run -------------------------------------------------------------------------


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
    if result["error_samples"]:
        say(f"  errors: {result['errors']} e.g. {result['error_samples'][:3]}")
    return {
        "name": server.name,
        "topology": server.topology,
        "clients": clients,
        **latency_summary(result["latencies_ns"], result["wall_s"]),
        "errors": result["errors"]["status"] + result["errors"]["socket"],
        "rss_mb": round(peak / 2**20, 1),
        "stages_ms": stage_means(before, after) if setup.liftgate else dict.fromkeys(STAGES),
        "metrics_replicas": len(ports),
        "warmup_errors": sum(client.warm.get("warm_errors", {}).values()),
        "client_loop": result["loop"],
        "server_cpu_ms_per_req": round(cpu["server_s"] / done * 1000, 3),
        "client_cpu_ms_per_req": round(result["cpu_s"] / done * 1000, 3),
        "server_cores": round(cpu["server_s"] / result["wall_s"], 2) if result["wall_s"] else None,
        "other_cpu_pct": cpu["other_pct"],
        "steal_pct": cpu["steal_pct"],
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


def add_ratios(runs: list[dict]) -> None:
    baseline = {(r["clients"], r["fsync"]): r["p95_ms"] for r in runs if r["name"] == "fastapi"}
    for r in runs:
        base = baseline.get((r["clients"], r["fsync"]))
        r["ratio_p95_vs_fastapi"] = round(r["p95_ms"] / base, 2) if base else None


def check_targets(runs: list[dict]) -> list[dict]:
    checks = []

    def check(what: str, value, limit, ok: bool | None) -> None:
        checks.append({"target": what, "value": value, "limit": limit, "pass": ok})

    def run(name: str, clients: int) -> dict | None:
        return next((r for r in runs if r["name"] == name and r["clients"] == clients), None)

    def leq(value, limit):
        return None if value is None else value <= limit

    if f8 := run("ray-fused", 8):
        check("fused, 8 clients: p95 ms <=", f8["p95_ms"], FUSED_8_P95_MS,
              leq(f8["p95_ms"], FUSED_8_P95_MS))  # fmt: skip
        check("fused, 8 clients: p99 ms <=", f8["p99_ms"], FUSED_8_P99_MS,
              leq(f8["p99_ms"], FUSED_8_P99_MS))  # fmt: skip
        check("fused, 8 clients: req/s >=", f8["rps"], FUSED_8_RPS, f8["rps"] >= FUSED_8_RPS)
        check("fused, 8 clients: p95 / FastAPI p95 <=", f8["ratio_p95_vs_fastapi"],
              FUSED_8_RATIO, leq(f8["ratio_p95_vs_fastapi"], FUSED_8_RATIO))  # fmt: skip
        check("fused, 8 clients: errors ==", f8["errors"], 0, f8["errors"] == 0)
    if f1 := run("ray-fused", 1):
        check("fused, 1 client: p95 ms <=", f1["p95_ms"], FUSED_1_P95_MS,
              leq(f1["p95_ms"], FUSED_1_P95_MS))  # fmt: skip
    if c8 := run("ray-composed", 8):
        check("composed, 8 clients: p95 ms <=", c8["p95_ms"], COMPOSED_P95_MS,
              leq(c8["p95_ms"], COMPOSED_P95_MS))  # fmt: skip
        check("composed, 8 clients: req/s >=", c8["rps"], COMPOSED_RPS,
              c8["rps"] >= COMPOSED_RPS)  # fmt: skip
    for name in ("ray-fused", "ray-composed"):
        peaks = [r["rss_mb"] for r in runs if r["name"] == name]
        if peaks:
            check(f"{name}: whole-app RSS MB <=", max(peaks), RSS_LIMIT_MB,
                  max(peaks) <= RSS_LIMIT_MB)  # fmt: skip
    return checks


def print_report(runs: list[dict], checks: list[dict], args, home: Path) -> None:
    header = ("name", "topology", "fsync", "clients", "p50 ms", "p95 ms", "p99 ms", "req/s",
              "errors", "RSS MB", "p95/fastapi")  # fmt: skip
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
            fmt(r["ratio_p95_vs_fastapi"]),
        )  # fmt: skip
        for r in runs
    ]
    client = runs[0]["client_loop"] if runs else "?"
    print(
        f"POST /v1/decide, closed loop, {args.requests} requests per run after a "
        f"{args.warmup}-request warm-up on 8 connections; LIFTGATE_HOME {home}\n"
        f"client: harness.closed_loop (own process, {client}, raw HTTP/1.1 keep-alive, "
        f"per-request timing, no coordinated-omission correction)\n"
    )
    print_table(header, rows)

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

    print("\ntargets:")
    for c in checks:
        verdict = {True: "PASS", False: "MISS", None: "n/a"}[c["pass"]]
        print(f"  [{verdict}] {c['target']} {fmt(c['limit'])}: {fmt(c['value'])}")


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
        default="fastapi,ray-fused,ray-composed",
        help=f"Servers, of: {','.join(s.name for s in SETUPS)}.",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="Per-request timeout, s.")
    parser.add_argument(
        "--fsync",
        help="Run each server once per log fsync policy, of always,group,off (default: "
        "serving.yaml's only), and print the cost of each beside off.",
    )
    parser.add_argument("--keep-home", action="store_true", help="Keep a fresh home.")
    args = parser.parse_args()

    clients = [int(c) for c in args.clients.split(",")]
    names = [n.strip() for n in args.only.split(",")]
    if unknown := set(names) - {s.name for s in SETUPS}:
        parser.error(f"unknown servers {sorted(unknown)}")
    fresh = args.home is None
    home = Path(tempfile.mkdtemp(prefix="lgbench-")) if fresh else args.home.resolve()
    work = Path(tempfile.mkdtemp(prefix="lgbench-run-"))
    servers: list[tuple[Setup, Server]] = []
    runs: list[dict] = []
    created_ray_dirs: list[str] = []
    try:
        if fresh:
            build_home(home, args.rows)
        from configs.loader import load_config
        from liftgate.core.home import Home

        bodies = encoded_bodies(known_customer_ids(Home(home)), args.warmup + args.requests)
        keys = {role: api_key_headers(Home(home), role) for role in ("app", "admin")}
        config = load_config()
        mode = config.serving.mode
        direct = config.serving.replicas if mode.throughput_optimized or mode.haproxy else 0
        configured = config.serving.decision_log.fsync
        policies = args.fsync.split(",") if args.fsync else [configured]
        plan = []  # (setup, server, fsync policy): each policy's servers on ports of their own
        for k, policy in enumerate(policies):
            config_dir = config_with_fsync(work, config.directory, policy) if args.fsync else None
            for setup, server in make_servers(
                home, work / f"fsync-{policy}", args.port_base + 10 * k, names, config, config_dir
            ):
                plan.append((setup, server, policy))
        servers = [(setup, server) for setup, server, _ in plan]
        for setup, server, policy in plan:
            if not port_free(server.port):
                raise RuntimeError(f"port {server.port} is in use; pass --port-base")
            if server.ray_temp and not Path(server.ray_temp).exists():
                created_ray_dirs.append(server.ray_temp)
            say(f"starting {server.name} (fsync {policy}) on :{server.port} ...")
            started = time.perf_counter()
            server.start()
            try:
                server.wait_ready(READY_TIMEOUT_S)
                if server.ray_temp:
                    settle(server.port, direct, server.direct_ports)
                say(f"  ready in {time.perf_counter() - started:.1f} s")
                for n in clients:
                    result = measure(server, setup, bodies, n, keys, args, work)
                    result["fsync"] = policy
                    runs.append(result)
                    say(
                        f"  {n} client(s): p50 {result['p50_ms']} p95 {result['p95_ms']} "
                        f"p99 {result['p99_ms']} ms, {result['rps']} req/s, "
                        f"{result['errors']} errors, RSS {result['rss_mb']} MB, "
                        f"stages {result['stages_ms']}, server CPU "
                        f"{result['server_cpu_ms_per_req']} ms/req on "
                        f"{result['server_cores']} cores, other {result['other_cpu_pct']} %"
                    )
            finally:
                say(f"  stopping {server.name} ...")
                killed = server.stop()
                if killed:
                    say(f"  had to SIGKILL leftover pids {killed}")
        add_ratios(runs)
        checks = check_targets([r for r in runs if r["fsync"] == configured])
        if args.json:
            keys = ("name", "topology", "fsync", "clients", "p50_ms", "p95_ms", "p99_ms", "rps",
                    "errors", "rss_mb", "ratio_p95_vs_fastapi")  # fmt: skip
            print(json.dumps({"runs": [{k: r[k] for k in keys} for r in runs]}))
        else:
            print_report(runs, checks, args, home)
            if len(policies) > 1:
                print("\nthe logs' fsync policy (serving.yaml decision_log.fsync), each run beside")
                print("the same server and clients with fsync off (written, not fsynced):")
                print_table(COST_HEADER, cost_rows(runs))
        return 0 if all(c["pass"] is not False for c in checks) else 1
    finally:
        for _, server in servers:  # belt and braces: a server whose start failed midway
            with contextlib.suppress(Exception):
                server.stop()
        for path in created_ray_dirs:
            shutil.rmtree(path, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
        if fresh and not args.keep_home:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
