"""A journey worker for tests: the real workflow engine (DBOS on a SQLite file), the real
journeys' state, a compressed clock and the dispatcher, with canned ports — `decide` answers
the journey's first candidate, `commit` records each send in a SQLite table keyed by its
idempotency key (as the real outbox keeps a key once) and answers ``queued``, or ``refused``
by consent for a customer whose consent was revoked by then.

In-process tests use `Worker` in their event loop; the SIGKILL test runs this module as a
process (``python journey_process.py ROOT``) that dispatches the inbox under ROOT, so that
it can be killed and restarted. DBOS is one instance per process: one `Worker` at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from configs.journey_schema import JourneyConfig
from liftgate.core.clock import CompressedClock
from liftgate.core.home import Home
from liftgate.core.sqlite import SharedDatabase
from liftgate.governance.events import CustomerEvent, EventInbox
from liftgate.journeys.clock_file import read_clock
from liftgate.journeys.engine import WorkflowEngine, sqlite_url
from liftgate.journeys.runs import JourneyRuns, Ports
from liftgate.journeys.state import ACTIVE, OPEN_STATUSES, JourneyState
from liftgate.journeys.worker import Dispatcher

CHANNELS: Final = {"email_10": "email", "no_action": "none"}
#: The journey the killed process runs: two sends per run, each after a wait.
CRASH_JOURNEY: Final = {
    "name": "cart",
    "trigger": {"event": "cart_abandoned"},
    "exit_on": ["purchase"],
    "steps": [
        {"id": "w1", "wait": {"duration": "2h"}},
        {"id": "offer", "decide": {"candidates": ["email_10", "no_action"]}},
        {"id": "send", "act": {"decision": "offer"}},
        {"id": "w2", "wait": {"duration": "2h"}},
        {"id": "remind", "act": {"decision": "offer"}},
    ],
}
CRASH_SPEED: Final = 3600.0
#: How long (real seconds) the crash process's commit holds a recorded send before it
#: answers: a kill then lands inside the send's step, after its effect.
CRASH_HOLD_S: Final = 0.5

_SENDS_SCHEMA = """
CREATE TABLE IF NOT EXISTS sends (
    idempotency_key TEXT PRIMARY KEY, customer_id TEXT NOT NULL, action TEXT NOT NULL,
    at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS calls (
    idempotency_key TEXT NOT NULL, pid INTEGER NOT NULL, answered INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS decisions (run_id TEXT NOT NULL, customer_id TEXT NOT NULL)
"""


def customer_of(run_id: str) -> str:
    """The customer of a run id ``journey:customer:event`` (the tests' ids have no colon)."""
    return run_id.split(":")[1]


class CannedPorts:
    """The ports of `liftgate.journeys.runs.Ports` with their calls kept in `path`."""

    def __init__(
        self,
        path: Path,
        now: Callable[[], dt.datetime],
        revoked: dict[str, dt.datetime] | None = None,
        hold_s: float = 0.0,
    ):
        self.db = SharedDatabase(path, _SENDS_SCHEMA)
        self.now = now
        self.revoked = revoked if revoked is not None else {}  # customer → revoked at
        self.hold_s = hold_s

    async def decide(self, customer_id: str, candidates: list[str], trace_id: str) -> dict:
        with self.db.write() as db:
            db.execute("INSERT INTO decisions VALUES (?, ?)", (trace_id, customer_id))
        return {
            "decision_id": f"{trace_id}:decision",
            "chosen": candidates[0],
            "propensity": 1.0,
            "policy": "canned",
            "ranked": [{"action": candidates[0], "expected_value": 1.0}],
        }

    async def commit(self, request: dict[str, Any]) -> dict[str, Any]:
        key, now = request["idempotency_key"], self.now()
        customer = customer_of(key.removeprefix("journey:"))
        revoked_at = self.revoked.get(customer)
        if revoked_at is not None and now >= revoked_at:
            return {"status": "refused", "check": "consent"}
        with self.db.write() as db:
            db.execute(
                "INSERT OR IGNORE INTO sends VALUES (?, ?, ?, ?)",
                (key, customer, request["action"], now.isoformat()),
            )
            call = db.execute("INSERT INTO calls VALUES (?, ?, 0)", (key, os.getpid())).lastrowid
        await asyncio.sleep(self.hold_s)
        with self.db.write() as db:
            db.execute("UPDATE calls SET answered = 1 WHERE rowid = ?", (call,))
        return {"status": "queued", "check": None}

    def ports(self, clock: CompressedClock) -> Ports:
        return Ports(self.decide, self.commit, CHANNELS, clock.now, clock.real_seconds)

    def close(self) -> None:
        self.db.close()


def read_sends(path: Path) -> dict[str, Any]:
    """What the commit port kept: the sends by key, every call's key and pid, and the runs
    the decision port was asked for."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        return {
            "sends": {
                key: {
                    "customer_id": customer,
                    "action": action,
                    "at": dt.datetime.fromisoformat(at),
                }
                for key, customer, action, at in db.execute("SELECT * FROM sends")
            },
            "calls": db.execute("SELECT idempotency_key, pid, answered FROM calls").fetchall(),
            "decisions": [run for (run,) in db.execute("SELECT run_id FROM decisions")],
        }


class AllowAll:
    """Entry consent: the tests' journeys ask for none."""

    def is_granted(self, customer_id: str, channel: str) -> bool:
        return True


class Worker:
    """The engine, the runs and the dispatcher over `root`, for `journeys` (all active)."""

    def __init__(
        self,
        root: Path,
        journeys: list[JourneyConfig],
        clock: CompressedClock,
        revoked: dict[str, dt.datetime] | None = None,
        hold_s: float = 0.0,
    ):
        self.clock = clock
        self.state = JourneyState(root / "journeys.db")
        self.ports = CannedPorts(root / "sends.db", clock.now, revoked, hold_s)
        self.engine = WorkflowEngine(sqlite_url(root / "engine.db"), self._execute, poll_s=0.1)
        self.runs = JourneyRuns(self.engine, self.state, self.ports.ports(clock))
        self.dispatcher = Dispatcher(
            {j.name: j for j in journeys}, self.state, self.engine, AllowAll(), clock
        )
        for journey in journeys:
            if self.state.status(journey.name) is None:
                self.state.set_status(journey.name, ACTIVE, clock.now())

    async def _execute(self, payload: dict[str, Any]) -> dict[str, Any]:
        return await self.runs.execute(payload)

    async def __aenter__(self) -> Worker:
        self.engine.launch()  # in the running loop, where the runs execute
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.engine.shutdown()
        self.state.close()
        self.ports.close()

    def open_runs(self) -> int:
        return len(self.state.runs(statuses=OPEN_STATUSES))


def cart_event(event_id: str, customer_id: str, type_: str = "cart_abandoned") -> CustomerEvent:
    now = dt.datetime.now(dt.UTC)
    return CustomerEvent(event_id, customer_id, type_, {}, now, now)


async def serve(root: Path) -> None:
    """Dispatch the inbox under `root` from the kept cursor, forever (until killed)."""
    clock = read_clock(Home(root))
    journey = JourneyConfig.model_validate(CRASH_JOURNEY)
    inbox = EventInbox(root / "events.db")
    async with Worker(root, [journey], clock, hold_s=CRASH_HOLD_S) as worker:
        (root / f"ready.{os.getpid()}").touch()
        while True:
            cursor = worker.state.cursor()
            batch = inbox.after(cursor)
            for cursor, event in batch:  # noqa: B007 — the last one is the new cursor
                await worker.dispatcher.dispatch(event)
            if batch:
                worker.state.set_cursor(cursor)
            await asyncio.sleep(0.1)


if __name__ == "__main__":
    asyncio.run(serve(Path(sys.argv[1])))
