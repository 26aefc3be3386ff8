"""The action store: committed actions, their history and the delivery outbox, in one SQLite
file (``Home.actions``) that every replica and the delivery worker open.

`ActionStore.commit` does in ONE ``BEGIN IMMEDIATE`` transaction — the write lock taken
first, so commits on different replicas run one after another — what must not race:

1. the idempotency key: a key already stored with the same request (its hash) gets the
   stored answer again (``replayed``), with a different request an ``idempotency`` refusal;
2. the frequency caps: the customer's actions on the channel that are queued or delivered
   within each cap's window are counted (index on customer, channel, time) — the count and
   the insert that it allows are one transaction, so N replicas cannot overshoot a cap;
3. the action (``queued``, ``refused`` with the check, or ``dry_run``), its first event and,
   when queued, its outbox entry: the transactional outbox, so an action is never queued
   without a delivery nor a delivery made without an action.

Refusals are stored under their key too, so a retry gets the same answer. The delivery
worker (`liftgate.governance.outbox`) leases due entries with `claim_due` and records each
attempt with `record_attempt`: delivered (the outbox entry goes), retried later, or failed.
A lease that runs out (its worker died) makes the entry due again: delivery is at least
once, and receivers get the idempotency key to make it exactly once.

Commits are fsynced (``synchronous=FULL``): an action answered 202 survives a power cut.

>>> import datetime as dt, tempfile
>>> from liftgate.governance.action_request import ActionRequestData
>>> noon = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)
>>> request = ActionRequestData(decision_id="d1", action="email_10", channel="email",
...     campaign_id="spring", idempotency_key="k1", ttl_seconds=3600)
>>> with tempfile.TemporaryDirectory() as root:
...     store = ActionStore(Path(root) / "actions.db")
...     first = store.commit(request, customer_id="c1", expires_at=noon, refusal=None,
...                          caps=(), now=noon)
...     again = store.commit(request, customer_id="c1", expires_at=noon, refusal=None,
...                          caps=(), now=noon)
...     (due,) = store.claim_due(noon, limit=10, lease_s=30)
...     status = store.record_attempt(due.action_id, ok=True, detail="200", now=noon,
...                                   retry_at=None)
...     history = [event["status"] for event in store.get(first.action_id)["history"]]
...     store.close()
>>> first.status, again.replayed, again.action_id == first.action_id, status, history
('queued', True, True, 'delivered', ['queued', 'delivered'])
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from configs.schema import FrequencyCap
from experiments.logs.schema import (
    ACTION_STATUSES,
    ATTEMPT_FAILED,
    DELIVERED,
    DRY_RUN,
    FAILED,
    QUEUED,
    REFUSED,
)
from liftgate.core.sqlite import SharedDatabase
from liftgate.governance.action_request import ActionRequestData
from liftgate.governance.checks import CHECKS, IDEMPOTENCY, Refusal, cap_refusal

STATUSES: Final = ACTION_STATUSES
#: What counts against a frequency cap: sent, or on its way.
_COUNTED = (QUEUED, DELIVERED)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
IDEMPOTENCY_CONFLICT: Final = "idempotency_key was used with a different request"
#: The first event's detail of an action that passed every check.
_PASSED = {
    QUEUED: "every check passed: queued for delivery",
    DRY_RUN: "dry run: every check passed, nothing is sent",
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS actions (
    action_id TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    request_hash TEXT NOT NULL,
    decision_id TEXT NOT NULL,
    customer_id TEXT,
    action TEXT NOT NULL,
    channel TEXT NOT NULL,
    campaign_id TEXT NOT NULL,
    creative_id TEXT,
    send_at INTEGER,
    expires_at INTEGER,
    dry_run INTEGER NOT NULL,
    status TEXT NOT NULL,
    refusal_check TEXT,
    refusal_message TEXT,
    created_at INTEGER NOT NULL,
    answer TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS actions_by_customer ON actions (customer_id, channel, created_at);
CREATE TABLE IF NOT EXISTS action_events (
    action_id TEXT NOT NULL,
    ts INTEGER NOT NULL,
    status TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS action_events_by_action ON action_events (action_id, ts);
CREATE TABLE IF NOT EXISTS outbox (
    action_id TEXT PRIMARY KEY,
    next_attempt_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    leased_until INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (next_attempt_at);
"""


