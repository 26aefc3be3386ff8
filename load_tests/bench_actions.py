"""Governed actions under load: duplicated idempotency keys, POST /v1/actions latency, and
what the consent check costs /v1/decide.

Run: ``flock /tmp/liftgate-ray.lock .venv/bin/python load_tests/bench_actions.py [--quick]``

It builds a throw-away LIFTGATE_HOME (a 60,000-row world with its customers' consent,
``liftgate train``, API keys of role app and admin) and serves it with the Ray Serve app
(fused, ``liftgate serve``, its outbox worker delivering to the file connector), from a
copy of the configuration (``LIFTGATE_CONFIG_DIR``, or configs/) whose quiet hours lie 12
hours away from the start of the run, so that no request meets them at any time of day.
Caps stay as configured and never bind: every action is for a customer of its own. Then:

1. **Duplicated keys under concurrency.** ``--keys`` decisions (``/v1/decide``, customers
   with e-mail consent, an e-mail action of each decision's ranking), each key's
   ``POST /v1/actions`` sent ``--copies`` times with the same body, shuffled, over
   ``--connections`` connections at once. Once the outbox is drained, the deliveries in the
   file connector's JSONL are counted per key: exactly one each (duplicates and missing
   ones must be 0), one ``action_id`` per key, and the rest of the answers ``replayed``.
2. **POST /v1/actions at 8 clients** (closed loop, fresh keys, valid decisions): p50, p95,
   p99 and req/s against the target (p95 ≤ 20 ms), beside ``/v1/decide`` on the same server
   (bench_decide.py's request mix, the server's first run): the floor of this request shape;
   and, once the server has stopped, ``--commits`` of ``ActionService.commit`` in process,
   one after another: what a commit costs without HTTP and without another writer.
3. **/v1/decide's consent check.** The same decide run, first on a second server whose
   channels all say ``consent: not_required`` (no consent is read, nothing masked), and
   in process the two calls the decision path gained: ``ConsentReader.granted_channels``
   (the home's consent store) and ``OfferWriter.record`` (a fresh shard), µs per call,
   beside the server CPU a decision costs.

Measured runs reuse bench_decide.py's ``measure`` (the harness's closed-loop client in its
own process, server CPU, RSS, a quiet box first). Exit code 1 if a target is missed or a
key was delivered other than once. Progress goes to stderr, the report to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import itertools
import json
import random
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

import yaml
from bench_decide import Setup, build_home, make_servers, measure  # load_tests/, beside this file
from harness.closed_loop import ClientProcess, LoadSpec
from harness.homes import api_key_headers, consented_customer_ids, known_customer_ids
from harness.machine import wait_for_no_serve
from harness.replicas import settle
from harness.request_mix import encoded_bodies
from harness.servers import Server
from harness.stats import ROUNDS, per_call_us, spread
from harness.tables import fmt, print_table, say

if TYPE_CHECKING:
    from configs.loader import LiftgateConfig
    from liftgate.core.home import Home

# Targets: ms; µs per call (the consent store's and the offers index's own).
ACTIONS_P95_MS = 20.0
GRANTED_CHANNELS_US = 20.0
OFFER_RECORD_US = 30.0

CHANNEL = "email"
READY_TIMEOUT_S = 240.0
DRAIN_TIMEOUT_S = 180.0
DECIDE = Setup("decide", "fused", "/v1/decide", True)
ACTIONS = Setup("actions", "fused", "/v1/actions", True, ok_status=202)


# --- configuration ------------------------------------------------------------------------------


def config_copy(work: Path, source: Path, *, consent: bool, now: dt.datetime) -> Path:
    """A copy of the configuration `source` in `work` whose quiet hours are one hour, 12
    hours after `now` (UTC); without `consent`, no channel needs consent."""
    from configs.schema import NO_CHANNEL, ChannelName

    target = work / f"configs-{'consent' if consent else 'no-consent'}"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    path = target / "actions.yaml"
    document = yaml.safe_load(path.read_text())
    channels = document.setdefault("channels", {})
    start = now + dt.timedelta(hours=12)
    quiet = {"start": f"{start:%H:%M}", "end": f"{start + dt.timedelta(hours=1):%H:%M}"}
    for policy in channels.values():
        if policy.get("quiet_hours"):
            policy["quiet_hours"] = {**quiet, "timezone": "UTC"}
    if not consent:
        for channel in get_args(ChannelName):
            if channel != NO_CHANNEL:
                channels.setdefault(channel, {})["consent"] = "not_required"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return target


# --- the server ---------------------------------------------------------------------------------


@contextlib.contextmanager
def serving(server: Server, config: LiftgateConfig) -> Iterator[Server]:
    """`server` started, ready and its replicas settled; stopped (any leftover process
    killed, its Ray temp dir removed) when the block ends."""
    mode = config.serving.mode
    direct = config.serving.replicas if mode.throughput_optimized or mode.haproxy else 0
    created = server.ray_temp if server.ray_temp and not Path(server.ray_temp).exists() else None
    say(f"starting {server.name} ({server.log.parent.name}) on :{server.port} ...")
    started = time.perf_counter()
    server.start()
    try:
        server.wait_ready(READY_TIMEOUT_S)
        settle(server.port, direct, server.direct_ports)
        say(f"  ready in {time.perf_counter() - started:.1f} s")
        yield server
    finally:
        say(f"  stopping {server.name} ...")
        if killed := server.stop():
            say(f"  had to SIGKILL leftover pids {killed}")
        if created:
            shutil.rmtree(created, ignore_errors=True)


def post_all(
    server: Server, path: str, bodies: list[str], connections: int, headers, args, spec: Path
) -> dict[str, Any]:
    """POST every body once over `connections` (no warm-up); the client's result, with each
    request's answer in the order of `bodies`."""
    load = LoadSpec(
        port=server.port,
        path=path,
        bodies=bodies,
        warmup=0,
        requests=len(bodies),
        connections=connections,
        timeout_s=args.timeout,
        headers=headers,
        ok_status=202 if path == ACTIONS.path else 200,
        keep_answers=True,
    )
    client = ClientProcess(load, spec)
    try:
        return client.run()
    finally:
        client.close()


