"""The decision core in process: `DecisionService.decide` on the real stages, no HTTP.

Run: ``cd load_tests && ../.venv/bin/python -m harness.core --home /tmp/lghome [--json]
[--requests N]``

What one decision costs inside a replica — feature fetch, consent mask, both models,
confidence, allocation, the response, the log append (its write-ahead frame written), the
offer recorded, metrics — timed around ``await service.decide(...)`` for each request, one
after another, on `serving.components.build_service` over a copy of the home (its logs and
offers go to the copy). Request bodies are parsed before the clock starts (that is the HTTP
layer's work).

- 5 candidates: the benchmark's request mix (`harness.request_mix`), on the configured
  catalogue of 5 actions;
- 20 and 100: a configuration with that many actions (`harness.catalogue`) and bodies
  without candidate lists for customers who granted every channel and for whom every action
  is eligible, so each decision scores them all (the table shows the mean number scored).

The logs' fsync is ``off`` here: the append writes the frame, and the fsync is a disk wait
that concurrent requests share under group commit (`bench_decide.py --fsync` measures its
cost over HTTP). One extra line gives the configured policy's mean for 5 candidates.
Each run warms up first, then collects and freezes the garbage collector's objects, as a
replica does after it has loaded (`Components.start`).

Targets (issue 14, "Inside"): mean ≤ 100 µs and p99 ≤ 250 µs for 5 candidates, mean ≤ 400 µs
for 100 candidates. The table marks each PASS or MISS; ``--json`` prints
``{"core": [<a row per number of candidates>], "configured": <the extra row>}``, each row
``{"candidates", "scored", "mean_us", "p50_us", "p99_us", "fsync"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.catalogue import config_with_actions
from harness.config_copy import config_copy
from harness.homes import known_customer_ids, offered_every_action, serving_copy
from harness.request_mix import customer_only_bodies, encoded_bodies
from harness.tables import fmt, print_table, say

if TYPE_CHECKING:
    from configs.loader import LiftgateConfig
    from serving.api_models import DecideRequest
    from serving.components import Components
    from serving.service import DecisionService

#: (candidates, mean µs at most, p99 µs at most): issue 14's "Inside" targets.
TARGETS = ((5, 100.0, 250.0), (100, 400.0, None))
WARM_UP = 2_000
#: The configured fsync policy waits for the disk on every request: fewer of them.
CONFIGURED_REQUESTS = 2_000


def measure_core(
    home: Path, candidates: Sequence[int] = (5, 20, 100), requests: int = 20_000
) -> list[dict[str, Any]]:
    """Per number of candidates, the latency of `requests` decisions in process with the
    logs' fsync off: ``{"candidates", "scored", "mean_us", "p50_us", "p99_us", "fsync"}``
    (`scored`: the mean number of actions a decision scored)."""
    with tempfile.TemporaryDirectory(prefix="lgcore-") as tmp:
        work = Path(tmp)
        return [_measure(home, work, n, requests, "off") for n in candidates]


def measure_configured(home: Path, requests: int = CONFIGURED_REQUESTS) -> dict[str, Any]:
    """The same row for 5 candidates with the configured fsync policy (`always`: each
    decision waits for the disk, alone, as nothing else runs)."""
    from configs.loader import load_config

    with tempfile.TemporaryDirectory(prefix="lgcore-") as tmp:
        policy = load_config().serving.decision_log.fsync
        return _measure(home, Path(tmp), 5, requests, policy)


def _measure(home: Path, work: Path, n: int, requests: int, fsync: str) -> dict[str, Any]:
    say(f"{n} candidates, fsync {fsync}: loading ...")
    service, components, parsed = prepared(home, work, n, fsync, WARM_UP + requests)
    try:
        loop = asyncio.new_event_loop()
        loop.run_until_complete(decide_all(service, parsed[:WARM_UP]))
        gc.collect()
        gc.freeze()  # as Components.start does, now over the requests as well
        say(f"  measuring {requests} decisions ...")
        latencies, scored = loop.run_until_complete(decide_all(service, parsed[WARM_UP:]))
        loop.close()
    finally:
        service.close()
        components.close()
        gc.unfreeze()
    us = np.asarray(latencies, dtype=np.float64) / 1000
    row = {
        "candidates": n,
        "scored": round(scored / len(latencies), 1),
        "mean_us": round(float(us.mean()), 1),
        "p50_us": round(float(np.percentile(us, 50)), 1),
        "p99_us": round(float(np.percentile(us, 99)), 1),
        "fsync": fsync,
    }
    say(f"  {row}")
    return row


def prepared(
    home: Path, work: Path, n: int, fsync: str, count: int
) -> tuple[DecisionService, Components, list[DecideRequest]]:
    """A loaded service over a copy of `home` in `work`, with `n` candidates and the logs'
    `fsync` policy, and `count` parsed requests for it."""
    from configs.loader import load_config
    from liftgate.core.home import Home
    from serving.api_models import DecideRequest
    from serving.components import build_service

    settings = {"decision_log": {"fsync": fsync}}
    directory = config_copy(work, load_config().directory, f"core-{n}-{fsync}", settings)
    configured = n == len(load_config(directory).actions.actions)
    if not configured:
        directory = config_with_actions(work, directory, n)
    config = load_config(directory)
    copy = serving_copy(home, work / f"home-{n}-{fsync}")
    bodies = _bodies(copy, config, configured, count)
    parsed = [DecideRequest.model_validate_json(body) for body in bodies]
    service, components = build_service(config, Home(copy))
    if not all(components.ready().values()):
        service.close()
        components.close()
        raise RuntimeError(f"the service did not load: {components.ready()}")
    return service, components, parsed


async def decide_all(
    service: DecisionService, requests: list[DecideRequest]
) -> tuple[list[int], int]:
    """Each request's ns inside `decide`, and the number of actions scored in all."""
    latencies, scored = [], 0
    clock = time.perf_counter_ns
    for i, request in enumerate(requests):
        trace_id = f"{i:032x}"
        started = clock()
        response = await service.decide(request, trace_id)
        latencies.append(clock() - started)
        scored += len(response["ranked"])
    return latencies, scored


