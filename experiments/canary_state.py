"""The serving weights of rollouts, persisted under LIFTGATE_HOME/rollouts/serving.json.

This file is the durable record of what the replicas should serve: the guard and the
`liftgate rollout` commands write it (atomically, under a lock, with a new revision), the
Ray Serve driver pushes a change to the replicas as `user_config` (no restart), and a
plain uvicorn app's replicas re-read it when it changes. A restarted application starts
from it, so a rollback survives a restart. While the file cannot be read, its readers keep
the split they applied, and the next write replaces it.
"""

from __future__ import annotations

import time

from experiments.canary import CanarySplit
from liftgate.core.home import Home
from liftgate.core.jsonstate import UnreadableDocument, locked, read_json, write_json


def read_split(home: Home) -> tuple[CanarySplit | None, int]:
    """The current split (None: the champion serves everyone) and the file's revision;
    `UnreadableDocument` naming the file if it holds no serving weights."""
    document = read_json(home.serving_weights, {})
    try:
        return CanarySplit.from_dict(document.get("split")), int(document.get("revision", 0))
    except (AttributeError, TypeError, ValueError) as exc:
        raise UnreadableDocument(f"{home.serving_weights}: not serving weights ({exc})") from None


def write_split(home: Home, split: CanarySplit | None) -> CanarySplit | None:
    """Replace the split; returns it with its new revision. An unreadable file is replaced
    as well (nothing may keep a rollback from taking the canary out): its count is lost, so
    the revision restarts from the clock (milliseconds since 1970), which no count before
    reached, and every reader sees a new revision."""
    with locked(home.serving_weights):
        try:
            revision = read_split(home)[1] + 1
        except UnreadableDocument:
            revision = time.time_ns() // 1_000_000
        if split is not None:
            split = CanarySplit(**{**split.to_dict(), "revision": revision})
        document = {"revision": revision, "split": split.to_dict() if split else None}
        write_json(home.serving_weights, document, indent=2)
    return split