def decisions_for(
    server: Server, customers: list[str], channel_of: dict[str, str], headers, args, work: Path
) -> list[tuple[str, str]]:
    """(decision id, action) of a decision for each customer: the best-ranked action of
    `CHANNEL`, for committing it (customers whose decision offers none are left out)."""
    bodies = [json.dumps({"customer_id": c}) for c in customers]
    result = post_all(server, DECIDE.path, bodies, 8, headers, args, work / "spec-decisions.json")
    made = []
    for answer in result["answers"]:
        if answer is None or answer[0] != 200:
            continue
        decision = json.loads(answer[1])
        ranked = [r["action"] for r in decision["ranked"]]
        action = next((a for a in ranked if channel_of[a] == CHANNEL), None)
        if action is not None:
            made.append((decision["decision_id"], action))
    return made


def action_body(decision: tuple[str, str], campaign: str, key: str) -> str:
    decision_id, action = decision
    body = {
        "decision_id": decision_id,
        "action": action,
        "channel": CHANNEL,
        "campaign_id": campaign,
        "idempotency_key": key,
    }
    return json.dumps(body, separators=(",", ":"))


def decide_runs(server: Server, bodies: list[str], keys, args, work: Path) -> dict[str, Any]:
    """`args.rounds` measured /v1/decide runs at 8 clients, as one: the median of each
    figure (errors: their sum). The logs' fsync makes single runs vary by tens of %."""
    runs = [measure(server, DECIDE, bodies, 8, keys, args, work) for _ in range(args.rounds)]
    figures = ("p50_ms", "p95_ms", "p99_ms", "rps", "server_cpu_ms_per_req", "other_cpu_pct")
    return {
        **{name: spread(r[name] for r in runs)["median"] for name in figures},
        "clients": 8,
        "errors": sum(r["errors"] for r in runs),
        "stages_ms": {
            stage: spread(r["stages_ms"][stage] for r in runs)["median"]
            for stage in runs[0]["stages_ms"]
        },
    }


# --- 1. duplicated keys -------------------------------------------------------------------------


