"""Rollout records under LIFTGATE_HOME/rollouts/<name>.json: status, step, history.

`liftgate rollout …` and the guard read and write them under an exclusive lock
(`liftgate.core.jsonstate`), so a manual command and the guard's interval never
interleave their changes. A :class:`RolloutRecord` is the document's shape: `to_json`
writes the keys the files have always had, in the same order, and `from_json` reads them.

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
from typing import Any

from liftgate.core.home import Home
from liftgate.core.jsonstate import locked_json, read_json

RUNNING, PAUSED = "running", "paused"
PROMOTED, ROLLED_BACK, ABORTED = "promoted", "rolled_back", "aborted"
ACTIVE = (RUNNING, PAUSED)
HISTORY_LIMIT = 500
_FORMAT = {"indent": 2, "default": str}


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _drift_state() -> dict[str, Any]:
    return {"checked_at": None, "alerted": False}


@dataclass(slots=True, kw_only=True)
class RolloutRecord:
    """One rollout's state; the controller changes it in place under the lock.

    Times are ISO 8601 strings, as stored. ``drift`` holds the guard's drift check
    (``checked_at``, ``alerted`` for the current drift episode, ``last`` observation),
    ``ope`` the challenger's off-policy evaluation (if the rollout requires one),
    ``last_verdict`` the guard's last verdict with its evidence, ``history`` the events
    (``ts``, ``event`` and the event's fields), oldest first.
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
    history: list[dict[str, Any]] = field(default_factory=list)
    updated_at: str | None = None

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> RolloutRecord:
        """The record of a stored document (a ``TypeError`` names a key it does not know)."""
        return cls(**document)

    def to_json(self) -> dict[str, Any]:
        """The document to store: the fields as JSON values, in the files' key order."""
        return asdict(self)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def add_event(self, event: str, **fields: Any) -> dict[str, Any]:
        entry = {"ts": now_iso(), "event": event, **fields}
        self.history.append(entry)
        return entry


def read_record(home: Home, name: str) -> RolloutRecord | None:
    document = read_json(home.rollout_record(name))
    return None if document is None else RolloutRecord.from_json(document)


def all_records(home: Home) -> list[RolloutRecord]:
    if not home.rollouts.is_dir():
        return []
    return [
        RolloutRecord.from_json(read_json(path))
        for path in sorted(home.rollouts.glob("*.json"))
        if path != home.serving_weights
    ]


@contextmanager
def locked_record(
    home: Home, name: str, new: RolloutRecord | None = None
) -> Iterator[RolloutRecord | None]:
    """The stored record (None if the rollout was never started), or `new` in its place, to
    change in place; written back atomically when the block completes (an exception
    writes nothing)."""
    with locked_json(home.rollout_record(name), dict, **_FORMAT) as document:
        record = new or (RolloutRecord.from_json(document) if document else None)
        yield record
        if record is not None:
            record.updated_at = now_iso()
            record.history = record.history[-HISTORY_LIMIT:]
            document.clear()
            document.update(record.to_json())
