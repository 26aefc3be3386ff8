"""Journeys on the durable workflow engine: runs started per second, steps per second, and
the delay of a step that falls due after a wait — on SQLite and on PostgreSQL, each beside
the engine's floor measured in the same run on the same backend.

Run: ``.venv/bin/python load_tests/bench_journeys.py [--runs 500] [--backend both] [--json]``

Every figure runs the real `WorkflowEngine` (DBOS), `JourneyState` and `Dispatcher` of
liftgate.journeys, with trivial ports: `decide` answers the first candidate with propensity
1 and `commit` answers ``queued``. The decision path and the commit checks are not in the
figures (bench_decide.py and bench_actions.py measure them). The floor is a bare workflow
through the same `WorkflowEngine`: a handler doing as many `step` calls of no-op coroutines
as a journey run makes (counted on the journey's run of the same measurement), no journey
state. `journey/floor` is the journey's figure over the floor's (for rates, below 1 is
slower than the floor; for delays, above 1 is later).

1. **runs started /s**: ``--runs`` trigger events of distinct customers through
   `Dispatcher.dispatch` (entry rules, the state's run row, the engine's start) of a journey
   that then waits an hour; the figure is N over the wall time of the dispatch loop. The
   floor: N `WorkflowEngine.start` calls of runs that then wait. The runs' first steps share
   the event loop with the loop, in both.
2. **steps /s**: ``--step-runs`` runs of a journey decide, act, decide, act, exit, dispatched
   at once; journey steps completed (5 a run, checked in the state's history) over the wall
   time from the first dispatch until the last run returned (counted as each run's workflow
   body returns: the same for the floor, exact, no polling interval).
3. **due-step delay**: ``--waits`` runs that wait ``--wait-s`` seconds, then decide and act,
   on a real-time clock (speed 1). A run's step is due when its wait began (the journey time
   the run moved into the wait step, kept by the state, converted to real seconds by the
   clock) plus the wait; it ran when the decide port was called (real time, in the port).
   p50/p99/max of ran − due, in ms. The floor: a no-op step taking the time, `receive` of
   the wait with nothing sent, a no-op step taking the time again.

DBOS is one instance per process, so each (backend, variant, figure) runs in a child process
of its own (``--one``) on a fresh system database; the parent starts PostgreSQL once
(`LocalPostgres`, from the system packages), and without it prints a row saying how to
install it. Progress goes to stderr, the table to stdout (``--json``: the rows as JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import itertools
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
from harness.machine import wait_quiet  # load_tests/, beside this file
from harness.tables import fmt, print_table, say

from configs.journey_schema import JourneyConfig
from liftgate.core.clock import CompressedClock
from liftgate.governance.events import CustomerEvent
from liftgate.journeys.engine import WorkflowEngine, sqlite_url
from liftgate.journeys.runs import JourneyRuns, Ports
from liftgate.journeys.state import ACTIVE, COMPLETED, JourneyState

BACKENDS: Final = ("sqlite", "postgres")
VARIANTS: Final = ("journey", "floor")
STARTS, STEPS, DELAY = "starts", "steps", "delay"
MEASURES: Final = (STARTS, STEPS, DELAY)
CHILD_TIMEOUT_S: Final = 300.0
#: How long a started run of the starts figure waits: longer than the bench.
HOLD: Final = "1h"
TRIGGER: Final = "cart_abandoned"
CANDIDATES: Final = ["email_10", "no_action"]
CHANNELS: Final = {"email_10": "email", "no_action": "none"}
#: The journey steps a run of the steps figure completes (decide, act, decide, act, exit).
STEPS_PER_RUN: Final = 5


def journey_of(measure: str, wait_s: float) -> JourneyConfig:
    """The journey a figure runs (see the module docstring)."""
    steps: list[dict[str, Any]]
    if measure == STARTS:
        steps = [{"id": "hold", "wait": {"duration": HOLD}}]
    elif measure == STEPS:
        steps = [
            {"id": "offer", "decide": {"candidates": CANDIDATES}},
            {"id": "send", "act": {"decision": "offer"}},
            {"id": "offer2", "decide": {"candidates": CANDIDATES}},
            {"id": "send2", "act": {"decision": "offer2"}},
            {"id": "done", "exit": {"reason": "finished"}},
        ]
    else:
        steps = [
            {"id": "wait", "wait": {"duration": wait_s}},
            {"id": "offer", "decide": {"candidates": CANDIDATES}},
            {"id": "send", "act": {"decision": "offer"}},
        ]
    return JourneyConfig.model_validate(
        {"name": f"bench_{measure}", "trigger": {"event": TRIGGER}, "steps": steps}
    )


# --- pure parts: percentiles, rows, the table -------------------------------------------------


def delay_summary(delays_s: Sequence[float]) -> dict[str, float | None]:
    """p50/p99 (``numpy.percentile``, linear) and max of delays in seconds, in ms.

    >>> delay_summary([0.010, 0.020, 0.030])
    {'p50_ms': 20.0, 'p99_ms': 29.8, 'max_ms': 30.0}
    >>> delay_summary([])
    {'p50_ms': None, 'p99_ms': None, 'max_ms': None}
    """
    if not delays_s:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    ms = np.asarray(delays_s, dtype=np.float64) * 1e3
    p50, p99 = np.percentile(ms, [50, 99])
    return {
        "p50_ms": round(float(p50), 3),
        "p99_ms": round(float(p99), 3),
        "max_ms": round(float(ms.max()), 3),
    }


def ratio(journey: float | None, floor: float | None) -> float | None:
    """journey / floor, None when either is missing or the floor is 0.

    >>> ratio(50.0, 200.0), ratio(1.0, 0.0), ratio(None, 2.0)
    (0.25, None, None)
    """
    if journey is None or not floor:
        return None
    return journey / floor


#: (figure, the child's field, unit) of the table, in order.
FIGURES: Final = (
    ("runs started", STARTS, "rate", "/s"),
    ("steps", STEPS, "rate", "/s"),
    ("due-step delay p50", DELAY, "p50_ms", "ms"),
    ("due-step delay p99", DELAY, "p99_ms", "ms"),
    ("due-step delay max", DELAY, "max_ms", "ms"),
)


def rows_of(results: list[dict[str, Any]], unavailable: dict[str, str]) -> list[dict[str, Any]]:
    """The table's rows from the children's results (one dict each with backend, variant,
    measure and its fields): per backend and figure, journey, floor and their ratio; a
    backend that could not run has one row saying why."""
    found = {(r["backend"], r["variant"], r["measure"]): r for r in results}
    rows: list[dict[str, Any]] = []
    for backend in dict.fromkeys(r["backend"] for r in results) | dict.fromkeys(unavailable):
        if backend in unavailable:
            rows.append({"backend": backend, "figure": "unavailable", "note": unavailable[backend]})
            continue
        for figure, measure, field, unit in FIGURES:
            journey = found.get((backend, "journey", measure), {}).get(field)
            floor = found.get((backend, "floor", measure), {}).get(field)
            rows.append(
                {
                    "backend": backend,
                    "figure": figure,
                    "unit": unit,
                    "journey": journey,
                    "floor": floor,
                    "ratio": ratio(journey, floor),
                }
            )
    return rows


def print_rows(rows: list[dict[str, Any]]) -> None:
    header = ("backend", "figure", "unit", "journey", "floor", "journey/floor")
    cells = [
        (r["backend"], r["figure"], r["note"], "", "", "")
        if "note" in r
        else (
            r["backend"],
            r["figure"],
            r["unit"],
            fmt(r["journey"], 1),
            fmt(r["floor"], 1),
            fmt(r["ratio"], 2),
        )
        for r in rows
    ]
    print_table(header, cells, first_left=True)


# --- a child: one (backend, variant, figure) on a fresh engine ----------------------------------


class BenchPorts:
    """The runs' ports, trivial (see the module docstring), keeping when each run's decide
    was called (real time)."""

    def __init__(self, clock: CompressedClock):
        self.clock = clock
        self.decided_at: dict[str, float] = {}
        self.decisions = itertools.count()

    async def decide(self, customer_id: str, candidates: list[str], trace_id: str) -> dict:
        self.decided_at.setdefault(trace_id, time.time())
        return {
            "decision_id": f"{trace_id}:{next(self.decisions)}",
            "chosen": candidates[0],
            "propensity": 1.0,
            "policy": "bench",
            "ranked": [{"action": candidates[0], "expected_value": 1.0}],
        }

    async def commit(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"status": "queued", "check": None}

    def ports(self) -> Ports:
        return Ports(self.decide, self.commit, CHANNELS, self.clock.now, self.clock.real_seconds)


class WaitObservingState(JourneyState):
    """The journeys' state, keeping the journey time each run moved into a step (the `now`
    its wait's end is counted from)."""

    def __init__(self, path: Path):
        super().__init__(path)
        self.entered: dict[tuple[str, str], dt.datetime] = {}

    def move(self, run_id: str, step: str | None, at: dt.datetime, status: str = "running") -> None:
        if step is not None:
            self.entered.setdefault((run_id, step), at)
        super().move(run_id, step, at, status)