def duplicated_keys(
    server: Server, decisions: list[tuple[str, str]], home: Home, config, headers, args, work
) -> dict[str, Any]:
    """Each decision's action under a key of its own, `args.copies` times, shuffled, all at
    once; then, the outbox drained, the deliveries of those keys in the connector's file."""
    from liftgate.governance.action_store import ActionStore
    from liftgate.governance.connectors import FileConnector, connector_for

    connector = connector_for(CHANNEL, config.actions.channel_policy(CHANNEL), home)
    if not isinstance(connector, FileConnector):
        raise SystemExit(f"channels.{CHANNEL}.connector must be a file to count deliveries")
    keys = [f"dup-{i:06d}" for i in range(len(decisions))]
    bodies = [action_body(d, "bench-duplicates", k) for d, k in zip(decisions, keys, strict=True)]
    sent = [body for body in bodies for _ in range(args.copies)]
    random.Random(11).shuffle(sent)
    say(f"  {len(sent):,} action requests over {len(keys):,} keys, {args.connections} connections")
    result = post_all(
        server, ACTIONS.path, sent, args.connections, headers, args, work / "spec-duplicates.json"
    )
    action_ids: dict[str, set[str]] = defaultdict(set)
    replayed = 0
    statuses = Counter(str(a[0]) if a else "no answer" for a in result["answers"])
    for answer in result["answers"]:
        if answer is not None and answer[0] == ACTIONS.ok_status:
            body = json.loads(answer[1])
            action_ids[body["idempotency_key"]].add(body["action_id"])
            replayed += body["replayed"]

    drained_started = time.perf_counter()
    if not config.serving.actions.worker:  # the service delivers nothing: this process does
        from liftgate.governance.outbox import delivery_worker

        with delivery_worker(config, home) as worker:
            while worker.run_once().claimed:
                pass
    store = ActionStore(home.actions)
    try:
        while store.counts_by_status()["queued"]:
            if time.perf_counter() - drained_started > DRAIN_TIMEOUT_S:
                say(f"  the outbox was not drained after {DRAIN_TIMEOUT_S:.0f} s")
                break
            time.sleep(0.2)
        drain_s = time.perf_counter() - drained_started
        by_status = store.counts_by_status()
    finally:
        store.close()
    lines = connector.path.read_text().splitlines() if connector.path.exists() else []
    wanted = set(keys)
    delivered = Counter(
        key for key in (json.loads(line)["idempotency_key"] for line in lines) if key in wanted
    )
    return {
        "keys": len(keys),
        "requests": len(sent),
        "connections": args.connections,
        "statuses": dict(statuses),
        "distinct_action_ids": len(set().union(*action_ids.values())) if action_ids else 0,
        "keys_with_one_action_id": sum(len(ids) == 1 for ids in action_ids.values()),
        "replayed": replayed,
        "deliveries": sum(delivered.values()),
        "delivered_once": sum(n == 1 for n in delivered.values()),
        "duplicates": sum(n - 1 for n in delivered.values() if n > 1),
        "missing": len(wanted - set(delivered)),
        "rps": round(len(result["latencies_ns"]) / result["wall_s"], 1),
        "drain_s": round(drain_s, 1),
        "store": by_status,
    }


def governed_actions(
    server: Server, home: Home, config, customers: list[str], keys, args, work: Path
) -> dict[str, Any]:
    """Parts 1 and 2 on `server`, each action for a customer of its own of `customers`."""
    channel_of = {a.id: a.channel for a in config.actions.actions}
    say(f"  1. {args.keys:,} decisions, then their actions ...")
    decisions = decisions_for(server, customers[: args.keys], channel_of, keys["app"], args, work)
    duplicates = duplicated_keys(server, decisions, home, config, keys["app"], args, work)
    fresh = customers[args.keys : args.keys + args.warmup + args.requests]
    decisions = decisions_for(server, fresh, channel_of, keys["app"], args, work)
    bodies = [action_body(d, "bench-latency", f"fresh-{i:06d}") for i, d in enumerate(decisions)]
    say("  2. /v1/actions, 8 clients ...")
    actions = measure(server, ACTIONS, bodies, 8, keys, args, work)
    return {"duplicates": duplicates, "actions": actions}


# --- 3. in-process calls of the decision path -----------------------------------------------


def micro(home: Home, calls: int) -> dict[str, float]:
    """µs per call of the consent read of a decision (customers of the home's store, in
    turn) and of an offer's record (a fresh shard, a new decision id each call)."""
    from liftgate.governance.consent import ConsentStore
    from liftgate.governance.offers import OfferIndex

    customers = itertools.cycle(known_customer_ids(home))
    with ConsentStore.reader(home.consent) as consent:
        granted_us = per_call_us(lambda: consent.granted_channels(next(customers)), calls)
    ids = (f"d{i:09d}" for i in itertools.count())
    actions = ["email_10", "email_20", "free_shipping", "no_action"]
    ts = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)
    with tempfile.TemporaryDirectory(prefix="lgbench-offers-", dir=home.root) as directory:
        writer = OfferIndex.writer(Path(directory))
        try:
            record_us = per_call_us(lambda: writer.record(next(ids), "c1", actions, ts), calls)
        finally:
            writer.close()
    return {"granted_channels_us": round(granted_us, 2), "offer_record_us": round(record_us, 2)}


