"""What `bentoml serve` of an exported bento costs a decision, against the in-process service.

Run: ``.venv/bin/python load_tests/bench_bento.py [--requests 200] [--customers 3000]``

In a throw-away LIFTGATE_HOME and BENTOML_HOME: a world of ``--customers`` customers, one
trained and registered version (champion), the embedded store filled with the world's
customers, consent to both channels for the customers asked about (so every action
competes), then ``liftgate export bento --alias champion`` and ``bentoml serve`` of the
bento on 127.0.0.1. Timed, ``--requests`` sequential decides of known customers, each:

- bento over HTTP: ``httpx.Client.post`` to ``/v1/decide`` of ``bentoml serve`` (one
  worker), client-side wall time; and the service's own ``latency_ms`` in its answers;
- baseline, in the same run: the same requests to the bundle's `DecisionService`
  (`serving.bento_bundle.open_bundle`) called in this process, no HTTP.

Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from harness.tables import fmt, print_table, say

from configs.loader import load_config
from liftgate.core.home import HOME_ENV, Home
from liftgate.core.local_services import free_loopback_port
from liftgate.governance.consent import ConsentStore
from liftgate.sim.world import World
from registry.client import ModelRegistry
from registry.pipeline import train_and_register
from serving.api_models import DecideRequest
from serving.bento_app import CONSENT_DB_ENV
from serving.bento_bundle import BundleInfo, open_bundle

BIN = Path(sys.executable).parent


def percentiles(ms: list[float]) -> tuple[str, str, str]:
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return fmt(float(p50), 3), fmt(float(p95), 3), fmt(float(p99), 3)


def wait_ready(url: str, timeout_s: float = 180.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"bentoml serve not ready at {url} after {timeout_s} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--customers", type=int, default=3000)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench-bento-"))
    home = Home(root / "home")
    env = {**os.environ, HOME_ENV: str(home.root), "BENTOML_HOME": str(root / "bentoml")}
    env["BENTOML_DO_NOT_TRACK"] = "true"
    os.environ[HOME_ENV] = str(home.root)
    server = None
    try:
        say("world and training")
        World(seed=0, n_customers=args.customers).write(root / "world", rows=args.customers * 6)
        config = load_config()
        registry = ModelRegistry(home, config.models.registry)
        train_and_register(root / "world", config, registry)
        home.customers.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / "world" / "customers.parquet", home.customers)

        customers = [f"c{i:07d}" for i in range(args.requests)]
        consent_db = root / "consent.db"  # both channels granted: all five actions compete
        store = ConsentStore(consent_db)
        for customer in customers:
            store.set(customer, "email", True)
            store.set(customer, "push", True)
        store.close()
        env[CONSENT_DB_ENV] = str(consent_db)

        say("liftgate export bento")
        started = time.monotonic()
        export = subprocess.run(
            [BIN / "liftgate", "export", "bento", "--alias", "champion", "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        export_s = time.monotonic() - started
        document = json.loads(export.stdout)

        port = free_loopback_port()
        log = (root / "serve.log").open("w")
        started = time.monotonic()
        server = subprocess.Popen(
            [BIN / "bentoml", "serve", document["bento"], "--host", "127.0.0.1"]
            + ["--port", str(port)],
            env=env,
            cwd=root,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        ready_s = wait_ready(url)

        say(f"{args.requests} sequential decides over HTTP")
        http_ms, service_ms = [], []
        with httpx.Client(base_url=url, timeout=30) as client:
            client.post("/v1/decide", json={"customer_id": customers[0]})  # warm-up
            for customer in customers:
                started = time.perf_counter()
                response = client.post("/v1/decide", json={"customer_id": customer})
                http_ms.append((time.perf_counter() - started) * 1000)
                response.raise_for_status()
                service_ms.append(response.json()["latency_ms"])

        say("the same decides in process")
        name, version = document["bentoml_model"].split(":")
        bundle = root / "bentoml" / "models" / name / version  # what the bento serves
        info = BundleInfo(document["model_name"], document["model_version"], "champion")
        service = open_bundle(bundle, info, consent_db)
        requests = [DecideRequest(customer_id=c) for c in customers]
        in_process_ms = []

        async def run() -> None:
            await service.decide(requests[0], "warm-up")
            for request in requests:
                started = time.perf_counter()
                await service.decide(request, "bench")
                in_process_ms.append((time.perf_counter() - started) * 1000)

        asyncio.run(run())
        service.close()

        print(f"export {export_s:.1f} s; bentoml serve ready in {ready_s:.1f} s")
        print_table(
            ("decide, ms", "p50", "p95", "p99"),
            [
                ("bentoml serve, HTTP (client wall time)", *percentiles(http_ms)),
                ("bentoml serve, service latency_ms", *percentiles(service_ms)),
                ("baseline: in-process DecisionService", *percentiles(in_process_ms)),
            ],
            first_left=True,
        )
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
