"""Customer events (cart abandoned, purchase, unsubscribe, …) and the inbox that keeps each
one once, in arrival order, for the journeys.

Apps send events to ``POST /v1/events`` (serving/events.py), on any replica, and retry them;
the journey worker reads them in the order they arrived and triggers or wakes journey runs.
`EventInbox` is one SQLite file (`Home.event_inbox`, through `SharedDatabase`) with one row
per `event_id` (a unique key: writers racing in several processes get one row, and every
one of them the first event stored). Rows are numbered in arrival order: a write holds the
file's write lock, so rows are committed in the order of their numbers, and a reader that
has seen number n never sees a smaller one appear later (`after` is the worker's cursor).
The numbers are AUTOINCREMENT: a number is never given again, even once the newest rows
are erased, so a cursor never skips an event. Each event is also logged (`log_record`, the
event log of `experiments.logs.schema.EventRecord`), and `erase` forgets a customer's
events (`liftgate privacy erase`).

>>> import tempfile
>>> from datetime import UTC, datetime
>>> noon = datetime(2026, 5, 1, 12, tzinfo=UTC)
>>> def cart(event_id, value):
...     return CustomerEvent(event_id=event_id, customer_id="c1", type="cart_abandoned",
...                          properties={"cart_value": value}, ts=noon, received_ts=noon)
>>> with tempfile.TemporaryDirectory() as root:
...     with EventInbox(Path(root) / "events.db") as inbox:
...         first, repeat = inbox.add(cart("e1", 35.0)), inbox.add(cart("e1", 99.0))
...         cursor = [(n, event.event_id) for n, event in inbox.after(0)]
>>> first[1], repeat[0].properties, repeat[1], cursor
(True, {'cart_value': 35.0}, False, [(1, 'e1')])
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

from experiments.logs.schema import EventRecord
from liftgate.core.home import Home
from liftgate.core.sqlite import SharedDatabase
from liftgate.governance.consent import stamp

PropertyValue = str | int | float | bool

#: How many events `after` returns at most by default: one batch of the worker.
BATCH: Final = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    customer_id TEXT NOT NULL,
    type TEXT NOT NULL,
    properties TEXT NOT NULL,
    ts TEXT NOT NULL,
    received_ts TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_customer ON events (customer_id, ts)
"""
_COLUMNS = "event_id, customer_id, type, properties, ts, received_ts"
# Only a repeated id is skipped (OR IGNORE would also skip a NOT NULL violation, silently).
_INSERT = f"""
INSERT INTO events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (event_id) DO NOTHING
"""
_SELECT_BY_ID = f"SELECT {_COLUMNS} FROM events WHERE event_id = ?"


@dataclass(frozen=True)
class CustomerEvent:
    """One event of a customer: `ts` is when it happened (the app's clock), `received_ts`
    when liftgate took it; both timezone-aware. `properties` are scalars only."""

    event_id: str
    customer_id: str
    type: str
    properties: dict[str, PropertyValue]
    ts: datetime
    received_ts: datetime


def log_record(event: CustomerEvent) -> EventRecord:
    """The event as the event log keeps it (its properties as a JSON object)."""
    return EventRecord(
        event_id=event.event_id,
        ts=event.ts,
        customer_id=event.customer_id,
        type=event.type,
        properties=_properties_json(event.properties),
        received_ts=event.received_ts,
    )


def _properties_json(properties: dict[str, PropertyValue]) -> str:
    # Sorted keys: the same properties are the same text, whatever order the app sent.
    return json.dumps(properties, sort_keys=True, allow_nan=False, separators=(",", ":"))


def _row(event: CustomerEvent) -> tuple[str, ...]:
    return (
        event.event_id,
        event.customer_id,
        event.type,
        _properties_json(event.properties),
        stamp(event.ts),
        stamp(event.received_ts),
    )


def _event(row: tuple) -> CustomerEvent:
    event_id, customer_id, type_, properties, ts, received_ts = row
    return CustomerEvent(
        event_id=event_id,
        customer_id=customer_id,
        type=type_,
        properties=json.loads(properties),
        ts=datetime.fromisoformat(ts),
        received_ts=datetime.fromisoformat(received_ts),
    )


class EventInbox:
    """The inbox file at `path` (created if missing), shared by processes and threads."""

    def __init__(self, path: Path, busy_timeout_s: float = 10.0):
        # synchronous FULL: an acknowledged event survives a power cut too; the journeys
        # read it from here, and nothing would replay it to them otherwise.
        self._database = SharedDatabase(
            path, _SCHEMA, synchronous="FULL", busy_timeout_s=busy_timeout_s
        )

    @classmethod
    def for_home(cls, home: Home) -> EventInbox:
        return cls(home.event_inbox)

    def add(self, event: CustomerEvent) -> tuple[CustomerEvent, bool]:
        """Keep `event` unless its id is kept already; return the event kept under the id
        (the first one) and whether it is `event` (True: new)."""
        with self._database.write() as db:
            if db.execute(_INSERT, _row(event)).rowcount == 1:
                return event, True
            # The row the insert conflicted with, read in the same transaction: it is there.
            first = db.execute(_SELECT_BY_ID, (event.event_id,)).fetchone()
        return _event(first), False

    def get(self, event_id: str) -> CustomerEvent | None:
        """The event kept under `event_id`, or None."""
        with self._database.read() as db:
            row = db.execute(_SELECT_BY_ID, (event_id,)).fetchone()
        return None if row is None else _event(row)

    def after(self, cursor: int, limit: int = BATCH) -> list[tuple[int, CustomerEvent]]:
        """At most `limit` events that arrived after number `cursor` (0: from the first),
        each with its number, in arrival order; the last number is the next cursor."""
        with self._database.read() as db:
            rows = db.execute(
                f"SELECT seq, {_COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                (cursor, limit),
            ).fetchall()
        return [(row[0], _event(row[1:])) for row in rows]

    def of_customer(
        self,
        customer_id: str,
        types: Collection[str] | None = None,
        since: datetime | None = None,
    ) -> list[CustomerEvent]:
        """The customer's events in the order of their `ts` (then of arrival): only those of
        `types` if given, only those at or after `since` if given."""
        if types is not None and not types:
            return []
        query = f"SELECT {_COLUMNS} FROM events WHERE customer_id = ?"
        parameters: list[str] = [customer_id]
        if since is not None:
            query += " AND ts >= ?"  # one fixed UTC text format: text order is time order
            parameters.append(stamp(since))
        if types is not None:
            query += f" AND type IN ({', '.join('?' * len(types))})"
            parameters.extend(types)
        with self._database.read() as db:
            rows = db.execute(query + " ORDER BY ts, seq", parameters).fetchall()
        return [_event(row) for row in rows]

    def erase(self, customer_id: str) -> int:
        """Forget the customer's events (their erasure); return how many."""
        with self._database.write() as db:
            deleted = db.execute("DELETE FROM events WHERE customer_id = ?", (customer_id,))
        return max(deleted.rowcount, 0)

    def close(self) -> None:
        self._database.close()

    def __enter__(self) -> EventInbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
