"""The outcome ledger: one outcome per (decision, event), whichever replica receives it.

Apps retry `POST /v1/outcomes` (timeouts, at-least-once queues), and replicas do not share
memory, so the first answer to each (decision_id, event) is kept in a small SQLite table
under LIFTGATE_HOME (`Home.outcome_ledger`) that every replica opens: WAL mode, so readers
never wait for a writer, and a busy timeout, so writers queue instead of failing.

The service asks `first` before logging an outcome and `record`s it after the log has it.
A repeat gets the first answer and is not logged again. Logging comes first so that a crash
between the two cannot lose an outcome: its retry is logged once more, and the log reader
counts one outcome per (decision_id, event) (`experiments.logs.reader.join_outcomes`). Two
requests that take the same pair at the same moment (on one replica or two) both log it;
`record` answers both with the outcome id that reached the ledger first. `erase` forgets
the outcomes of a customer's decisions (`liftgate privacy erase`).

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as root:
...     ledger = OutcomeLedger(Path(root) / "outcomes.db")
...     before = ledger.first("d1", "conversion")
...     answers = ledger.record("d1", "conversion", "o1"), ledger.record("d1", "conversion", "o2")
...     after = ledger.first("d1", "conversion"), ledger.first("d1", "revenue")
...     ledger.close()
>>> before, answers, after
(None, ('o1', 'o1'), ('o1', None))
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from liftgate.core.sqlite import SharedDatabase

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outcomes (
    decision_id TEXT NOT NULL,
    event TEXT NOT NULL,
    outcome_id TEXT NOT NULL,
    PRIMARY KEY (decision_id, event)
) WITHOUT ROWID
"""


class OutcomeLedger:
    """The ledger file at `path` (created if missing), shared by processes and threads."""

    def __init__(self, path: Path, busy_timeout_s: float = 10.0):
        # synchronous NORMAL: a commit survives a crash of the process; a power cut may lose
        # the last ones, whose retries are then logged again and counted once by the reader.
        self._database = SharedDatabase(
            path, _SCHEMA, synchronous="NORMAL", busy_timeout_s=busy_timeout_s
        )

    def first(self, decision_id: str, event: str) -> str | None:
        """The outcome id first recorded for this decision and event, or None."""
        with self._database.read() as db:
            row = db.execute(
                "SELECT outcome_id FROM outcomes WHERE decision_id = ? AND event = ?",
                (decision_id, event),
            ).fetchone()
        return None if row is None else row[0]

    def record(self, decision_id: str, event: str, outcome_id: str) -> str:
        """Record `outcome_id` unless the pair has one already; return the pair's first id."""
        # INSERT OR IGNORE is atomic on its own: no transaction, no write lock held longer.
        with self._database.read() as db:
            db.execute(
                "INSERT OR IGNORE INTO outcomes (decision_id, event, outcome_id) VALUES (?, ?, ?)",
                (decision_id, event, outcome_id),
            )
            (first,) = db.execute(
                "SELECT outcome_id FROM outcomes WHERE decision_id = ? AND event = ?",
                (decision_id, event),
            ).fetchone()
        return first

    def erase(self, decision_ids: Iterable[str]) -> int:
        """Forget the outcomes of these decisions (their customer's erasure), in one
        transaction; return the rows deleted."""
        rows = [(decision_id,) for decision_id in decision_ids]
        with self._database.write() as db:
            deleted = db.executemany("DELETE FROM outcomes WHERE decision_id = ?", rows).rowcount
        return max(deleted, 0)

    def close(self) -> None:
        self._database.close()
