"""A served bandit's state: one JSON file per experiment, shared by every replica.

``LIFTGATE_HOME/bandits/<experiment>.json`` holds

- ``policy``: the policy's ``state_dict()`` (parameters, learned arrays, generator state);
- ``watermark``: the decision timestamp (UTC, ISO 8601) up to which rewards have been
  applied, or null; decisions at or before it are never learned again;
- ``counts`` / ``reward_sums``: decisions learned and their total reward, per action code
  (``actions`` names the codes), for `liftgate bandit status`;
- ``n_runs`` and ``updated_at``: update runs that changed the state, and the last one.

Writers (the updater, in any replica or the CLI) take an exclusive ``fcntl`` lock on
``<experiment>.lock``, read the file, change the state and write it back atomically (a temp
file, fsync, ``os.replace``), so replicas updating at once apply each decision once. Readers
take no lock: a replace shows them the old file or the new one, never half of one, and they
re-read only when the file's identity (inode, mtime, size) has changed. A store without a
file starts from the configuration's untrained policy (`BanditState.initial`).

>>> import tempfile
>>> from configs.loader import load_config
>>> from experiments.bandits.spec import BanditSpec
>>> config = load_config()
>>> spec = BanditSpec(config.experiments["bandit-offers"], config.features, config.actions)
>>> with tempfile.TemporaryDirectory() as root:
...     store = BanditStore(Path(root), spec.name)
...     with store.transaction(lambda: BanditState.initial(spec)) as state:
...         state.counts[1] += 1
...     replica = BanditStore(Path(root), spec.name)
...     first, again = replica.read_if_changed(), replica.read_if_changed()
>>> first.counts.tolist(), first.watermark, again is None
([0, 1, 0, 0, 0], None, True)
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from experiments.bandits.base import Policy
from experiments.bandits.spec import BanditSpec


def bandits_dir(root: Path) -> Path:
    return Path(root) / "bandits"


def bandit_path(root: Path, experiment: str) -> Path:
    return bandits_dir(root) / f"{experiment}.json"


class BanditStateError(ValueError):
    """A state file that cannot be read, or that another configuration made."""


@dataclass
class BanditState:
    policy: Policy
    action_ids: tuple[str, ...]
    watermark: datetime | None = None
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    reward_sums: np.ndarray = field(default_factory=lambda: np.zeros(0))
    n_runs: int = 0
    updated_at: datetime | None = None

    @classmethod
    def initial(cls, spec: BanditSpec) -> BanditState:
        """The configuration's policy before any update."""
        k = len(spec.action_ids)
        return cls(spec.new_policy(), spec.action_ids, None, np.zeros(k, np.int64), np.zeros(k))

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy.state_dict(),
            "actions": list(self.action_ids),
            "watermark": None if self.watermark is None else self.watermark.isoformat(),
            "counts": self.counts.tolist(),
            "reward_sums": self.reward_sums.tolist(),
            "n_runs": self.n_runs,
            "updated_at": None if self.updated_at is None else self.updated_at.isoformat(),
        }

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> BanditState:
        def moment(text: str | None) -> datetime | None:
            return None if text is None else datetime.fromisoformat(text).astimezone(UTC)

        return cls(
            policy=Policy.from_state_dict(document["policy"]),
            action_ids=tuple(document["actions"]),
            watermark=moment(document["watermark"]),
            counts=np.asarray(document["counts"], dtype=np.int64),
            reward_sums=np.asarray(document["reward_sums"], dtype=np.float64),
            n_runs=int(document["n_runs"]),
            updated_at=moment(document["updated_at"]),
        )


class BanditStore:
    """The state file of one bandit experiment under `root` (LIFTGATE_HOME)."""

    def __init__(self, root: Path, experiment: str):
        self.path = bandit_path(root, experiment)
        self._lock_path = self.path.with_suffix(".lock")
        self._seen: tuple[int, int, int] | None = None  # identity of the file last read

    def _identity(self) -> tuple[int, int, int] | None:
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return None
        return info.st_ino, info.st_mtime_ns, info.st_size

    def read(self) -> BanditState | None:
        """The stored state, or None if there is no file yet."""
        identity = self._identity()
        if identity is None:
            return None
        try:
            state = BanditState.from_json(json.loads(self.path.read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            raise BanditStateError(f"{self.path}: not a bandit state file ({exc})") from None
        self._seen = identity
        return state

    def read_if_changed(self) -> BanditState | None:
        """The state if the file changed since this store last read it, else None."""
        identity = self._identity()
        if identity is None or identity == self._seen:
            return None
        return self.read()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock_path.open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _write(self, state: BanditState) -> None:
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        with temporary.open("w") as handle:
            json.dump(state.to_json(), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)

    @contextmanager
    def transaction(self, initial: Callable[[], BanditState]) -> Iterator[BanditState]:
        """Yield the current state (or `initial()`) under the lock; write it back if the
        block changed it. An exception in the block writes nothing."""
        with self._locked():
            state = self.read() or initial()
            before = state.to_json()
            yield state
            if state.to_json() != before or not self.path.exists():
                self._write(state)

    def ensure(self, initial: Callable[[], BanditState]) -> BanditState:
        """The stored state, written first from `initial()` if there is none."""
        state = self.read()
        if state is not None:
            return state
        with self.transaction(initial) as state:
            pass
        self._seen = self._identity()
        return state
