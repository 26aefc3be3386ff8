"""The durable workflow engine behind journeys: DBOS, kept behind this small interface.

A journey run is one durable workflow whose id is the run's id, so a redelivered trigger
never starts a second one. Inside it, `step` runs a function once and keeps its result (a
run recovered after a crash gets the kept result instead of running it again), and
`receive` waits for the next message sent to the run, with a durable timeout (a recovered
run waits only what is left). Every wait of a journey is a receive — it ends early on a
customer's event — so there is no separate sleep. Nothing else of the platform imports DBOS.

The system database is a SQLite file under LIFTGATE_HOME (the embedded default; put in WAL
mode here so that readers do not block the writer), or PostgreSQL for several workers:
``postgresql://user:password@host:5432/liftgate_journeys``.

DBOS is one instance per process: `WorkflowEngine.launch` creates it and recovers the runs a
killed worker left pending; `shutdown` ends it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

from dbos import DBOS, DBOSConfig, SetWorkflowID

#: The topic of the customer events sent to a run.
EVENTS: Final = "events"
WORKFLOW_NAME: Final = "liftgate.journey_run"

RunHandler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
_handler: RunHandler | None = None


@DBOS.workflow(name=WORKFLOW_NAME)
async def _journey_run(payload: dict[str, Any]) -> dict[str, Any]:
    if _handler is None:  # a run recovered before the worker set its handler: cannot happen
        raise RuntimeError("no journey run handler is set in this process")
    return await _handler(payload)


def sqlite_url(path: Path) -> str:
    """The SQLite system database at `path`, created in WAL mode (a persistent setting of
    the file: one fsync a commit, and the status readers never block the runs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode=WAL")
    return f"sqlite:///{path}"


class WorkflowEngine:
    """Durable runs on DBOS. `handler(payload)` executes a run; inside it, use `step`
    and `receive` of this object."""

    def __init__(self, database_url: str, handler: RunHandler, poll_s: float = 0.5):
        self.database_url = database_url
        self.handler = handler
        self.poll_s = poll_s  # how often a waiting run looks for messages (SQLite polls)
        self._launched = False

    def launch(self) -> None:
        """Start the engine in this process (inside its event loop, where the runs will
        execute) and recover the runs a killed worker left pending."""
        global _handler
        _handler = self.handler
        config: DBOSConfig = {
            "name": "liftgate-journeys",
            "system_database_url": self.database_url,
            "notification_listener_polling_interval_sec": self.poll_s,
            "log_level": "WARNING",
            "application_version": "liftgate-journeys-1",
        }
        DBOS(config=config)
        DBOS.launch()
        self._launched = True

    def shutdown(self) -> None:
        global _handler
        if self._launched:
            DBOS.destroy(workflow_completion_timeout_sec=0)
            self._launched = False
        _handler = None

    # --- from outside a run -------------------------------------------------------------------

    async def start(self, run_id: str, payload: dict[str, Any]) -> None:
        """Start the run `run_id` (a no-op if it exists: the id is the deduplication)."""
        with SetWorkflowID(run_id):
            await DBOS.start_workflow_async(_journey_run, payload)

    async def send(self, run_id: str, message: dict[str, Any], key: str) -> None:
        """Send `message` to the run; `key` makes a resend a no-op."""
        await DBOS.send_async(run_id, message, EVENTS, idempotency_key=key)

    # --- inside a run ---------------------------------------------------------------------------

    @staticmethod
    async def step(name: str, function: Callable[..., Any], *args: Any) -> Any:
        """`function(*args)` once per run: after a crash its kept result is returned."""
        return await DBOS.run_step_async({"name": name}, function, *args)

    @staticmethod
    async def receive(timeout_s: float) -> dict[str, Any] | None:
        """The next message sent to this run, or None after `timeout_s` (durable)."""
        return await DBOS.recv_async(EVENTS, timeout_seconds=timeout_s)
