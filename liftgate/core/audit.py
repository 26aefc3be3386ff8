"""The append-only audit log: one JSON line per alias change, approval or rollback.

Appends take an exclusive file lock, so concurrent writers never interleave lines.
"""

from __future__ import annotations

import fcntl
import getpass
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def current_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def append(path: Path, action: str, *, who: str | None = None, **fields: Any) -> dict:
    record = {
        "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "who": who or current_user(),
        "action": action,
        **fields,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write(json.dumps(record, sort_keys=True) + "\n")
        handle.flush()
        fcntl.flock(handle, fcntl.LOCK_UN)
    return record


def read(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
