"""Latency, throughput and memory of POST /v1/decide: plain FastAPI vs. Ray Serve (fused, composed).

Run: ``.venv/bin/python load_tests/bench_decide.py [--json] [--requests 2000] [--home DIR]``

One run starts each server as its own process, one after another (each is stopped before
the next starts, so they never share the 2 cores):

- ``fastapi``: plain FastAPI + uvicorn (1 worker, no access log) on the same classes
  (``serving.local``), the floor;
- ``ray-fused`` / ``ray-composed``: ``python -m liftgate.app.cli.main serve --topology ...``
  with the default ``configs/serving.yaml`` (replicas, Serve modes), clients sent to its HTTP port.

Against each, a closed loop of POST /v1/decide at 1 and at 8 concurrent keep-alive
connections: a warm-up of 200 requests on 8 connections, then ``--requests`` measured
requests. Bodies are the same for every server (fixed seed): known customer ids from the
online store, some with request context, some with candidate lists, a few unknown ids.

The load client is this file run as a separate process (``--client``): asyncio (uvloop when
installed) with raw HTTP/1.1 keep-alive sockets, pre-built request bytes, and one
``perf_counter_ns`` pair per request from write to the last response byte. Percentiles are
of those per-request latencies, with no coordinated-omission correction (wrk applies one
before ``done()``, which inflates tail percentiles of a closed loop; see
shared/stack/RAY_SERVE_MODES.md). The client shares the 2 cores with the server.

RSS is the sum over the server's process tree (uvicorn; or the Serve driver, gcs, raylet,
Ray workers and agents, haproxy), sampled every 0.2 s during the measured runs; the table
shows the maximum. Errors are non-200 answers plus socket errors and timeouts. After each
measured run, every replica's ``/metrics`` (each direct-ingress port of a Ray ingress
replica, or the server port) is scraped and the ``liftgate_stage_seconds`` histogram is
differenced against a scrape before the run, giving the mean time per stage of the
measured requests.

Without ``--home`` a temporary LIFTGATE_HOME is built first (small world, online store,
``liftgate train``; about 30 s) and removed at the end. Progress goes to stderr;
``--json`` prints one JSON document on stdout and nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from request_mix import CANDIDATES, CONTEXTS  # load_tests/, beside this file

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"

# Targets (milliseconds, requests per second, bytes).
FUSED_8_P95_MS = 8.0
FUSED_8_P99_MS = 25.0
FUSED_8_RPS = 1500.0
FUSED_8_RATIO = 1.5
FUSED_1_P95_MS = 2.0
COMPOSED_P95_MS = 40.0
COMPOSED_RPS = 300.0
RSS_LIMIT_MB = 3 * 1024.0

STAGES = ("features", "scoring", "allocation", "log", "total")
DIRECT_INGRESS_PORTS = range(30000, 31001)  # RAY_SERVE_DIRECT_INGRESS_MIN/MAX_HTTP_PORT
READY_TIMEOUT_S = 240.0


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- request bodies --------------------------------------------------------------------------


def make_bodies(customer_ids: list[str], count: int, seed: int = 7) -> list[bytes]:
    """The request mix: 70 % known id, 15 % known id + context, 10 % known id + candidates,
    5 % unknown id (cold start); a request id on a third."""
    rng = random.Random(seed)
    bodies = []
    for i in range(count):
        draw = rng.random()
        if draw < 0.05:
            body: dict[str, Any] = {"customer_id": f"u{rng.randrange(10**9):09d}"}
        else:
            body = {"customer_id": rng.choice(customer_ids)}
            if draw < 0.20:
                body["context"] = rng.choice(CONTEXTS)
            elif draw < 0.30:
                body["candidates"] = rng.choice(CANDIDATES)
        if rng.random() < 1 / 3:
            body["request_id"] = f"bench-{i}"
        bodies.append(json.dumps(body, separators=(",", ":")).encode())
    return bodies


def known_customer_ids(home: Path) -> list[str]:
    import pyarrow.parquet as pq

    table = pq.read_table(home / "online_store" / "customers.parquet", columns=["customer_id"])
    return table.column("customer_id").to_pylist()


# --- the load client (run as its own process: `bench_decide.py --client SPEC`) ---------------


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: write a request, await the complete response."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future | None = None
        self.closed = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._try_complete()

    def connection_lost(self, exc) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"connection lost: {exc}"))

    def _try_complete(self) -> None:
        if self.waiter is None or self.waiter.done():
            return
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        status = int(head[9:12])
        match = re.search(rb"\r\ncontent-length:\s*(\d+)", head)
        if match:
            total = end + 4 + int(match.group(1))
            if len(self.buffer) < total:
                return
        elif b"transfer-encoding: chunked" in head:
            last = self.buffer.find(b"\r\n0\r\n\r\n", end)
            if last < 0:
                return
            total = last + 7
        else:  # no length: the body ends with the connection
            return
        body = bytes(self.buffer[end + 4 : total])
        del self.buffer[:total]
        keep = b"\r\nconnection: close" not in head
        self.waiter.set_result((status, keep, body))

    async def request(self, payload: bytes, timeout_s: float) -> tuple[int, bool, bytes]:
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(payload)
        return await asyncio.wait_for(self.waiter, timeout_s)


async def _closed_loop(
    port: int, requests: list[bytes], connections: int, timeout_s: float
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    latencies: list[int] = []
    statuses: dict[str, int] = {}
    errors = {"status": 0, "socket": 0}
    samples: list[str] = []
    queue = iter(requests)

    async def connect() -> _Connection:
        _, protocol = await loop.create_connection(_Connection, HOST, port)
        return protocol

    async def worker() -> None:
        conn: _Connection | None = None
        for payload in queue:
            try:
                if conn is None or conn.closed:
                    conn = await connect()
                started = time.perf_counter_ns()
                status, keep, body = await conn.request(payload, timeout_s)
                latencies.append(time.perf_counter_ns() - started)
            except (OSError, ConnectionError, TimeoutError, ValueError) as exc:
                errors["socket"] += 1
                if len(samples) < 5:
                    samples.append(f"{type(exc).__name__}: {exc}")
                if conn is not None and conn.transport is not None:
                    conn.transport.close()
                conn = None
                continue
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            if status != 200:
                errors["status"] += 1
                if len(samples) < 5:
                    samples.append(f"{status}: {body[:200]!r}")
            if not keep:
                conn.transport.close()
                conn = None
        if conn is not None and conn.transport is not None:
            conn.transport.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    wall = time.perf_counter() - started
    return {
        "latencies_ns": latencies,
        "wall_s": wall,
        "statuses": statuses,
        "errors": errors,
        "error_samples": samples,
    }


def _http_request(port: int, body: bytes) -> bytes:
    return (
        f"POST /v1/decide HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def client_main(spec_path: str) -> None:
    """Warm up, signal the parent (a line on stdout), wait for its go, run, print results."""
    spec = json.loads(Path(spec_path).read_text())
    bodies = [b.encode() for b in spec["bodies"]]
    port = spec["port"]
    requests = [_http_request(port, b) for b in bodies]
    warm = requests[: spec["warmup"]]
    measured = requests[spec["warmup"] : spec["warmup"] + spec["requests"]]
    try:
        import uvloop

        new_loop = uvloop.new_event_loop
        loop_name = "uvloop"
    except ImportError:
        new_loop = asyncio.new_event_loop
        loop_name = "asyncio"
    loop = new_loop()
    warm_result = loop.run_until_complete(
        _closed_loop(port, warm, spec["warmup_connections"], spec["timeout_s"])
    )
    print(json.dumps({"warm_errors": warm_result["errors"]}), flush=True)
    sys.stdin.readline()  # the parent scrapes /metrics, then says go
    cpu_started = time.process_time()
    result = loop.run_until_complete(
        _closed_loop(port, measured, spec["connections"], spec["timeout_s"])
    )
    result["cpu_s"] = time.process_time() - cpu_started
    result["loop"] = loop_name
    print(json.dumps(result), flush=True)


# --- servers -----------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    topology: str
    port: int
    command: list[str]
    env: dict[str, str]
    log: Path
    ray_temp: str | None = None
    process: subprocess.Popen | None = None
    seen: dict[int, float] = field(default_factory=dict)  # pid -> create_time

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tree(self) -> list:
        """The server's processes now: its descendants, plus any Ray/haproxy process of this
        run that was re-parented (matched by the run's Ray temp dir)."""
        import psutil

        if not self.alive():
            return []
        try:
            root = psutil.Process(self.process.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
        pids = {p.pid for p in procs}
        if self.ray_temp:
            for p in psutil.process_iter(["pid", "cmdline", "create_time"]):
                cmdline = " ".join(p.info["cmdline"] or ())
                if p.pid not in pids and self.ray_temp in cmdline:
                    procs.append(p)
                    pids.add(p.pid)
        for p in procs:
            with contextlib.suppress(psutil.Error):
                self.seen.setdefault(p.pid, p.create_time())
        return procs

    def rss_bytes(self) -> int:
        import psutil

        total = 0
        for p in self.tree():
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total

    def cpu_seconds(self) -> dict[int, float]:
        """User + system CPU seconds so far of each process of the tree."""
        import psutil

        seconds = {}
        for p in self.tree():
            with contextlib.suppress(psutil.Error):
                times = p.cpu_times()
                seconds[p.pid] = times.user + times.system
        return seconds

    def metrics_ports(self) -> list[int]:
        """Each Ray ingress replica's direct-ingress port (so every replica is scraped once),
        else the server's own port."""
        import psutil

        ports = set()
        for p in self.tree():
            with contextlib.suppress(psutil.Error):
                for c in p.net_connections(kind="tcp"):
                    if c.status == psutil.CONN_LISTEN and c.laddr.port in DIRECT_INGRESS_PORTS:
                        ports.add(c.laddr.port)
        return sorted(ports) or [self.port]

    def stop(self) -> list[int]:
        """SIGTERM the server (Serve and Ray shut down in its `finally`), then SIGKILL any
        process of its tree still alive. Returns the pids that had to be killed."""
        import psutil

        if self.process is None:
            return []
        self.tree()  # remember the latest tree before it goes
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        deadline = time.monotonic() + 15
        leftovers = self._leftovers()
        while leftovers and time.monotonic() < deadline:
            time.sleep(0.5)
            leftovers = self._leftovers()
        killed = []
        for p in leftovers:
            with contextlib.suppress(psutil.Error):
                name = " ".join(p.cmdline()[:2])[:60] or p.name()
                p.kill()
                killed.append(f"{p.pid} ({name})")
        return killed

    def _leftovers(self) -> list:
        import psutil

        alive = []
        for pid, created in self.seen.items():
            with contextlib.suppress(psutil.Error):
                p = psutil.Process(pid)
                if p.create_time() == created and p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
        return alive


def make_servers(home: Path, run_dir: Path, port_base: int, names: list[str]) -> list[Server]:
    from liftgate.app.runner import ray_temp_dir
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
    servers = []
    for offset, (name, topology) in enumerate(
        [("fastapi", "fused"), ("ray-fused", "fused"), ("ray-composed", "composed")]
    ):
        if name not in names:
            continue
        port = port_base + offset
        if name == "fastapi":
            command = [
                python, "-m", "uvicorn", "--factory", "serving.local:app_from_env",
                "--host", HOST, "--port", str(port), "--no-access-log",
            ]  # fmt: skip
            ray_temp = None
        else:
            command = [
                python, "-m", "liftgate.app.cli.main", "serve",
                "--host", HOST, "--port", str(port), "--topology", topology,
            ]  # fmt: skip
            ray_temp = ray_temp_dir(Home(home), port)
        servers.append(
            Server(name, topology, port, command, env, run_dir / f"{name}.log", ray_temp)
        )
    return servers


def wait_ready(server: Server, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        if not server.alive():
            tail = server.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{server.name} exited; {server.log}:\n{tail}")
        try:
            with urllib.request.urlopen(f"http://{HOST}:{server.port}/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError as exc:
            last = exc
        time.sleep(0.5)
    raise TimeoutError(f"{server.name} not ready after {timeout_s:.0f} s (last: {last})")


def settle(server: Server, replicas: int, timeout_s: float = 60.0) -> None:
    """Serve with HAProxy reloads haproxy while replicas register: wait until every ingress
    replica listens on its direct port and /readyz answers 200 five times in a row."""
    if server.name == "fastapi":
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ports = [p for p in server.metrics_ports() if p != server.port]
        if len(ports) >= replicas or not ports:
            break
        time.sleep(0.5)
    time.sleep(2.0)
    ok = 0
    while ok < 5 and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{server.port}/readyz", timeout=2) as r:
                ok = ok + 1 if r.status == 200 else 0
        except OSError:
            ok = 0
        time.sleep(0.2)


# --- metrics -----------------------------------------------------------------------------------

_STAGE_LINE = re.compile(r'^liftgate_stage_seconds_(sum|count)\{stage="(\w+)"\}\s+(\S+)$', re.M)


def scrape_stages(ports: list[int]) -> dict[str, dict[str, float]]:
    """Sum over replicas of each stage's histogram sum and count."""
    totals: dict[str, dict[str, float]] = {s: {"sum": 0.0, "count": 0.0} for s in STAGES}
    for port in ports:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=5) as r:
                text = r.read().decode()
        except OSError as exc:
            say(f"  (could not scrape :{port}/metrics: {exc})")
            continue
        for kind, stage, value in _STAGE_LINE.findall(text):
            if stage in totals:
                totals[stage][kind] += float(value)
    return totals


def stage_means(before: dict, after: dict) -> dict[str, float | None]:
    means: dict[str, float | None] = {}
    for stage in STAGES:
        count = after[stage]["count"] - before[stage]["count"]
        total = after[stage]["sum"] - before[stage]["sum"]
        means[stage] = round(total / count * 1000, 3) if count > 0 else None
    return means


# --- one measured run -------------------------------------------------------------------------


class RssSampler(threading.Thread):
    def __init__(self, server: Server, every_s: float = 0.2):
        super().__init__(daemon=True)
        self.server = server
        self.every_s = every_s
        self.peak = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, self.server.rss_bytes())
            self._stop_event.wait(self.every_s)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        self.peak = max(self.peak, self.server.rss_bytes())
        return self.peak


def percentile(sorted_values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        return float("nan")
    position = (len(sorted_values) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def wait_quiet(limit_pct: float = 30.0, timeout_s: float = 60.0) -> None:
    """Other work on the box (tests, builds) skews every figure: before a measured run,
    wait until all cores together are busy less than `limit_pct` % of one core."""
    import psutil

    cores = psutil.cpu_count() or 1
    deadline = time.monotonic() + timeout_s
    while True:
        busy = psutil.cpu_percent(interval=0.5) * cores
        if busy < limit_pct:
            return
        if time.monotonic() > deadline:
            say(f"  (the box stayed busy: {busy:.0f} % of a core before the run)")
            return


def measure(server: Server, bodies: list[bytes], clients: int, args, work: Path) -> dict[str, Any]:
    spec = {
        "port": server.port,
        "bodies": [b.decode() for b in bodies[: args.warmup + args.requests]],
        "warmup": args.warmup,
        "warmup_connections": 8,
        "requests": args.requests,
        "connections": clients,
        "timeout_s": args.timeout,
    }
    import psutil

    spec_path = work / f"spec-{server.name}-{clients}.json"
    spec_path.write_text(json.dumps(spec))
    client = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--client", str(spec_path)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        warm = json.loads(client.stdout.readline() or "{}")
        wait_quiet()
        ports = server.metrics_ports()
        before = scrape_stages(ports)
        sampler = RssSampler(server)
        sampler.start()
        cpu_before, system_before = server.cpu_seconds(), psutil.cpu_times()
        client.stdin.write("go\n")
        client.stdin.flush()
        line = client.stdout.readline()
        cpu_after, system_after = server.cpu_seconds(), psutil.cpu_times()
        peak = sampler.stop()
        after = scrape_stages(ports)
        client.wait(timeout=30)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    if not line:
        raise RuntimeError(f"load client failed (exit {client.returncode})")
    result = json.loads(line)
    latencies = sorted(ns / 1e6 for ns in result["latencies_ns"])
    done = max(len(latencies), 1)
    server_cpu = sum(cpu_after[pid] - cpu_before.get(pid, 0.0) for pid in cpu_after)
    elapsed = {  # guest time is already counted in user time
        name: getattr(system_after, name) - getattr(system_before, name)
        for name in system_after._fields
        if not name.startswith("guest")
    }
    wall_cpu = sum(elapsed.values()) or 1.0  # all cores
    busy = wall_cpu - elapsed.get("idle", 0.0) - elapsed.get("iowait", 0.0)
    busy -= elapsed.get("steal", 0.0) + elapsed.get("irq", 0.0) + elapsed.get("softirq", 0.0)
    other = max(busy - server_cpu - result["cpu_s"], 0.0)  # also this process
    errors = result["errors"]["status"] + result["errors"]["socket"]
    if result["error_samples"]:
        say(f"  errors: {result['errors']} e.g. {result['error_samples'][:3]}")
    return {
        "name": server.name,
        "topology": server.topology,
        "clients": clients,
        "p50_ms": round(percentile(latencies, 50), 3),
        "p95_ms": round(percentile(latencies, 95), 3),
        "p99_ms": round(percentile(latencies, 99), 3),
        "max_ms": round(latencies[-1], 3) if latencies else None,
        "mean_ms": round(sum(latencies) / len(latencies), 3) if latencies else None,
        "rps": round(len(latencies) / result["wall_s"], 1) if result["wall_s"] else 0.0,
        "errors": errors,
        "rss_mb": round(peak / 2**20, 1),
        "stages_ms": stage_means(before, after),
        "metrics_replicas": len(ports),
        "warmup_errors": sum(warm.get("warm_errors", {}).values()),
        "client_loop": result["loop"],
        "server_cpu_ms_per_req": round(server_cpu / done * 1000, 3),
        "client_cpu_ms_per_req": round(result["cpu_s"] / done * 1000, 3),
        "server_cores": round(server_cpu / result["wall_s"], 2) if result["wall_s"] else None,
        "other_cpu_pct": round(100 * other / wall_cpu, 1),
        "steal_pct": round(100 * elapsed.get("steal", 0.0) / wall_cpu, 1),
    }


# --- home ---------------------------------------------------------------------------------------


def build_home(home: Path, rows: int) -> None:
    """A fresh LIFTGATE_HOME: a small world, its customers as the online store, a champion."""
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
            (home / "online_store").mkdir(parents=True, exist_ok=True)
            shutil.copy(world / "customers.parquet", home / "online_store")
    say(f"built LIFTGATE_HOME {home} ({rows:,} rows) in {time.perf_counter() - started:.0f} s")


# --- report -------------------------------------------------------------------------------------


def add_ratios(runs: list[dict]) -> None:
    floor = {r["clients"]: r["p95_ms"] for r in runs if r["name"] == "fastapi"}
    for r in runs:
        base = floor.get(r["clients"])
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


def fmt(value, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def print_report(runs: list[dict], checks: list[dict], args, home: Path) -> None:
    header = ("name", "topology", "clients", "p50 ms", "p95 ms", "p99 ms", "req/s", "errors",
              "RSS MB", "p95/fastapi")  # fmt: skip
    rows = [
        (
            r["name"],
            r["topology"],
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
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    line = "  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))
    client = runs[0]["client_loop"] if runs else "?"
    print(
        f"POST /v1/decide, closed loop, {args.requests} requests per run after a "
        f"{args.warmup}-request warm-up on 8 connections; LIFTGATE_HOME {home}\n"
        f"client: bench_decide.py --client (own process, {client}, raw HTTP/1.1 keep-alive, "
        f"per-request timing, no coordinated-omission correction)\n"
    )
    print(line)
    print("-" * len(line))
    for row in rows:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))

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
    swidths = [max(len(h), *(len(row[i]) for row in srows)) for i, h in enumerate(sheader)]
    print("  ".join(h.rjust(w) for h, w in zip(sheader, swidths, strict=True)))
    for row in srows:
        print("  ".join(v.rjust(w) for v, w in zip(row, swidths, strict=True)))

    print("\ntargets:")
    for c in checks:
        verdict = {True: "PASS", False: "MISS", None: "n/a"}[c["pass"]]
        print(f"  [{verdict}] {c['target']} {fmt(c['limit'])}: {fmt(c['value'])}")


# --- main -------------------------------------------------------------------------------------


def port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex((HOST, port)) != 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="One JSON document on stdout.")
    parser.add_argument("--requests", type=int, default=2000, help="Measured requests per run.")
    parser.add_argument("--warmup", type=int, default=200, help="Warm-up requests per run.")
    parser.add_argument("--home", type=Path, help="LIFTGATE_HOME (default: build a fresh one).")
    parser.add_argument("--rows", type=int, default=60_000, help="World rows for a fresh home.")
    parser.add_argument("--port-base", type=int, default=18100, help="Ports base, base+1, +2.")
    parser.add_argument("--clients", default="1,8", help="Concurrent connections per run.")
    parser.add_argument("--only", default="fastapi,ray-fused,ray-composed", help="Servers.")
    parser.add_argument("--timeout", type=float, default=30.0, help="Per-request timeout, s.")
    parser.add_argument("--keep-home", action="store_true", help="Keep a fresh home.")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_main(args.client)
        return 0

    clients = [int(c) for c in args.clients.split(",")]
    names = [n.strip() for n in args.only.split(",")]
    fresh = args.home is None
    home = Path(tempfile.mkdtemp(prefix="lgbench-")) if fresh else args.home.resolve()
    work = Path(tempfile.mkdtemp(prefix="lgbench-run-"))
    servers: list[Server] = []
    runs: list[dict] = []
    created_ray_dirs: list[str] = []
    try:
        if fresh:
            build_home(home, args.rows)
        ids = known_customer_ids(home)
        bodies = make_bodies(ids, args.warmup + args.requests)
        from configs.loader import load_config

        replicas = load_config().serving.replicas
        servers = make_servers(home, work, args.port_base, names)
        for server in servers:
            if not port_free(server.port):
                raise RuntimeError(f"port {server.port} is in use; pass --port-base")
            if server.ray_temp and not Path(server.ray_temp).exists():
                created_ray_dirs.append(server.ray_temp)
            say(f"starting {server.name} on :{server.port} ...")
            started = time.perf_counter()
            server.start()
            try:
                wait_ready(server, READY_TIMEOUT_S)
                settle(server, replicas)
                say(f"  ready in {time.perf_counter() - started:.1f} s")
                for n in clients:
                    result = measure(server, bodies, n, args, work)
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
        checks = check_targets(runs)
        if args.json:
            keys = ("name", "topology", "clients", "p50_ms", "p95_ms", "p99_ms", "rps",
                    "errors", "rss_mb", "ratio_p95_vs_fastapi")  # fmt: skip
            print(json.dumps({"runs": [{k: r[k] for k in keys} for r in runs]}))
        else:
            print_report(runs, checks, args, home)
        return 0 if all(c["pass"] is not False for c in checks) else 1
    finally:
        for server in servers:  # belt and braces: a server whose start failed midway
            with contextlib.suppress(Exception):
                server.stop()
        for path in created_ray_dirs:
            shutil.rmtree(path, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
        if fresh and not args.keep_home:
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