def _micros(moment: dt.datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} must be timezone-aware")
    return (moment - _EPOCH) // dt.timedelta(microseconds=1)


def _moment(micros: int | None) -> dt.datetime | None:
    return None if micros is None else _EPOCH + dt.timedelta(microseconds=micros)


def _iso(micros: int | None) -> str | None:
    moment = _moment(micros)
    return None if moment is None else moment.isoformat()


@dataclass(frozen=True)
class Commit:
    """The answer to a commit: what the HTTP layer renders (202, or 409 when `status` is
    refused), and what a retry with the same key gets again, with `replayed`."""

    action_id: str
    status: str
    idempotency_key: str
    dry_run: bool
    checks_passed: tuple[str, ...] = ()
    check: str | None = None
    detail: str | None = None
    replayed: bool = field(default=False, compare=False)

    @property
    def refused(self) -> bool:
        return self.status == REFUSED

    def to_json(self) -> str:
        answer = asdict(self)
        del answer["replayed"]
        return json.dumps(answer, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, *, replayed: bool) -> Commit:
        answer = json.loads(text)
        answer["checks_passed"] = tuple(answer["checks_passed"])
        return cls(**answer, replayed=replayed)


@dataclass(frozen=True)
class Delivery:
    """A queued action leased to a delivery worker; `attempts` made before this one."""

    action_id: str
    idempotency_key: str
    decision_id: str
    customer_id: str
    action: str
    channel: str
    campaign_id: str
    creative_id: str | None
    send_at: dt.datetime | None
    expires_at: dt.datetime
    attempts: int


