"""What the HTTP shell costs one ``POST /v1/decide``, in process, beside the floor's.

Run: ``cd load_tests && ../.venv/bin/python -m harness.shell --home /tmp/lghome
[--requests N] [--rounds R]`` (a home with a trained champion and its online store; the
run works on a copy of it).

The ASGI app is driven directly — no sockets, no server: each request is a prebuilt scope
(uvicorn's keys, an app API key), a ``receive`` that hands over the whole body and a
``send`` that keeps the status, awaited one after another on one event loop. Timed, as
the median over `--rounds` rounds of `--requests` requests each (the rows interleaved, so
that a noisy neighbour hits them alike), in wall and CPU µs per request:

- liftgate: `serving.local.create_local_app` (its lifespan started; the logs' fsync off
  and the rate limit out of reach, so that neither a disk wait nor a 429 is timed) with
  the benchmark's request mix (`harness.request_mix`), through the app — its /v1/decide
  front (serving/decide_http.py) — and through FastAPI's middleware and router (the route,
  as before the front);
- `service.decide` alone on the same bodies, parsed before the clock starts;
- the same app with a service that answers at once (`ReadyAnswer`): the shell alone, both
  ways;
- the floor (`load_tests/floor/plain_app.py`: FastAPI, a pydantic body, a dict answer) the
  same way: through its app, its `workload.handle` alone, and its app with a handler that
  answers at once.

A shell is what the HTTP layer costs by itself: measured alone, and as a whole request's
time minus its core's (which also counts what the two do to each other's caches).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from harness.homes import api_key_headers, known_customer_ids, serving_copy
from harness.request_mix import encoded_bodies
from harness.tables import fmt, print_table, say

FLOOR_DIR = Path(__file__).resolve().parents[1] / "floor"
WARM_UP = 1_000
DECIDE = "/v1/decide"

Timed = Callable[[int], Awaitable[None]]  # runs the first n requests of its row


def http_scope(path: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """The scope uvicorn builds for a ``POST`` of `body` to `path` with `headers`."""
    raw = [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json")]
    raw += [(name.lower().encode(), value.encode()) for name, value in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "scheme": "http",
        "method": "POST",
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": raw,
        "state": {},
    }


def asgi_requests(app, path: str, bodies: Sequence[bytes], headers: dict[str, str]) -> Timed:
    """Send the first n `bodies` to `app`, one after another; any answer but 200 stops the
    run (a 429 or a 422 would time the wrong thing)."""
    scopes = [http_scope(path, body, headers) for body in bodies]
    messages = [{"type": "http.request", "body": body, "more_body": False} for body in bodies]

    async def run(n: int) -> None:
        statuses: list[int] = []

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        for scope, message in zip(scopes[:n], messages[:n], strict=True):

            async def receive(message=message) -> dict[str, Any]:
                return message

            await app(dict(scope), receive, send)  # a fresh scope: Starlette writes to it
        if set(statuses) != {200}:
            raise RuntimeError(f"{path}: statuses {sorted(set(statuses))}, expected only 200")

    return run


def interleaved(
    loop: asyncio.AbstractEventLoop, rows: dict[str, Timed], requests: int, rounds: int
) -> dict[str, tuple[float, float]]:
    """Each row's median wall and CPU µs per request over `rounds` rounds, the rows taking
    turns. CPU is this thread's (`time.thread_time`): the request path's own, which a
    neighbour's load on the cores barely moves; the log's background threads are not in it."""
    wall: dict[str, list[float]] = {name: [] for name in rows}
    cpu: dict[str, list[float]] = {name: [] for name in rows}
    for k in range(rounds):
        for name, run in rows.items():
            gc.collect()
            started, started_cpu = time.perf_counter(), time.thread_time()
            loop.run_until_complete(run(requests))
            cpu[name].append((time.thread_time() - started_cpu) / requests * 1e6)
            wall[name].append((time.perf_counter() - started) / requests * 1e6)
        say(
            f"  round {k + 1}/{rounds} (CPU µs): "
            + ", ".join(f"{n} {t[-1]:.1f}" for n, t in cpu.items())
        )
    return {name: (statistics.median(wall[name]), statistics.median(cpu[name])) for name in rows}


def bench_config():
    """The packaged configuration with the logs' fsync off and a rate limit never reached."""
    from configs.loader import load_config

    config = load_config()
    serving = config.serving
    log = serving.decision_log.model_copy(update={"fsync": "off"})
    limit = serving.auth.rate_limit.model_copy(update={"per_s": 1e9, "burst": 10**9})
    auth = serving.auth.model_copy(update={"rate_limit": limit})
    return dataclasses.replace(
        config, serving=serving.model_copy(update={"decision_log": log, "auth": auth})
    )


def floor_rows(bodies: Sequence[bytes]) -> dict[str, Timed]:
    """The floor app through ASGI; its workload alone; the app with a workload that answers
    at once (its shell alone), all on the same customer ids."""
    sys.path.insert(0, str(FLOOR_DIR))
    import plain_app  # load_tests/floor/
    import workload

    ids = [json.loads(body)["customer_id"] for body in bodies]
    asgi = asgi_requests(plain_app.app, "/score", bodies, {})
    answer = workload.handle(plain_app.BOOSTER, plain_app.STORE, ids[0])

    async def handle(n: int) -> None:
        for customer_id in ids[:n]:
            workload.handle(plain_app.BOOSTER, plain_app.STORE, customer_id)

    async def shell(n: int) -> None:
        real = workload.handle  # the route looks it up on the module at each request
        workload.handle = lambda booster, store, customer_id: answer
        try:
            await asgi(n)
        finally:
            workload.handle = real

    return {"floor": asgi, "floor: handle": handle, "floor: shell": shell}