class CountingEngine:
    """The engine as the runs see it, counting their `step` calls (the floor repeats as many)."""

    def __init__(self, engine: WorkflowEngine):
        self.engine = engine
        self.steps = 0
        self.receives = 0

    async def step(self, name: str, function: Callable[..., Any], *args: Any) -> Any:
        self.steps += 1
        return await self.engine.step(name, function, *args)

    async def receive(self, timeout_s: float) -> dict[str, Any] | None:
        self.receives += 1
        return await self.engine.receive(timeout_s)


class Finished:
    """Counts the runs whose workflow body returned; `all_done` once `expected` did."""

    def __init__(self, expected: int):
        self.expected = expected
        self.count = 0
        self.errors: list[str] = []
        self.all_done = asyncio.Event()

    def fail(self, error: Exception) -> None:
        self.errors.append(f"{type(error).__name__}: {error}")

    def one(self) -> None:
        self.count += 1
        if self.count >= self.expected:
            self.all_done.set()


def trigger(index: int) -> CustomerEvent:
    now = dt.datetime.now(dt.UTC)
    return CustomerEvent(f"e{index}", f"c{index}", TRIGGER, {}, now, now)


class AllowAll:
    """Entry consent: the bench's journeys ask for none."""

    def is_granted(self, customer_id: str, channel: str) -> bool:
        return True


