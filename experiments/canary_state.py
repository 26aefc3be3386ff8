"""The serving weights of rollouts, persisted under LIFTGATE_HOME/rollouts/serving.json.

This file is the durable record of what the replicas should serve: the guard and the
`liftgate rollout` commands write it (atomically, under a lock, with a new revision), the
Ray Serve driver pushes a change to the replicas as `user_config` (no restart), and a
plain uvicorn app's replicas re-read it when it changes. A restarted application starts
from it, so a rollback survives a restart.
"""

from __future__ import annotations

from experiments.canary import CanarySplit
from liftgate.core.home import Home
from liftgate.core.jsonstate import locked_json, read_json


def read_split(home: Home) -> tuple[CanarySplit | None, int]:
    """The current split (None: the champion serves everyone) and the file's revision."""
    document = read_json(home.serving_weights, {})
    return CanarySplit.from_dict(document.get("split")), int(document.get("revision", 0))


def write_split(home: Home, split: CanarySplit | None) -> CanarySplit | None:
    """Replace the split; returns it with its new revision."""
    with locked_json(home.serving_weights, dict, indent=2) as document:
        revision = int(document.get("revision", 0)) + 1
        if split is not None:
            split = CanarySplit(**{**split.to_dict(), "revision": revision})
        document.update(revision=revision, split=split.to_dict() if split else None)
    return split
