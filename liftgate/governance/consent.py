"""The consent store: which channels each customer has agreed to be contacted on.

One SQLite file (`Home.consent`) in WAL mode, so the readers of every decision never wait
for a writer, with a busy timeout, so writers queue instead of failing. Two tables:

- ``consent``, the current state per (customer_id, channel): `granted`, `ts` (when the
  customer gave or withdrew consent, as the source says), `source` (``cli``, ``world``, a
  file name, an app) and `updated_at` (when the store recorded it);
- ``consent_history``, every change that was applied, in the order of its `ts`.

**Latest `ts` wins.** A change older than the one stored is ignored (`set` returns False,
an import counts it `stale`), so changes may arrive in any order, from a file exported last
week and from an app today, and the store ends in the same state: at the same `ts` a
revocation beats a grant, then the greater source name wins, so the state depends only on
the set of changes (a property test checks it). A change dated more than `MAX_SKEW` after
now is refused: it would outrank every real change to come.

`ConsentStore` writes (`liftgate consent`, `PUT /v1/consent`, the world), each change a
``BEGIN IMMEDIATE`` transaction; `ConsentReader` reads, on every decision: a point query on
the primary key over one kept connection, with no cache, so a revocation is seen by the
next decision of every replica. No store yet, or no row, means no consent.

>>> import tempfile
>>> from datetime import UTC, datetime
>>> with tempfile.TemporaryDirectory() as directory:
...     store = ConsentStore(Path(directory) / "consent.db")
...     reader = ConsentStore.reader(store.path)
...     applied = [
...         store.set("c1", "email", True, ts=datetime(2026, 3, 1, tzinfo=UTC)),
...         store.set("c1", "email", False, ts=datetime(2026, 2, 1, tzinfo=UTC)),  # older
...     ]
...     before = reader.granted_channels("c1")
...     _ = store.set("c1", "email", False, ts=datetime(2026, 4, 1, tzinfo=UTC))
...     after = reader.granted_channels("c1"), reader.is_granted("c1", "email")
...     _ = store.close(), reader.close()
>>> applied, before, after
([True, False], frozenset({'email'}), (frozenset(), False))
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Final, get_args

from configs.schema import NO_CHANNEL, ChannelName
from liftgate.core.clock import utc_now
from liftgate.core.errors import InputError
from liftgate.core.sqlite import SharedDatabase

#: The channels a customer may consent to: every contact channel (``none`` contacts no one).
CHANNELS: Final[tuple[str, ...]] = tuple(c for c in get_args(ChannelName) if c != NO_CHANNEL)
#: How far after now a change may be dated (clocks of other systems run a little ahead).
MAX_SKEW: Final = timedelta(minutes=5)
#: The source of the revocations that `erase` keeps.
ERASURE: Final = "erasure"
#: Rows an import writes per transaction: big enough to be fast, small enough that the
#: readers' WAL does not grow without bound and other writers get their turn.
CHUNK_ROWS: Final = 5_000
MAX_ID_LENGTH: Final = 256

Clock = Callable[[], datetime]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS consent (
    customer_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    granted INTEGER NOT NULL,
    ts TEXT NOT NULL,
    source TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (customer_id, channel)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS consent_history (
    customer_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    granted INTEGER NOT NULL,
    ts TEXT NOT NULL,
    source TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS consent_history_by_customer ON consent_history (customer_id);
"""

# The change wins if it ranks above the stored one by (ts, revoked, source): `ts` is text in
# one fixed UTC format, so comparing the text compares the times.
_UPSERT = """
INSERT INTO consent (customer_id, channel, granted, ts, source, updated_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (customer_id, channel) DO UPDATE SET
    granted = excluded.granted, ts = excluded.ts, source = excluded.source,
    updated_at = excluded.updated_at
WHERE (excluded.ts, 1 - excluded.granted, excluded.source)
    > (consent.ts, 1 - consent.granted, consent.source)
"""
_RECORD = """
INSERT INTO consent_history (customer_id, channel, granted, ts, source, recorded_at)
VALUES (?, ?, ?, ?, ?, ?)
"""
_GRANTED_CHANNELS = "SELECT channel FROM consent WHERE customer_id = ? AND granted = 1"
_IS_GRANTED = "SELECT granted FROM consent WHERE customer_id = ? AND channel = ?"