# The floor's step functions are coroutines: DBOS runs a plain function's step in a thread
# (`asyncio.to_thread`), which costs more than the step's own write on a busy 2-core box.
async def _noop() -> None:
    return None


async def _real_now() -> float:
    return time.time()


async def run_journey(url: str, root: Path, measure: str, n: int, wait_s: float) -> dict:
    from liftgate.journeys.worker import Dispatcher  # serving's heavy imports: children only

    clock = CompressedClock.wall()
    journey = journey_of(measure, wait_s)
    state = WaitObservingState(root / "journeys.db")
    state.set_status(journey.name, ACTIVE, clock.now())
    bench_ports = BenchPorts(clock)
    finished = Finished(n)

    async def execute(payload: dict[str, Any]) -> dict[str, Any]:
        try:
            return await runs.execute(payload)
        except Exception as error:  # a failed run would leave the bench waiting for it
            finished.fail(error)
            raise
        finally:
            finished.one()

    engine = WorkflowEngine(url, execute)
    counting = CountingEngine(engine)
    runs = JourneyRuns(counting, state, bench_ports.ports())
    dispatcher = Dispatcher({journey.name: journey}, state, engine, AllowAll(), clock)
    engine.launch()
    try:
        started = time.perf_counter()
        for i in range(n):
            await dispatcher.dispatch(trigger(i))
        dispatched = time.perf_counter()
        if measure == STARTS:
            while counting.receives < n:  # the steps a run makes before its wait, counted
                await asyncio.sleep(0.05)
            return {"rate": n / (dispatched - started), "engine_steps": counting.steps / n}
        await asyncio.wait_for(finished.all_done.wait(), CHILD_TIMEOUT_S)
        ended = time.perf_counter()
        if finished.errors:
            raise RuntimeError(f"{len(finished.errors)} runs failed: {finished.errors[0]}")
        result: dict[str, Any] = {"engine_steps": counting.steps / n}
        if measure == STEPS:
            done = state.history_of(journey.name, "decision") + state.history_of(
                journey.name, "act"
            )
            closed = len(state.runs(journey.name, (COMPLETED, "exited")))
            result["rate"] = (len(done) + closed) / (ended - started)
            result["steps_per_run"] = (len(done) + closed) / n
        else:
            delays = [
                bench_ports.decided_at[run.run_id]
                - real_time_of(clock, state.entered[(run.run_id, "wait")])
                - wait_s
                for run in state.runs(journey.name)
            ]
            result |= delay_summary(delays)
        return result
    finally:
        engine.shutdown()
        state.close()


def real_time_of(clock: CompressedClock, at: dt.datetime) -> float:
    """The real time (epoch seconds) at which `clock` shows `at`."""
    return clock.origin_real + (at - clock.origin).total_seconds() / clock.speed


