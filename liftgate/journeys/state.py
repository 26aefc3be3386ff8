"""The journeys' own state, beside the workflow engine's: what operators and entry rules read.

The engine (DBOS) keeps each run's execution — its steps' results, its sleeps, its
messages. This store keeps what the rest of the platform asks about journeys, in one
SQLite file shared by the worker and the `liftgate journey` commands:

- ``journeys``: each journey's status (``active``, ``paused``; never started: absent);
- ``runs``: one row per (journey, customer, trigger event) — its arm, times, current step,
  status and exit reason — for the entry rules (re-entry cooldown, one run per group), the
  status counts and the holdout analysis;
- ``history``: a run's events, decisions, actions and waits, in order, for `inspect`;
- ``entries_refused``: trigger events that did not start a run, by reason;
- ``agent_queue``: customers handed to a person (the contact centre reads it);
- ``slots``: the send-time bandits' successes and failures;
- ``meta``: the worker's cursor in the event inbox.

Writes inside a run's steps are idempotent (a step that reruns after a crash writes the
same row again), so a crash between a step's effect and its record leaves no copy.

>>> import tempfile, datetime as dt
>>> t0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
>>> with tempfile.TemporaryDirectory() as root:
...     state = JourneyState(Path(root) / "journeys.db")
...     state.set_status("welcome", ACTIVE, at=t0)
...     new = state.add_run(RunRow("welcome:c1:e1", "welcome", "c1", "e1", "journey", None, t0))
...     again = state.add_run(RunRow("welcome:c1:e1", "welcome", "c1", "e1", "journey", None, t0))
...     state.finish("welcome:c1:e1", COMPLETED, "finished", at=t0)
...     counts = state.counts("welcome")
...     state.close()
>>> new, again, counts["completed"]
(True, False, 1)
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from liftgate.core.sqlite import SharedDatabase

ACTIVE: Final = "active"
PAUSED: Final = "paused"
#: A run's status.
STARTING, RUNNING, COMPLETED, EXITED, FAILED = (
    "starting",
    "running",
    "completed",
    "exited",
    "failed",
)
RUN_STATUSES: Final = (STARTING, RUNNING, COMPLETED, EXITED, FAILED)
OPEN_STATUSES: Final = (STARTING, RUNNING)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS journeys (
    name TEXT PRIMARY KEY, status TEXT NOT NULL, changed_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, journey TEXT NOT NULL, customer_id TEXT NOT NULL,
    event_id TEXT NOT NULL, arm TEXT NOT NULL, group_name TEXT, started_at TEXT NOT NULL,
    status TEXT NOT NULL, step TEXT, exit_reason TEXT, updated_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS runs_by_customer ON runs (customer_id, started_at);
CREATE INDEX IF NOT EXISTS runs_by_journey ON runs (journey, status);
CREATE TABLE IF NOT EXISTS history (
    run_id TEXT NOT NULL, seq INTEGER NOT NULL, at TEXT NOT NULL, kind TEXT NOT NULL,
    step TEXT, detail TEXT NOT NULL, PRIMARY KEY (run_id, seq));
CREATE TABLE IF NOT EXISTS entries_refused (
    journey TEXT NOT NULL, event_id TEXT NOT NULL, customer_id TEXT NOT NULL,
    reason TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (journey, event_id));
CREATE TABLE IF NOT EXISTS agent_queue (
    run_id TEXT NOT NULL, step TEXT NOT NULL, queue TEXT NOT NULL, customer_id TEXT NOT NULL,
    decision_id TEXT NOT NULL, action TEXT NOT NULL, expected_value REAL,
    interval_width REAL, queued_at TEXT NOT NULL, PRIMARY KEY (run_id, step));
CREATE TABLE IF NOT EXISTS slots (
    journey TEXT NOT NULL, step TEXT NOT NULL, slot TEXT NOT NULL,
    successes INTEGER NOT NULL DEFAULT 0, failures INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (journey, step, slot));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)
"""


@dataclass(frozen=True)
class RunRow:
    run_id: str
    journey: str
    customer_id: str
    event_id: str
    arm: str
    group: str | None
    started_at: dt.datetime
    status: str = STARTING
    step: str | None = None
    exit_reason: str | None = None


def run_id_of(journey: str, customer_id: str, event_id: str) -> str:
    """A run's id, the workflow's: one run per (journey, customer, trigger event)."""
    return f"{journey}:{customer_id}:{event_id}"


def _row(values: tuple) -> RunRow:
    run_id, journey, customer, event, arm, group, started, status, step, reason = values
    return RunRow(
        run_id,
        journey,
        customer,
        event,
        arm,
        group,
        dt.datetime.fromisoformat(started),
        status,
        step,
        reason,
    )