def stamp(moment: datetime) -> str:
    """The stored form of a time: UTC, to the microsecond, one fixed width (sortable text).
    A time without a zone is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class ConsentRow:
    """One change: the customer granted (or withdrew) consent for the channel at `ts`."""

    customer_id: str
    channel: str
    granted: bool
    ts: datetime
    source: str


def check(row: ConsentRow, now: datetime) -> ConsentRow:
    """`row` with its `ts` in UTC, or an InputError whose `parameter` names the field at
    fault (the importer turns it into the file's column)."""
    if not isinstance(row.customer_id, str) or not row.customer_id.strip():
        raise InputError("expected a customer id (text)", parameter="customer_id")
    if len(row.customer_id) > MAX_ID_LENGTH:
        raise InputError(
            f"expected at most {MAX_ID_LENGTH} characters; got {len(row.customer_id)}",
            parameter="customer_id",
        )
    check_channel(row.channel)
    if not isinstance(row.granted, bool):
        raise InputError(f"expected true or false; got {row.granted!r}", parameter="granted")
    if not isinstance(row.source, str) or not row.source.strip():
        raise InputError("expected a source (text)", parameter="source")
    if not isinstance(row.ts, datetime):
        raise InputError(f"expected a time; got {row.ts!r}", parameter="ts")
    ts = row.ts if row.ts.tzinfo is not None else row.ts.replace(tzinfo=UTC)
    if ts > now + MAX_SKEW:
        raise InputError(
            f"expected a time no later than now ({stamp(now)}, give or take "
            f"{MAX_SKEW.seconds // 60} minutes); got {stamp(ts)}",
            parameter="ts",
        )
    return row if ts is row.ts and ts.tzinfo is UTC else replace(row, ts=ts.astimezone(UTC))


def check_channel(channel: str) -> str:
    """`channel`, if a customer can consent to it; an InputError naming it otherwise."""
    if channel not in CHANNELS:
        raise InputError(
            f"expected one of {', '.join(CHANNELS)}; got {channel!r}", parameter="channel"
        )
    return channel


@dataclass
class ImportSummary:
    """What an import did: rows read, changes applied, stale ones ignored (the store held a
    later change), and the applied ones per channel as ``{"granted": n, "revoked": n}``."""

    rows: int = 0
    applied: int = 0
    stale: int = 0
    by_channel: dict[str, dict[str, int]] = field(default_factory=dict)

    def count(self, row: ConsentRow, applied: bool) -> None:
        self.rows += 1
        if not applied:
            self.stale += 1
            return
        self.applied += 1
        counts = self.by_channel.setdefault(row.channel, {"granted": 0, "revoked": 0})
        counts["granted" if row.granted else "revoked"] += 1

    def to_json(self) -> dict:
        return {
            "rows": self.rows,
            "applied": self.applied,
            "stale": self.stale,
            "by_channel": self.by_channel,
        }


class ConsentReader:
    """Reads the store at `path`, for one process and its threads. The file is opened on
    first use once it exists (a replica may start before anyone wrote consent); until then
    nobody has consent."""

    def __init__(self, path: Path, busy_timeout_s: float = 5.0):
        self.path = path
        self.busy_timeout_s = busy_timeout_s
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # one connection, used by one thread at a time

    def _connect(self) -> sqlite3.Connection:
        # Autocommit (isolation_level None): every query is its own read transaction, so it
        # sees every change committed before it.
        return sqlite3.connect(
            self.path,
            timeout=self.busy_timeout_s,
            isolation_level=None,
            check_same_thread=False,
        )

    def _connection(self) -> sqlite3.Connection | None:
        if self._db is None and self.path.exists():
            self._db = self._connect()
            self._db.execute("PRAGMA query_only = ON")
        return self._db

    def _query(self, sql: str, parameters: tuple) -> list[tuple]:
        with self._lock:
            db = self._connection()
            if db is None:
                return []
            try:
                return db.execute(sql, parameters).fetchall()
            except sqlite3.OperationalError as exc:
                if str(exc).startswith("no such table"):  # created, not yet set up: empty
                    return []
                raise

    def granted_channels(self, customer_id: str) -> frozenset[str]:
        """The channels the customer has granted now (the decision path's question)."""
        return frozenset(row[0] for row in self._query(_GRANTED_CHANNELS, (customer_id,)))

    def is_granted(self, customer_id: str, channel: str) -> bool:
        """Has the customer granted `channel`? Read from the store, now: the commit's check."""
        rows = self._query(_IS_GRANTED, (customer_id, check_channel(channel)))
        return bool(rows and rows[0][0])

    def current(self, customer_id: str) -> list[dict]:
        """The customer's consent per channel the store knows, by channel."""
        rows = self._query(
            "SELECT channel, granted, ts, source, updated_at FROM consent"
            " WHERE customer_id = ? ORDER BY channel",
            (customer_id,),
        )
        names = ("channel", "granted", "ts", "source", "updated_at")
        return [{**dict(zip(names, row, strict=True)), "granted": bool(row[1])} for row in rows]

    def history(self, customer_id: str) -> list[dict]:
        """Every change applied to the customer's consent, oldest first."""
        rows = self._query(
            "SELECT channel, granted, ts, source, recorded_at FROM consent_history"
            " WHERE customer_id = ? ORDER BY ts, rowid",
            (customer_id,),
        )
        names = ("channel", "granted", "ts", "source", "recorded_at")
        return [{**dict(zip(names, row, strict=True)), "granted": bool(row[1])} for row in rows]

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> ConsentReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class ConsentStore(ConsentReader):
    """The store at `path` (created if missing), to change it; reads as `ConsentReader`.
    `clock` is the time of `updated_at`, of erasures and of changes given without `ts`."""

    def __init__(self, path: Path, busy_timeout_s: float = 10.0, clock: Clock = utc_now):
        super().__init__(path, busy_timeout_s)
        self.clock = clock
        # Its reads go through this connection too (`_query`), not a reader's lazy one.
        # synchronous NORMAL: a commit survives a crash of the process; a power cut may lose
        # the last ones.
        self._database = SharedDatabase(
            path, _SCHEMA, synchronous="NORMAL", busy_timeout_s=busy_timeout_s
        )

    @staticmethod
    def reader(path: Path) -> ConsentReader:
        """A reader for a serving replica: it never creates the store, only reads it."""
        return ConsentReader(path)

    def _query(self, sql: str, parameters: tuple) -> list[tuple]:
        with self._database.read() as db:
            return db.execute(sql, parameters).fetchall()

    def close(self) -> None:
        self._database.close()

    def set(
        self,
        customer_id: str,
        channel: str,
        granted: bool,
        *,
        ts: datetime | None = None,
        source: str = "cli",
    ) -> bool:
        """Record that the customer granted (or withdrew) consent for `channel` at `ts`
        (default: now). False if the store holds a later change, which stays."""
        now = self.clock()
        row = check(ConsentRow(customer_id, channel, granted, ts or now, source), now)
        with self._database.write() as db:
            return self._apply(db, row, stamp(now))

    def import_rows(self, rows: Iterable[ConsentRow]) -> ImportSummary:
        """Apply many changes, `CHUNK_ROWS` to a transaction, each checked as by `set`.
        A bad row stops the import with the chunks before it applied: check a file whole
        first (`liftgate.governance.consent_import` does)."""
        summary = ImportSummary()
        rows = iter(rows)
        while chunk := list(islice(rows, CHUNK_ROWS)):
            now = self.clock()
            checked = [check(row, now) for row in chunk]
            with self._database.write() as db:
                for row in checked:
                    summary.count(row, self._apply(db, row, stamp(now)))
        return summary

    @staticmethod
    def _apply(db: sqlite3.Connection, row: ConsentRow, now: str) -> bool:
        ts = stamp(row.ts)
        applied = db.execute(
            _UPSERT, (row.customer_id, row.channel, row.granted, ts, row.source, now)
        ).rowcount
        if applied:
            db.execute(_RECORD, (row.customer_id, row.channel, row.granted, ts, row.source, now))
        return bool(applied)

    def erase(self, customer_id: str) -> int:
        """Forget the customer's consent history and grants, but keep, for every channel the
        store has seen them on, the fact that consent is withdrawn (source ``erasure``,
        dated now, so that no older grant arriving later can restore it). Returns the number
        of such channels: 0 if the store never knew the customer."""
        now = stamp(self.clock())
        with self._database.write() as db:
            channels = db.execute(
                "SELECT channel, MAX(ts) FROM ("
                " SELECT channel, ts FROM consent WHERE customer_id = ?"
                " UNION ALL SELECT channel, ts FROM consent_history WHERE customer_id = ?"
                ") GROUP BY channel",
                (customer_id, customer_id),
            ).fetchall()
            db.execute("DELETE FROM consent_history WHERE customer_id = ?", (customer_id,))
            for channel, latest in channels:
                revoked = (customer_id, channel, False, max(now, latest), ERASURE, now)
                db.execute(
                    "INSERT OR REPLACE INTO consent"
                    " (customer_id, channel, granted, ts, source, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    revoked,
                )
                db.execute(_RECORD, revoked)
        return len(channels)
