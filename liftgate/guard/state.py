"""Rollout records under LIFTGATE_HOME/rollouts/<name>.json: status, step, history.

`liftgate rollout …` and the guard read and write them under an exclusive lock
(`liftgate.core.jsonstate`), so a manual command and the guard's interval never
interleave their changes. A :class:`RolloutRecord` is the document's shape: `to_json`
writes the keys the files have always had, in the same order, and `from_json` reads them.
A transition in progress adds one key, ``pending``: its :class:`Intent`, written (`save`)
before the weights or the aliases move and removed once both are done.

>>> import tempfile
>>> from pathlib import Path
>>> with tempfile.TemporaryDirectory() as tmp:
...     home = Home(Path(tmp))
...     new = RolloutRecord(
...         name="canary", model="scorer", champion="1", challenger="2", status=RUNNING,
...         step=0, weight=0.05, started_at="2026-01-01T00:00:00+00:00",
...         step_started_at="2026-01-01T00:00:00+00:00")
...     with locked_record(home, "canary", new=new) as record:
...         _ = record.add_event("started", step=0)
...     with locked_record(home, "canary") as record:
...         record.status = PAUSED
...     stored = read_record(home, "canary")
>>> stored.status, [event["event"] for event in stored.history], stored.active
('paused', ['started'], True)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from liftgate.core.home import Home
from liftgate.core.jsonstate import UnreadableDocument, locked_json, read_json, write_json

RUNNING, PAUSED = "running", "paused"
PROMOTED, ROLLED_BACK, ABORTED = "promoted", "rolled_back", "aborted"
ACTIVE = (RUNNING, PAUSED)
#: What a transition does (an :class:`Intent`'s ``action``).
START, STEP, PROMOTE, ROLLBACK = "start", "step", "promote", "rollback"
HISTORY_LIMIT = 500
_FORMAT = {"indent": 2, "default": str}


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _drift_state() -> dict[str, Any]:
    return {"checked_at": None, "alerted": False}


@dataclass(frozen=True, kw_only=True)
class Intent:
    """A transition that is about to move the serving weights and the registry aliases.

    ``weight`` is the canary weight it ends at (0: the champion serves everyone), ``aliases``
    the aliases it ends with (alias → version; None: removed), ``step`` and ``status`` the
    record's once it is done (None: unchanged), ``tags`` the registry tags the challenger's
    version gets after the aliases. A promotion keeps in ``restore`` the aliases it
    replaces, so that an abort arriving before it is done can put them back.
    """

    action: str
    weight: float
    aliases: dict[str, str | None] = field(default_factory=dict)
    step: int | None = None
    status: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    restore: dict[str, str | None] = field(default_factory=dict)
    who: str = ""
    why: str = ""
    at: str = ""

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Intent:
        return cls(**document)


@dataclass(slots=True, kw_only=True)
class RolloutRecord:
    """One rollout's state; the controller changes it in place under the lock.

    Times are ISO 8601 strings, as stored. ``drift`` holds the guard's drift check
    (``checked_at``, ``alerted`` for the current drift episode, ``last`` observation),
    ``ope`` the challenger's off-policy evaluation (if the rollout requires one),
    ``last_verdict`` the guard's last verdict with its evidence, ``pending`` the transition
    under way (if any), ``history`` the events (``ts``, ``event`` and the event's fields),
    oldest first, ``started_by`` who started it (four eyes: that person may not approve the
    champion it promotes; records written before it was kept have none).
    """

    name: str
    model: str
    champion: str
    challenger: str
    status: str
    step: int
    weight: float
    started_at: str
    step_started_at: str
    operation_failures: int = 0
    dry_run: bool = False
    drift: dict[str, Any] = field(default_factory=_drift_state)
    ope: dict[str, Any] | None = None
    last_verdict: dict[str, Any] | None = None
    pending: Intent | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    updated_at: str | None = None
    started_by: str | None = None

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> RolloutRecord:
        """The record of a stored document (a ``TypeError`` names a key it does not know)."""
        pending = document.get("pending")
        return cls(**{**document, "pending": Intent.from_json(pending) if pending else None})

    def to_json(self) -> dict[str, Any]:
        """The document to store: the fields as JSON values, in the files' key order
        (``pending`` only while a transition is under way, ``started_by`` once known)."""
        document = asdict(self)
        for key in ("pending", "started_by"):
            if document[key] is None:
                del document[key]
        return document

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def add_event(self, event: str, **fields: Any) -> dict[str, Any]:
        entry = {"ts": now_iso(), "event": event, **fields}
        self.history.append(entry)
        return entry


@dataclass(frozen=True)
class Records:
    """The rollout records in LIFTGATE_HOME/rollouts, and the files there that are not."""

    readable: list[RolloutRecord]
    unreadable: dict[str, str]  # rollout name → why its file cannot be read


def _record_of(path: Path, document: Any) -> RolloutRecord:
    try:
        return RolloutRecord.from_json(document)
    except (TypeError, ValueError) as exc:
        raise UnreadableDocument(f"{path}: not a rollout record ({exc})") from None


def read_record(home: Home, name: str) -> RolloutRecord | None:
    """The record (None if the rollout was never started); `UnreadableDocument` if the
    file is not a record."""
    path = home.rollout_record(name)
    document = read_json(path)
    return None if document is None else _record_of(path, document)


def all_records(home: Home) -> Records:
    readable, unreadable = [], {}
    if home.rollouts.is_dir():
        for path in sorted(home.rollouts.glob("*.json")):
            if path == home.serving_weights:
                continue
            try:
                readable.append(_record_of(path, read_json(path)))
            except UnreadableDocument as exc:
                unreadable[path.stem] = str(exc)
    return Records(readable, unreadable)


def _stamped(record: RolloutRecord) -> dict[str, Any]:
    record.updated_at = now_iso()
    record.history = record.history[-HISTORY_LIMIT:]
    return record.to_json()


@contextmanager
def locked_record(
    home: Home, name: str, new: RolloutRecord | None = None
) -> Iterator[RolloutRecord | None]:
    """The stored record (None if the rollout was never started), or `new` in its place, to
    change in place; written back atomically when the block completes (an exception
    writes nothing more than the block has `save`d)."""
    path = home.rollout_record(name)
    with locked_json(path, dict, **_FORMAT) as document:
        record = new or (_record_of(path, document) if document else None)
        yield record
        if record is not None:
            document.clear()
            document.update(_stamped(record))


def save(home: Home, record: RolloutRecord) -> None:
    """Write `record` now, durably, from inside its `locked_record` block (whose lock this
    process holds): a transition's intent is on disk before anything moves."""
    write_json(home.rollout_record(record.name), _stamped(record), **_FORMAT)