def commit_ms(home: Home, config, customers: list[str]) -> float:
    """ms of one `ActionService.commit` in process, one after another (no HTTP, no other
    writer), each a new key for a decision of its own: the floor of POST /v1/actions."""
    from liftgate.governance.offers import OfferIndex
    from serving.api_models import ActionRequest
    from serving.components import build_action_service
    from serving.decision_ids import DecisionIds
    from serving.metrics import ServingMetrics

    decision_ids, offers = DecisionIds.for_home(home), OfferIndex.writer(home.offers)
    requests = []
    for i, customer in enumerate(customers):
        decision_id = decision_ids.new()
        offers.record(decision_id, customer, ["email_10"], dt.datetime.now(dt.UTC))
        body = {
            "decision_id": decision_id,
            "action": "email_10",
            "channel": CHANNEL,
            "campaign_id": "bench-in-process",
            "idempotency_key": f"in-{i}",
        }
        requests.append(ActionRequest(**body))
    offers.close()
    service = build_action_service(config, home, ServingMetrics())

    async def commit_all() -> float:
        started = time.perf_counter()
        for request in requests:
            answer = await service.commit(request, who="benchmark")
            if answer.refused:
                raise RuntimeError(f"in-process commit refused: {answer.check} {answer.detail}")
        return (time.perf_counter() - started) / len(requests) * 1e3

    try:
        return round(asyncio.run(commit_all()), 3)
    finally:
        service.close()


# --- report -------------------------------------------------------------------------------------


Checks = list[dict[str, Any]]


def check(checks: Checks, target: str, value: float, limit: float, ok: bool) -> None:
    checks.append({"target": target, "value": value, "limit": limit, "pass": ok})


def change(value: float | None, base: float | None, digits: int = 2) -> str:
    """`value` beside `base`: the difference and its share of `base`."""
    if value is None or not base:
        return "-"
    return f"{value - base:+.{digits}f} ({value / base - 1:+.0%})"


def report_duplicates(dup: dict[str, Any], args, checks: Checks) -> None:
    print(
        f"1. duplicated idempotency keys: {dup['requests']:,} POST /v1/actions, each of "
        f"{dup['keys']:,} keys {args.copies}x with the same body, shuffled, over "
        f"{dup['connections']} connections at once; deliveries counted in the file "
        "connector's JSONL once the outbox was drained\n"
    )
    header = ("keys", "requests", "answers", "distinct action_ids", "one id per key",
              "replayed", "deliveries", "delivered once", "duplicates", "missing", "req/s",
              "drain s")  # fmt: skip
    counts = ("keys", "requests", "distinct_action_ids", "keys_with_one_action_id", "replayed",
              "deliveries", "delivered_once", "duplicates", "missing")  # fmt: skip
    keys, requests, *rest = (f"{dup[name]:,}" for name in counts)
    answers = ", ".join(f"{n:,} × {status}" for status, n in sorted(dup["statuses"].items()))
    print_table(
        header, [(keys, requests, answers, *rest, fmt(dup["rps"], 0), fmt(dup["drain_s"], 1))]
    )
    print(f"(the action store afterwards: {dup['store']})")
    check(checks, "1. duplicate deliveries ==", dup["duplicates"], 0, dup["duplicates"] == 0)
    check(checks, "1. keys never delivered ==", dup["missing"], 0, dup["missing"] == 0)
    one_each = dup["distinct_action_ids"] == dup["keys"] == dup["keys_with_one_action_id"]
    check(
        checks, "1. action_ids, one per key ==", dup["distinct_action_ids"], dup["keys"], one_each
    )