class ActionStore:
    """The store at `path` (created if missing), shared by processes and threads."""

    def __init__(self, path: Path, busy_timeout_s: float = 10.0):
        # synchronous FULL: an action answered 202 is on disk.
        self._database = SharedDatabase(
            path, _SCHEMA, synchronous="FULL", busy_timeout_s=busy_timeout_s
        )

    # --- commits ---------------------------------------------------------------------------

    def commit(
        self,
        request: ActionRequestData,
        *,
        customer_id: str | None,
        expires_at: dt.datetime | None,
        refusal: Refusal | None,
        caps: Sequence[FrequencyCap],
        now: dt.datetime,
    ) -> Commit:
        """Store the request's answer under its idempotency key, or answer what the key
        already has (see the module's docstring). `refusal` is what the checks before caps
        said; `customer_id` and `expires_at` come from the decision's offer (None when it is
        unknown); `caps` are the channel's, counted only when nothing refused before."""
        request_hash = request.request_hash()
        with self._database.write() as db:
            stored = _stored_answer(db, request, request_hash)
            if stored is not None:
                return stored
            if refusal is None and customer_id is not None:
                refusal = self._caps_refusal(db, customer_id, request.channel, caps, now)
            commit = _answer(request, refusal)
            self._insert(db, request, commit, request_hash, customer_id, expires_at, now)
        return commit

    def answer_for(self, request: ActionRequestData) -> Commit | None:
        """What `commit` would answer now from the request's idempotency key alone: the
        stored answer (replayed), an ``idempotency`` refusal, or None for a new key. A read
        without the write lock: a caller may skip its checks for a retry."""
        with self._database.read() as db:
            return _stored_answer(db, request, request.request_hash())

    @staticmethod
    def _caps_refusal(
        db: sqlite3.Connection,
        customer_id: str,
        channel: str,
        caps: Sequence[FrequencyCap],
        now: dt.datetime,
    ) -> Refusal | None:
        for cap in caps:
            since = now - dt.timedelta(hours=cap.window_hours)
            (count,) = db.execute(
                "SELECT COUNT(*) FROM actions WHERE customer_id = ? AND channel = ? "
                "AND created_at > ? AND status IN (?, ?)",
                (customer_id, channel, _micros(since), *_COUNTED),
            ).fetchone()
            if count >= cap.max:
                return cap_refusal(cap, channel, count)
        return None

    @staticmethod
    def _insert(
        db: sqlite3.Connection,
        request: ActionRequestData,
        commit: Commit,
        request_hash: str,
        customer_id: str | None,
        expires_at: dt.datetime | None,
        now: dt.datetime,
    ) -> None:
        created = _micros(now)
        send_at = None if request.send_at is None else _micros(request.send_at)
        db.execute(
            "INSERT INTO actions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                commit.action_id,
                request.idempotency_key,
                request_hash,
                request.decision_id,
                customer_id,
                request.action,
                request.channel,
                request.campaign_id,
                request.creative_id,
                send_at,
                None if expires_at is None else _micros(expires_at),
                int(request.dry_run),
                commit.status,
                commit.check,
                commit.detail,
                created,
                commit.to_json(),
            ),
        )
        db.execute(
            "INSERT INTO action_events VALUES (?, ?, ?, ?)",
            (commit.action_id, created, commit.status, commit.detail or _PASSED[commit.status]),
        )
        if commit.status == QUEUED:
            due = created if send_at is None else max(send_at, created)
            db.execute("INSERT INTO outbox VALUES (?, ?, 0, 0)", (commit.action_id, due))

    # --- delivery --------------------------------------------------------------------------

    def claim_due(self, now: dt.datetime, limit: int, lease_s: float) -> list[Delivery]:
        """Lease up to `limit` entries that are due (their next attempt's time has come) and
        not leased to a worker now, for `lease_s` seconds; oldest first."""
        moment = _micros(now)
        with self._database.write() as db:
            rows = db.execute(
                "SELECT a.action_id, a.idempotency_key, a.decision_id, a.customer_id, a.action, "
                "a.channel, a.campaign_id, a.creative_id, a.send_at, a.expires_at, o.attempts "
                "FROM outbox o JOIN actions a USING (action_id) "
                "WHERE o.next_attempt_at <= ? AND o.leased_until < ? "
                "ORDER BY o.next_attempt_at LIMIT ?",
                (moment, moment, limit),
            ).fetchall()
            until = _micros(now + dt.timedelta(seconds=lease_s))
            db.executemany(
                "UPDATE outbox SET leased_until = ? WHERE action_id = ?",
                [(until, row[0]) for row in rows],
            )
        return [
            Delivery(*row[:8], _moment(row[8]), _moment(row[9]), row[10])  # type: ignore[arg-type]
            for row in rows
        ]

    def record_attempt(
        self,
        action_id: str,
        *,
        ok: bool,
        detail: str,
        now: dt.datetime,
        retry_at: dt.datetime | None,
    ) -> str | None:
        """Record a delivery attempt: delivered (`ok`), to be retried at `retry_at`, or
        failed for good (neither). Answers the action's status after it (`queued` when it
        will be retried), or None if the action has no outbox entry (another worker recorded
        it; nothing is changed)."""
        moment = _micros(now)
        with self._database.write() as db:
            row = db.execute(
                "SELECT attempts FROM outbox WHERE action_id = ?", (action_id,)
            ).fetchone()
            if row is None:
                return None
            attempt = row[0] + 1
            event_detail = f"attempt {attempt}: {detail}"
            if not ok and retry_at is not None:
                db.execute(
                    "UPDATE outbox SET attempts = ?, next_attempt_at = ?, leased_until = 0 "
                    "WHERE action_id = ?",
                    (attempt, _micros(retry_at), action_id),
                )
                db.execute(
                    "INSERT INTO action_events VALUES (?, ?, ?, ?)",
                    (action_id, moment, ATTEMPT_FAILED, event_detail),
                )
                return QUEUED
            status = DELIVERED if ok else FAILED
            db.execute("DELETE FROM outbox WHERE action_id = ?", (action_id,))
            db.execute("UPDATE actions SET status = ? WHERE action_id = ?", (status, action_id))
            db.execute(
                "INSERT INTO action_events VALUES (?, ?, ?, ?)",
                (action_id, moment, status, event_detail),
            )
        return status

    # --- reading, erasure ------------------------------------------------------------------

    def get(self, action_id: str) -> dict[str, Any] | None:
        """The action's status, request and history (oldest first), or None; without the
        customer id, which its callers may not see."""
        with self._database.read() as db:
            row = db.execute(
                "SELECT action_id, status, idempotency_key, decision_id, action, channel, "
                "campaign_id, creative_id, send_at, expires_at, dry_run, refusal_check, "
                "refusal_message, created_at FROM actions WHERE action_id = ?",
                (action_id,),
            ).fetchone()
            if row is None:
                return None
            events = db.execute(
                "SELECT ts, status, detail FROM action_events WHERE action_id = ? "
                "ORDER BY ts, rowid",
                (action_id,),
            ).fetchall()
        (action_id, status, key, decision_id, action, channel, campaign_id, creative_id) = row[:8]
        send_at, expires_at, dry_run, check, detail, created_at = row[8:]
        return {
            "action_id": action_id,
            "status": status,
            "idempotency_key": key,
            "decision_id": decision_id,
            "action": action,
            "channel": channel,
            "campaign_id": campaign_id,
            "creative_id": creative_id,
            "send_at": _iso(send_at),
            "expires_at": _iso(expires_at),
            "dry_run": bool(dry_run),
            "check": check,
            "detail": detail,
            "created_at": _iso(created_at),
            "history": [
                {"ts": _iso(ts), "status": event, "detail": text} for ts, event, text in events
            ],
        }

    def erase(self, customer_id: str) -> int:
        """Delete the customer's actions, their history and their pending deliveries; the
        number of actions deleted."""
        with self._database.write() as db:
            selected = "SELECT action_id FROM actions WHERE customer_id = ?"
            db.execute(f"DELETE FROM outbox WHERE action_id IN ({selected})", (customer_id,))
            db.execute(f"DELETE FROM action_events WHERE action_id IN ({selected})", (customer_id,))
            return db.execute("DELETE FROM actions WHERE customer_id = ?", (customer_id,)).rowcount

    def counts_by_status(self) -> dict[str, int]:
        """How many actions have each status (every status, zeros included)."""
        with self._database.read() as db:
            rows = db.execute("SELECT status, COUNT(*) FROM actions GROUP BY status")
            counts = dict(rows.fetchall())
        return {status: counts.get(status, 0) for status in STATUSES}

    def refusals_by_check(self) -> dict[str, int]:
        """How many actions each check refused (only the checks that refused some)."""
        with self._database.read() as db:
            rows = db.execute(
                "SELECT refusal_check, COUNT(*) FROM actions WHERE status = ? "
                "GROUP BY refusal_check ORDER BY refusal_check",
                (REFUSED,),
            )
            return dict(rows.fetchall())

    def close(self) -> None:
        self._database.close()