class ReadyAnswer:
    """A decision service that answers every request at once with one ready answer: with it
    behind the app, what a request costs is the shell's."""

    def __init__(self, service, answer: dict[str, Any]):
        self.metrics = service.metrics
        self.answer = answer

    async def decide(self, request, trace_id: str) -> dict[str, Any]:
        return self.answer


async def _lifespan_started(app) -> Callable[[], Awaitable[None]]:
    """Start `app`'s lifespan as a server would; the coroutine that ends it."""
    context = app.router.lifespan_context(app)
    await context.__aenter__()
    return lambda: context.__aexit__(None, None, None)


def _through_stack(app):
    """`app` with POST /v1/decide through FastAPI's middleware and router, as before the
    front (serving/decide_http.py): its route."""
    from fastapi import FastAPI

    return lambda scope, receive, send: FastAPI.__call__(app, scope, receive, send)


def measure(home: Path, requests: int, rounds: int) -> dict[str, tuple[float, float]]:
    from liftgate.core.home import Home
    from serving.api_models import DecideRequest
    from serving.http import api_for
    from serving.local import create_local_app

    with tempfile.TemporaryDirectory(prefix="lgshell-") as tmp:
        work = Path(tmp)
        copy = Home(serving_copy(home, work / "home"))
        count = WARM_UP + requests
        bodies = [body.encode() for body in encoded_bodies(known_customer_ids(copy), count)]
        parsed = [DecideRequest.model_validate_json(body) for body in bodies]
        floor_bodies = [b'{"customer_id":"c%d"}' % (i % 1000) for i in range(count)]
        say("starting the app ...")
        config = bench_config()
        app = create_local_app(config, copy)
        headers = api_key_headers(copy, "app")
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        stop = loop.run_until_complete(_lifespan_started(app))
        service = app.state.service
        shell = api_for(config)
        shell.state.access = app.state.access
        shell.state.service = ReadyAnswer(
            service, loop.run_until_complete(service.decide(parsed[0], "0" * 31 + "1"))
        )

        async def decide(n: int) -> None:
            for i, request in enumerate(parsed[:n]):
                await service.decide(request, f"{i:032x}")

        rows = {
            "decide": asgi_requests(app, DECIDE, bodies, headers),
            "decide: stack": asgi_requests(_through_stack(app), DECIDE, bodies, headers),
            "service.decide": decide,
            "shell": asgi_requests(shell, DECIDE, bodies, headers),
            "shell: stack": asgi_requests(_through_stack(shell), DECIDE, bodies, headers),
            **floor_rows(floor_bodies),
        }
        try:
            say(f"warming up ({WARM_UP} requests a row) ...")
            for run in rows.values():
                loop.run_until_complete(run(WARM_UP))
            gc.collect()
            gc.freeze()  # as a replica does once loaded (serving/components.py)
            say(f"timing {rounds} rounds of {requests} requests a row ...")
            return interleaved(loop, rows, requests, rounds)
        finally:
            loop.run_until_complete(stop())
            loop.close()
            gc.unfreeze()


#: The table's rows: what each timed row is, and the rows whose difference is a shell's.
LABELS = {
    "decide": "liftgate: a decision through the app (its /v1/decide front)",
    "decide: stack": "liftgate: the same through FastAPI's middleware and router",
    "service.decide": "liftgate: service.decide alone",
    "shell": "liftgate: the app, decide answering at once (the shell alone)",
    "shell: stack": "liftgate: the same through FastAPI's middleware and router",
    "floor": "floor: a request through its FastAPI app",
    "floor: handle": "floor: workload.handle alone",
    "floor: shell": "floor: the app, handle answering at once (the shell alone)",
}
DIFFERENCES = {
    "liftgate's shell: decision through the app - service.decide": ("decide", "service.decide"),
    "liftgate's shell, FastAPI's stack: the same": ("decide: stack", "service.decide"),
    "the floor's shell: request through the app - handle": ("floor", "floor: handle"),
}


def report(times: dict[str, tuple[float, float]], requests: int, rounds: int) -> None:
    print(
        f"POST /v1/decide in process: µs per request, median of {rounds} rounds of "
        f"{requests} requests (CPU: the request path's thread)\n"
    )
    rows = [(LABELS[name], fmt(wall, 1), fmt(cpu, 1)) for name, (wall, cpu) in times.items()]
    for label, (asgi, core) in DIFFERENCES.items():
        rows.append((label, *(fmt(times[asgi][i] - times[core][i], 1) for i in (0, 1))))
    print_table(("what", "wall µs", "CPU µs"), rows, first_left=True)
    ratio = times["shell"][1] / times["floor: shell"][1]
    print(f"\nliftgate's shell / the floor's shell (CPU, each alone): {ratio:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", type=Path, required=True, help="A prepared LIFTGATE_HOME.")
    parser.add_argument("--requests", type=int, default=2_000, help="Requests a round a row.")
    parser.add_argument("--rounds", type=int, default=7, help="Rounds; the median is reported.")
    args = parser.parse_args()
    times = measure(args.home.resolve(), args.requests, args.rounds)
    report(times, args.requests, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
