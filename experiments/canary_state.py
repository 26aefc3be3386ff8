"""The serving weights of rollouts, persisted under LIFTGATE_HOME/rollouts/serving.json.

This file is the durable record of what the replicas should serve: the guard and the
`liftgate rollout` commands write it (atomically, under a lock, with a new revision), the
Ray Serve driver pushes a change to the replicas as `user_config` (no restart), and a
plain uvicorn app's replicas re-read it when it changes. A restarted application starts
from it, so a rollback survives a restart.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from experiments.canary import CanarySplit


def serving_weights_path(root: Path) -> Path:
    return root / "rollouts" / "serving.json"


def read_split(root: Path) -> tuple[CanarySplit | None, int]:
    """The current split (None: the champion serves everyone) and the file's revision."""
    path = serving_weights_path(root)
    if not path.exists():
        return None, 0
    document = json.loads(path.read_text())
    return CanarySplit.from_dict(document.get("split")), int(document.get("revision", 0))


def write_split(root: Path, split: CanarySplit | None) -> CanarySplit | None:
    """Replace the split; returns it with its new revision."""
    path = serving_weights_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    with (path.parent / ".serving.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _, revision = read_split(root)
        revision += 1
        if split is not None:
            split = CanarySplit(**{**split.to_dict(), "revision": revision})
        document = {"revision": revision, "split": split.to_dict() if split else None}
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(document, indent=2))
        os.replace(temporary, path)
    return split