def _stored_answer(
    db: sqlite3.Connection, request: ActionRequestData, request_hash: str
) -> Commit | None:
    """The answer stored under the request's key (replayed), the refusal of a key used
    with another request, or None for a new key."""
    stored = db.execute(
        "SELECT action_id, request_hash, answer FROM actions WHERE idempotency_key = ?",
        (request.idempotency_key,),
    ).fetchone()
    if stored is None:
        return None
    action_id, stored_hash, answer = stored
    if stored_hash == request_hash:
        return Commit.from_json(answer, replayed=True)
    return Commit(
        action_id,
        REFUSED,
        request.idempotency_key,
        request.dry_run,
        check=IDEMPOTENCY,
        detail=IDEMPOTENCY_CONFLICT,
    )


def _answer(request: ActionRequestData, refusal: Refusal | None) -> Commit:
    """The commit's answer when its key is new: every check before the refusing one passed."""
    action_id = uuid.uuid4().hex
    if refusal is not None:
        passed = CHECKS[: CHECKS.index(refusal.check)]
        return Commit(
            action_id,
            REFUSED,
            request.idempotency_key,
            request.dry_run,
            passed,
            refusal.check,
            refusal.message,
        )
    status = DRY_RUN if request.dry_run else QUEUED
    return Commit(action_id, status, request.idempotency_key, request.dry_run, CHECKS)