async def run_floor(url: str, measure: str, n: int, wait_s: float, engine_steps: int) -> dict:
    finished = Finished(n)
    ran: dict[str, tuple[float, float]] = {}  # run → (its wait began, the step after it ran)

    async def execute(payload: dict[str, Any]) -> dict[str, Any]:
        run_id = payload["run_id"]
        if measure == STARTS:  # as many steps as a journey run makes before its wait
            for _ in range(engine_steps):
                await engine.step("noop", _noop)
            await engine.receive(3600.0)
        elif measure == STEPS:
            for _ in range(engine_steps):
                await engine.step("noop", _noop)
        else:  # a journey run's two steps before its wait, the wait, then the rest
            for _ in range(2):
                await engine.step("noop", _noop)
            began = await engine.step("began", _real_now)
            await engine.receive(wait_s)
            ran[run_id] = (began, await engine.step("ran", _real_now))
            for _ in range(engine_steps - 4):
                await engine.step("noop", _noop)
        finished.one()
        return {"run_id": run_id}

    engine = WorkflowEngine(url, execute)
    engine.launch()
    try:
        started = time.perf_counter()
        for i in range(n):
            await engine.start(f"floor:c{i}:e{i}", {"run_id": f"floor:c{i}:e{i}"})
        dispatched = time.perf_counter()
        if measure == STARTS:
            return {"rate": n / (dispatched - started)}
        await asyncio.wait_for(finished.all_done.wait(), CHILD_TIMEOUT_S)
        ended = time.perf_counter()
        if measure == STEPS:  # in journey steps: the same count of engine steps a run
            return {"rate": n * STEPS_PER_RUN / (ended - started)}
        return delay_summary([after - began - wait_s for began, after in ran.values()])
    finally:
        engine.shutdown()


def one(args: argparse.Namespace) -> dict[str, Any]:
    """A child's measurement (``--one BACKEND VARIANT MEASURE``), on a fresh database."""
    backend, variant, measure = args.one
    with tempfile.TemporaryDirectory(prefix="lg-bench-journeys-") as tmp:
        root = Path(tmp)
        url = args.url or sqlite_url(root / "engine.db")
        if variant == "journey":
            result = asyncio.run(run_journey(url, root, measure, args.n, args.wait_s))
        else:
            floor = run_floor(url, measure, args.n, args.wait_s, args.engine_steps)
            result = asyncio.run(floor)
    return {"backend": backend, "variant": variant, "measure": measure, "n": args.n, **result}


# --- the parent ---------------------------------------------------------------------------------


def child(args: argparse.Namespace, backend: str, variant: str, measure: str, **extra: Any) -> dict:
    n = {STARTS: args.runs, STEPS: args.step_runs, DELAY: args.waits}[measure]
    command = [sys.executable, __file__, "--one", backend, variant, measure, "--n", str(n)]
    command += ["--wait-s", str(args.wait_s)]
    for name, value in extra.items():
        command += [f"--{name.replace('_', '-')}", str(value)]
    if not args.no_quiet_wait:
        wait_quiet(timeout_s=20.0)
    say(f"{backend}: {variant} {measure} ({n} runs) ...")
    done = subprocess.run(command, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    if done.returncode != 0:
        raise SystemExit(f"{backend} {variant} {measure} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.splitlines()[-1])


def measure_backend(args: argparse.Namespace, backend: str, url: str | None) -> list[dict]:
    """Each figure's journey, then its floor with as many engine steps a run."""
    results = []
    for measure in MEASURES:
        db = {"url": url + f"_{measure}_journey"} if url else {}
        journey = child(args, backend, "journey", measure, **db)
        steps = round(journey["engine_steps"])
        db = {"url": url + f"_{measure}_floor"} if url else {}
        floor = child(args, backend, "floor", measure, engine_steps=steps, **db)
        results += [journey, floor]
    return results


@contextlib.contextmanager
def postgres_url() -> Iterator[str]:
    """The base URL of a database on a throwaway PostgreSQL server (suffixes make each
    child's database its own)."""
    from liftgate.core.local_postgres import LocalPostgres

    with LocalPostgres() as pg:
        yield pg.url("bench_journeys")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=500, help="trigger events to dispatch")
    parser.add_argument("--step-runs", type=int, help="runs of the steps figure (≤ 200)")
    parser.add_argument("--waits", type=int, help="runs of the delay figure (≤ 200)")
    parser.add_argument("--wait-s", type=float, default=2.0, help="the wait of the delay runs")
    parser.add_argument("--backend", choices=(*BACKENDS, "both"), default="both")
    parser.add_argument("--json", action="store_true", help="the rows as JSON")
    parser.add_argument(
        "--no-quiet-wait", action="store_true", help="start each child at once, busy box or not"
    )
    parser.add_argument("--one", nargs=3, metavar=("BACKEND", "VARIANT", "MEASURE"))
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--engine-steps", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(one(args)))
        return
    args.step_runs = args.step_runs or min(200, args.runs)
    args.waits = args.waits or min(200, args.runs)
    backends = BACKENDS if args.backend == "both" else (args.backend,)
    results: list[dict] = []
    unavailable: dict[str, str] = {}
    if "sqlite" in backends:
        results += measure_backend(args, "sqlite", None)
    if "postgres" in backends:
        from liftgate.core.local_postgres import PostgresUnavailable

        try:
            with postgres_url() as url:
                results += measure_backend(args, "postgres", url)
        except PostgresUnavailable as error:
            unavailable["postgres"] = str(error)
    rows = rows_of(results, unavailable)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print_rows(rows)


if __name__ == "__main__":
    main()