def report_actions(decide: dict, actions: dict, commit_ms: float, args, checks: Checks) -> None:
    print(
        f"\n2. POST /v1/actions, closed loop at 8 clients, {args.requests:,} requests after a "
        f"{args.warmup}-request warm-up, each a fresh key and a valid decision; beside "
        f"/v1/decide on the same server (bench_decide.py's request mix, median of "
        f"{args.rounds} runs)\n"
    )
    header = ("run", "p50 ms", "p95 ms", "p99 ms", "req/s", "errors", "srv CPU ms/req",
              "other %", "p95 / decide")  # fmt: skip
    rows = [
        (label, fmt(r["p50_ms"]), fmt(r["p95_ms"]), fmt(r["p99_ms"]), fmt(r["rps"], 0),
         str(r["errors"]), fmt(r["server_cpu_ms_per_req"], 3), fmt(r["other_cpu_pct"], 1),
         fmt(r["p95_ms"] / decide["p95_ms"] if decide["p95_ms"] else None))
        for label, r in (("POST /v1/decide", decide), ("POST /v1/actions", actions))
    ]  # fmt: skip
    print_table(header, rows, first_left=True)
    print(
        f"(one ActionService.commit in process, one after another, no HTTP and no other "
        f"writer: {commit_ms:.3f} ms, over {args.commits:,} commits after the server stopped)"
    )
    p95 = actions["p95_ms"]
    check(
        checks, "2. /v1/actions, 8 clients: p95 ms <=", p95, ACTIONS_P95_MS, p95 <= ACTIONS_P95_MS
    )
    check(
        checks, "2. /v1/actions, 8 clients: errors ==", actions["errors"], 0, actions["errors"] == 0
    )


def in_service(run: dict) -> tuple[float | None, float | None, float | None]:
    """The stage histogram's mean `total` ms, its `log` (the decision log's fsync and the
    offer's record), and the rest: the decision itself."""
    total, log = run["stages_ms"]["total"], run["stages_ms"]["log"]
    return total, log, None if total is None or log is None else total - log


def report_consent(checked: dict, free: dict, calls: dict, args, checks: Checks) -> None:
    print(
        "\n3. /v1/decide with the consent check, and on a server whose channels all say "
        f"consent: not_required (the same bodies, 8 clients, median of {args.rounds} runs)\n"
    )
    header = ("run", "p50 ms", "p95 ms", "req/s", "errors", "srv CPU ms/req", "other %",
              "in service ms", "log ms", "decision ms")  # fmt: skip
    rows = [
        (label, fmt(r["p50_ms"]), fmt(r["p95_ms"]), fmt(r["rps"], 0), str(r["errors"]),
         fmt(r["server_cpu_ms_per_req"], 3), fmt(r["other_cpu_pct"], 1),
         *(fmt(v, 3) for v in in_service(r)))
        for label, r in (("consent checked", checked), ("consent not required", free))
    ]  # fmt: skip
    differences = (
        change(checked["p50_ms"], free["p50_ms"], 3),
        change(checked["p95_ms"], free["p95_ms"], 3),
        change(checked["rps"], free["rps"], 0),
        "",  # errors
        change(checked["server_cpu_ms_per_req"], free["server_cpu_ms_per_req"], 3),
        "",  # other %
    )
    inside = [change(a, b, 3) for a, b in zip(in_service(checked), in_service(free), strict=True)]
    print_table(header, [*rows, ("difference", *differences, *inside)], first_left=True)

    cpu_us = checked["server_cpu_ms_per_req"] * 1000
    print(
        f"\nin process, median of {ROUNDS} rounds of {args.calls:,} calls, beside the server "
        f"CPU of one decision above ({cpu_us:,.0f} µs):\n"
    )
    targets = [
        ("ConsentReader.granted_channels", calls["granted_channels_us"], GRANTED_CHANNELS_US),
        ("OfferWriter.record", calls["offer_record_us"], OFFER_RECORD_US),
    ]
    header = ("call", "µs per call", "share of a decision's CPU", "target µs")
    rows = [(name, fmt(us), f"{us / cpu_us:.1%}", fmt(limit, 0)) for name, us, limit in targets]
    print_table(header, rows, first_left=True)
    for name, us, limit in targets:
        check(checks, f"3. {name} µs <=", us, limit, us <= limit)


def report(doc: dict[str, Any], args) -> Checks:
    """Print each part's table, then the targets, each with its verdict."""
    checks: Checks = []
    report_duplicates(doc["duplicates"], args, checks)
    report_actions(doc["decide_consent"], doc["actions"], doc["commit_ms"], args, checks)
    report_consent(doc["decide_consent"], doc["decide_no_consent"], doc["micro"], args, checks)
    print("\ntargets:")
    for c in checks:
        verdict = "PASS" if c["pass"] else "MISS"
        print(f"  [{verdict}] {c['target']} {fmt(c['limit'])}: {fmt(c['value'])}")
    return checks


