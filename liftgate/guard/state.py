"""Rollout records under LIFTGATE_HOME/rollouts/<name>.json: status, step, history.

`liftgate rollout …` and the guard read and write them under an exclusive lock, so a
manual command and the guard's interval never interleave their changes.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RUNNING, PAUSED = "running", "paused"
PROMOTED, ROLLED_BACK, ABORTED = "promoted", "rolled_back", "aborted"
ACTIVE = (RUNNING, PAUSED)
HISTORY_LIMIT = 500


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def rollouts_dir(root: Path) -> Path:
    return root / "rollouts"


def record_path(root: Path, name: str) -> Path:
    return rollouts_dir(root) / f"{name}.json"


def read_record(root: Path, name: str) -> dict[str, Any] | None:
    path = record_path(root, name)
    return json.loads(path.read_text()) if path.exists() else None


def all_records(root: Path) -> list[dict[str, Any]]:
    directory = rollouts_dir(root)
    if not directory.is_dir():
        return []
    return [
        json.loads(path.read_text())
        for path in sorted(directory.glob("*.json"))
        if path.name != "serving.json"
    ]


@contextmanager
def locked_record(root: Path, name: str) -> Iterator[dict[str, Any]]:
    """The record (an empty dict if new) to change in place; written back atomically."""
    path = record_path(root, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    with (path.parent / f".{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        record = read_record(root, name) or {}
        yield record
        if record:
            record["updated_at"] = now_iso()
            record["history"] = record.get("history", [])[-HISTORY_LIMIT:]
            temporary = path.with_suffix(".tmp")
            temporary.write_text(json.dumps(record, indent=2, default=str))
            os.replace(temporary, path)


def add_event(record: dict[str, Any], event: str, **fields: Any) -> dict[str, Any]:
    entry = {"ts": now_iso(), "event": event, **fields}
    record.setdefault("history", []).append(entry)
    return entry