_RUN_COLUMNS = (
    "run_id, journey, customer_id, event_id, arm, group_name, started_at, status, step, exit_reason"
)


class JourneyState:
    def __init__(self, path: Path):
        self.db = SharedDatabase(path, _SCHEMA)

    # --- journeys ---------------------------------------------------------------------------

    def set_status(self, journey: str, status: str, at: dt.datetime) -> None:
        with self.db.write() as db:
            db.execute(
                "INSERT INTO journeys VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                "status = excluded.status, changed_at = excluded.changed_at",
                (journey, status, at.isoformat()),
            )

    def status(self, journey: str) -> str | None:
        with self.db.read() as db:
            row = db.execute("SELECT status FROM journeys WHERE name = ?", (journey,)).fetchone()
        return None if row is None else row[0]

    def statuses(self) -> dict[str, str]:
        with self.db.read() as db:
            return dict(db.execute("SELECT name, status FROM journeys").fetchall())

    # --- runs -------------------------------------------------------------------------------

    def add_run(self, run: RunRow) -> bool:
        """Record a new run; False if its id is known (a redelivered trigger event)."""
        with self.db.write() as db:
            cursor = db.execute(
                f"INSERT OR IGNORE INTO runs ({_RUN_COLUMNS}, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run.run_id,
                    run.journey,
                    run.customer_id,
                    run.event_id,
                    run.arm,
                    run.group,
                    run.started_at.isoformat(),
                    run.status,
                    run.step,
                    run.exit_reason,
                    run.started_at.isoformat(),
                ),
            )
        return cursor.rowcount == 1

    def run(self, run_id: str) -> RunRow | None:
        with self.db.read() as db:
            row = db.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
        return None if row is None else _row(row)

    def runs(self, journey: str | None = None, statuses: tuple[str, ...] = ()) -> list[RunRow]:
        query, args = f"SELECT {_RUN_COLUMNS} FROM runs WHERE 1", []
        if journey is not None:
            query, args = query + " AND journey = ?", [journey]
        if statuses:
            query += f" AND status IN ({', '.join('?' * len(statuses))})"
            args += list(statuses)
        with self.db.read() as db:
            return [_row(r) for r in db.execute(query + " ORDER BY started_at, run_id", args)]

    def open_runs_of(self, customer_id: str) -> list[RunRow]:
        """The customer's runs that are not over (events are sent to them)."""
        with self.db.read() as db:
            rows = db.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE customer_id = ? AND status IN (?, ?)",
                (customer_id, *OPEN_STATUSES),
            ).fetchall()
        return [_row(r) for r in rows]

    def last_entry(self, journey: str, customer_id: str) -> dt.datetime | None:
        with self.db.read() as db:
            row = db.execute(
                "SELECT MAX(started_at) FROM runs WHERE journey = ? AND customer_id = ?",
                (journey, customer_id),
            ).fetchone()
        return None if row[0] is None else dt.datetime.fromisoformat(row[0])

    def in_group(self, group: str, customer_id: str) -> bool:
        """Whether the customer has an open run in a journey of `group`."""
        with self.db.read() as db:
            row = db.execute(
                "SELECT 1 FROM runs WHERE group_name = ? AND customer_id = ? AND status IN (?, ?)",
                (group, customer_id, *OPEN_STATUSES),
            ).fetchone()
        return row is not None

    def move(self, run_id: str, step: str | None, at: dt.datetime, status: str = RUNNING) -> None:
        with self.db.write() as db:
            db.execute(
                "UPDATE runs SET status = ?, step = ?, updated_at = ? WHERE run_id = ?",
                (status, step, at.isoformat(), run_id),
            )

    def finish(self, run_id: str, status: str, reason: str | None, at: dt.datetime) -> None:
        with self.db.write() as db:
            db.execute(
                "UPDATE runs SET status = ?, step = NULL, exit_reason = ?, updated_at = ? "
                "WHERE run_id = ?",
                (status, reason, at.isoformat(), run_id),
            )

    def counts(self, journey: str) -> dict[str, int]:
        """Runs by status, and open runs by step (``at:<step>``), and by arm (``arm:<arm>``)."""
        counts = dict.fromkeys(RUN_STATUSES, 0)
        with self.db.read() as db:
            for status, step, arm, n in db.execute(
                "SELECT status, step, arm, COUNT(*) FROM runs WHERE journey = ? "
                "GROUP BY status, step, arm",
                (journey,),
            ):
                counts[status] = counts.get(status, 0) + n
                counts[f"arm:{arm}"] = counts.get(f"arm:{arm}", 0) + n
                if status in OPEN_STATUSES and step is not None:
                    counts[f"at:{step}"] = counts.get(f"at:{step}", 0) + n
        return counts

    # --- history ----------------------------------------------------------------------------

    def record(
        self,
        run_id: str,
        seq: int,
        kind: str,
        step: str | None,
        detail: dict[str, Any],
        at: dt.datetime,
    ) -> None:
        """One entry of a run's history; `seq` is its place (a rerun step writes it again)."""
        with self.db.write() as db:
            db.execute(
                "INSERT OR REPLACE INTO history VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, seq, at.isoformat(), kind, step, json.dumps(detail, default=str)),
            )

    def history(self, run_id: str) -> list[dict[str, Any]]:
        with self.db.read() as db:
            rows = db.execute(
                "SELECT seq, at, kind, step, detail FROM history WHERE run_id = ? ORDER BY seq",
                (run_id,),
            ).fetchall()
        return [
            {"seq": seq, "at": at, "kind": kind, "step": step, **json.loads(detail)}
            for seq, at, kind, step, detail in rows
        ]

    def history_of(self, journey: str, kind: str) -> list[dict[str, Any]]:
        """The history entries of one kind (``act``, ``decision``, …) of all the journey's
        runs, in one query."""
        with self.db.read() as db:
            rows = db.execute(
                "SELECT h.run_id, h.step, h.detail FROM history h JOIN runs r USING (run_id) "
                "WHERE r.journey = ? AND h.kind = ? ORDER BY h.run_id, h.seq",
                (journey, kind),
            ).fetchall()
        return [{"run_id": run, "step": step, **json.loads(detail)} for run, step, detail in rows]

    # --- entries refused, agent queue, slots, cursor ------------------------------------------

    def refuse_entry(
        self, journey: str, event_id: str, customer_id: str, reason: str, at: dt.datetime
    ) -> None:
        with self.db.write() as db:
            db.execute(
                "INSERT OR IGNORE INTO entries_refused VALUES (?, ?, ?, ?, ?)",
                (journey, event_id, customer_id, reason, at.isoformat()),
            )

    def refused_entries(self, journey: str) -> dict[str, int]:
        with self.db.read() as db:
            return dict(
                db.execute(
                    "SELECT reason, COUNT(*) FROM entries_refused WHERE journey = ? "
                    "GROUP BY reason",
                    (journey,),
                ).fetchall()
            )

    def hand_off(
        self,
        run_id: str,
        step: str,
        queue: str,
        customer_id: str,
        decision: dict[str, Any],
        at: dt.datetime,
    ) -> None:
        with self.db.write() as db:
            db.execute(
                "INSERT OR IGNORE INTO agent_queue VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    step,
                    queue,
                    customer_id,
                    decision["decision_id"],
                    decision["chosen"],
                    decision.get("expected_value"),
                    decision.get("interval_width"),
                    at.isoformat(),
                ),
            )

    def agent_queue(self, queue: str | None = None) -> list[dict[str, Any]]:
        query = "SELECT * FROM agent_queue" + (" WHERE queue = ?" if queue else "")
        with self.db.read() as db:
            cursor = db.execute(query + " ORDER BY queued_at", (queue,) if queue else ())
            names = [c[0] for c in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def slot_counts(self, journey: str, step: str, slots: list[str]) -> list[tuple[int, int]]:
        with self.db.read() as db:
            known = {
                slot: (s, f)
                for slot, s, f in db.execute(
                    "SELECT slot, successes, failures FROM slots WHERE journey = ? AND step = ?",
                    (journey, step),
                )
            }
        return [known.get(slot, (0, 0)) for slot in slots]

    def reward_slot(self, journey: str, step: str, slot: str, success: bool) -> None:
        column = "successes" if success else "failures"
        with self.db.write() as db:
            db.execute(
                f"INSERT INTO slots (journey, step, slot, {column}) VALUES (?, ?, ?, 1) "
                f"ON CONFLICT DO UPDATE SET {column} = {column} + 1",
                (journey, step, slot),
            )

    def cursor(self) -> int:
        with self.db.read() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'inbox_cursor'").fetchone()
        return 0 if row is None else int(row[0])

    def set_cursor(self, cursor: int) -> None:
        with self.db.write() as db:
            db.execute(
                "INSERT INTO meta VALUES ('inbox_cursor', ?) ON CONFLICT (key) DO UPDATE SET "
                "value = excluded.value",
                (str(cursor),),
            )

    def close(self) -> None:
        self.db.close()