# --- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="A short run: 500 keys, 500 requests, 1 round, 200 commits, 5,000 calls.",
    )
    parser.add_argument("--keys", type=int, default=2000, help="Distinct idempotency keys (1).")
    parser.add_argument("--copies", type=int, default=5, help="Requests per key (1).")
    parser.add_argument("--connections", type=int, default=64, help="Connections at once (1).")
    parser.add_argument("--requests", type=int, default=2000, help="Measured requests (2, 3).")
    parser.add_argument("--warmup", type=int, default=200, help="Warm-up requests (2, 3).")
    parser.add_argument("--rounds", type=int, default=3, help="Decide runs per server (2, 3).")
    parser.add_argument("--commits", type=int, default=500, help="Commits in process (2).")
    parser.add_argument("--calls", type=int, default=20_000, help="Calls per round (3).")
    parser.add_argument("--rows", type=int, default=60_000, help="World rows of the home.")
    parser.add_argument("--port-base", type=int, default=18150, help="Ports base+1, base+11.")
    parser.add_argument("--timeout", type=float, default=30.0, help="Per-request timeout, s.")
    parser.add_argument("--keep-home", action="store_true", help="Keep the home.")
    args = parser.parse_args(argv)
    if args.quick:
        args.keys, args.requests, args.warmup, args.commits = 500, 500, 100, 200
        args.rounds, args.calls = 1, 5_000
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wait_for_no_serve(timeout_s=600)  # HAProxy binds fixed ports: one app at a time
    home_dir = Path(tempfile.mkdtemp(prefix="lgbench-actions-"))
    work = Path(tempfile.mkdtemp(prefix="lgbench-run-"))
    try:
        build_home(home_dir, args.rows)
        from configs.loader import load_config
        from liftgate.core.home import Home

        home = Home(home_dir)
        keys = {role: api_key_headers(home, role) for role in ("app", "admin")}
        now = dt.datetime.now(dt.UTC)
        source = load_config().directory  # LIFTGATE_CONFIG_DIR, or configs/
        consented = consented_customer_ids(home, CHANNEL)
        random.Random(3).shuffle(consented)
        # A customer of its own for each action: caps (2 a day) never bind.
        served = args.keys + args.warmup + args.requests
        if len(consented) < served + args.commits:
            raise SystemExit(
                f"{len(consented):,} customers consented to {CHANNEL}, "
                f"{served + args.commits:,} are needed: pass a larger --rows"
            )
        decide_bodies = encoded_bodies(known_customer_ids(home), args.warmup + args.requests)
        doc: dict[str, Any] = {}
        for consent, offset in ((True, 0), (False, 10)):
            config_dir = config_copy(work, source, consent=consent, now=now)
            config = load_config(config_dir)
            run_dir = work / config_dir.name
            [(_, server)] = make_servers(
                home_dir, run_dir, args.port_base + offset, ["ray-fused"], config, config_dir
            )
            with serving(server, config):
                # First on each server, so that both decide runs find the same state.
                say(f"  /v1/decide, consent {'checked' if consent else 'not required'} ...")
                run = decide_runs(server, decide_bodies, keys, args, run_dir)
                doc["decide_consent" if consent else "decide_no_consent"] = run
                if consent:
                    doc.update(
                        governed_actions(server, home, config, consented, keys, args, run_dir)
                    )
            if consent:  # the server has stopped: no other writer
                say(f"2. {args.commits:,} commits in process, one after another ...")
                floor = consented[served : served + args.commits]
                doc["commit_ms"] = commit_ms(home, config, floor)
        say(f"3. in process: {ROUNDS} rounds of {args.calls:,} calls ...")
        doc["micro"] = micro(home, args.calls)
        print(
            f"governed actions on the Ray Serve app (fused, replicas: {config.serving.replicas}, "
            f"outbox worker {'on' if config.serving.actions.worker else 'off'}); "
            f"LIFTGATE_HOME {home_dir}\n"
        )
        checks = report(doc, args)
        return 0 if all(c["pass"] for c in checks) else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not args.keep_home:
            shutil.rmtree(home_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
