"""A served bandit's state: one JSON file per experiment, shared by every replica.

``LIFTGATE_HOME/bandits/<experiment>.json`` holds

- ``policy``: the policy's ``state_dict()`` (parameters, learned arrays, generator state);
- ``watermark``: the decision timestamp (UTC, ISO 8601) up to which rewards have been
  applied, or null; decisions at or before it are never learned again;
- ``counts`` / ``reward_sums``: decisions learned and their total reward, per action code
  (``actions`` names the codes), for `liftgate bandit status`;
- ``n_runs`` and ``updated_at``: update runs that changed the state, and the last one;
- ``n_skipped``: closed decisions not learned because their reward was not finite (0 in a
  file written before it was counted).

Writers (the updater, in any replica or the CLI) change the state in a locked
read-modify-write (`liftgate.core.jsonstate.locked_json`: an exclusive lock, an atomic and
fsynced replace), so replicas updating at once apply each decision once. Readers take no
lock: a replace shows them the old file or the new one, never half of one, and they re-read
only when the file's identity (inode, mtime, size) has changed. A store without a file
starts from the configuration's untrained policy (`BanditState.initial`).

>>> import tempfile
>>> from pathlib import Path
>>> from configs.loader import load_config
>>> from experiments.bandits.spec import BanditSpec
>>> config = load_config()
>>> spec = BanditSpec(config.experiments["bandit-offers"], config.features, config.actions)
>>> with tempfile.TemporaryDirectory() as root:
...     store = BanditStore(Home(Path(root)), spec.name)
...     with store.transaction(lambda: BanditState.initial(spec)) as state:
...         state.counts[1] += 1
...     replica = BanditStore(Home(Path(root)), spec.name)
...     first, again = replica.read_if_changed(), replica.read_if_changed()
>>> first.counts.tolist(), first.watermark, again is None
([0, 1, 0, 0, 0], None, True)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from experiments.bandits.base import Policy
from experiments.bandits.spec import BanditSpec
from liftgate.core.errors import InputError
from liftgate.core.home import Home
from liftgate.core.jsonstate import locked_json, read_json


class BanditStateError(InputError):
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
    n_skipped: int = 0

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
            "n_skipped": self.n_skipped,
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
            n_skipped=int(document.get("n_skipped", 0)),
        )


class BanditStore:
    """The state file of one bandit experiment under LIFTGATE_HOME."""

    def __init__(self, home: Home, experiment: str):
        self.path = home.bandit_state(experiment)
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
            document = read_json(self.path)
        except ValueError as exc:
            raise BanditStateError(str(exc)) from None
        if document is None:  # replaced by nothing since: gone
            return None
        state = self._state(document)
        self._seen = identity
        return state

    def _state(self, document: dict[str, Any]) -> BanditState:
        try:
            return BanditState.from_json(document)
        except (ValueError, KeyError, TypeError) as exc:
            raise BanditStateError(f"{self.path}: not a bandit state file ({exc})") from None

    def read_if_changed(self) -> BanditState | None:
        """The state if the file changed since this store last read it, else None."""
        identity = self._identity()
        if identity is None or identity == self._seen:
            return None
        return self.read()

    @contextmanager
    def transaction(self, initial: Callable[[], BanditState]) -> Iterator[BanditState]:
        """Yield the current state (or `initial()`) under the lock; write it back if the
        block changed it, or if there was no file. An exception in the block writes nothing."""
        with locked_json(self.path, dict) as document:
            state = self._state(document) if document else initial()
            yield state
            document.update(state.to_json())

    def ensure(self, initial: Callable[[], BanditState]) -> BanditState:
        """The stored state, written first from `initial()` if there is none."""
        state = self.read()
        if state is not None:
            return state
        with self.transaction(initial) as state:
            pass
        self._seen = self._identity()
        return state