def _bodies(home: Path, config: LiftgateConfig, mix: bool, count: int) -> list[str]:
    """The benchmark's request mix, or (not `mix`) bodies that offer every action."""
    from liftgate.core.home import Home

    if mix:
        return encoded_bodies(known_customer_ids(Home(home)), count)
    customers = offered_every_action(Home(home), config)
    if not customers:
        raise RuntimeError("no customer granted every channel and is eligible for every action")
    return customer_only_bodies(customers, count)


def check(row: dict[str, Any]) -> str:
    """PASS/MISS against the targets for the row's number of candidates ('-': none)."""
    for n, mean_us, p99_us in TARGETS:
        if row["candidates"] == n:
            ok = row["mean_us"] <= mean_us and (p99_us is None or row["p99_us"] <= p99_us)
            return "PASS" if ok else "MISS"
    return "-"


def target_text(n: int) -> str:
    for candidates, mean_us, p99_us in TARGETS:
        if candidates == n:
            return f"mean ≤ {mean_us:.0f}" + (f", p99 ≤ {p99_us:.0f}" if p99_us else "")
    return "-"


def print_rows(rows: list[dict[str, Any]]) -> None:
    header = ("candidates", "scored", "fsync", "mean µs", "p50 µs", "p99 µs", "target", "")
    print_table(
        header,
        [
            (
                str(r["candidates"]),
                fmt(r["scored"], 1),
                r["fsync"],
                fmt(r["mean_us"], 1),
                fmt(r["p50_us"], 1),
                fmt(r["p99_us"], 1),
                target_text(r["candidates"]) if r["fsync"] == "off" else "(extra)",
                check(r) if r["fsync"] == "off" else "",
            )
            for r in rows
        ],
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="A prepared LIFTGATE_HOME.")
    parser.add_argument("--requests", type=int, default=20_000, help="Measured per row.")
    parser.add_argument("--candidates", default="5,20,100", help="Comma-separated.")
    parser.add_argument("--json", action="store_true", help="One JSON document on stdout.")
    args = parser.parse_args()
    home = args.home.resolve()
    rows = measure_core(home, [int(n) for n in args.candidates.split(",")], args.requests)
    configured = measure_configured(home, min(args.requests, CONFIGURED_REQUESTS))
    if args.json:
        print(json.dumps({"core": rows, "configured": configured}))
    else:
        print_rows([*rows, configured])
    return 0


if __name__ == "__main__":
    sys.exit(main())
