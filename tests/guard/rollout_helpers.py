"""What the rollout tests share: a rollout of three steps and a config directory holding
it, a registry in memory whose calls fail on demand, and a crash to inject: the process
dies just before its n-th change of state (a file written, an alias moved, a tag set)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from configs.loader import DEFAULT_DIR
from experiments.canary_state import read_split
from liftgate.core import jsonstate
from liftgate.core.home import Home
from liftgate.guard.state import PROMOTED, RolloutRecord, read_record
from registry.errors import RegistryError

NAME = "canary-test"
ROLLOUT = {
    "name": NAME,
    "steps": [
        {"weight": 0.1, "min_units": 300, "min_duration_s": 0},
        {"weight": 0.3, "min_units": 300, "min_duration_s": 0},
        {"weight": 1.0},
    ],
    "analysis": {"interval_s": 1, "attribution_window_hours": 1},
    "metrics": [{"name": "conversion", "kind": "binomial", "column": "converted"}],
    "drift": {"enabled": False},
}


def write_config(directory: Path) -> Path:
    """The default configuration with the test rollout, in `directory`."""
    shutil.copytree(DEFAULT_DIR, directory, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (directory / "rollouts" / f"{NAME}.yaml").write_text(yaml.safe_dump(ROLLOUT))
    return directory


class Killed(BaseException):
    """The process dies here: like `os._exit`, nothing catches it (no retry, no handler)."""


class Crash:
    """Counts the changes of state; the one numbered `at` (from 0) never happens, because
    the process dies just before it (`at=None`: it never dies). It dies once: what runs
    after stands for the next process."""

    def __init__(self, at: int | None = None):
        self.at, self.count = at, 0

    def step(self) -> None:
        if self.count == self.at:
            self.at = None
            raise Killed(f"killed before change {self.count}")
        self.count += 1


def crash_on_file_writes(monkeypatch: pytest.MonkeyPatch, crash: Crash) -> None:
    """Every state file written (records, serving weights) is a change `crash` counts."""
    replace = jsonstate.replace_file

    def counted(path: Path, data: bytes) -> None:
        crash.step()
        replace(path, data)

    monkeypatch.setattr(jsonstate, "replace_file", counted)


class MemoryRegistry:
    """The registry calls the controller makes, on a dict of aliases and one of tags. The
    next `failures` calls raise (an outage: transient if few, lasting if many); each alias
    moved and each tag set is a change `crash` counts."""

    def __init__(self, aliases: dict[str, str], crash: Crash | None = None):
        self.state, self.tags = dict(aliases), {}
        self.crash = crash or Crash()
        self.failures = 0

    def _call(self) -> None:
        if self.failures:
            self.failures -= 1
            raise RegistryError("injected: the registry could not be read")

    def aliases(self, model: str) -> dict[str, str]:
        self._call()
        return dict(self.state)

    def set_aliases(self, model: str, target: dict, who=None, why="") -> None:
        for alias, version in target.items():
            self._call()
            self.crash.step()
            if version is None:
                self.state.pop(alias, None)
            else:
                self.state[alias] = version

    def tag_version(self, model: str, version: str, tags: dict[str, str]) -> None:
        self._call()
        self.crash.step()
        self.tags.setdefault(version, {}).update(tags)


def assert_agree(home: Home, aliases: dict[str, str], name: str = NAME) -> RolloutRecord:
    """Record, serving weights and aliases tell one story, and nothing is pending."""
    record = read_record(home, name)
    assert record.pending is None
    split, _ = read_split(home)
    served = split.weight if split is not None and split.rollout == name else 0.0
    assert served == (record.weight if record.active else 0.0)
    if record.status == PROMOTED:
        assert (aliases.get("champion"), aliases.get("previous")) == (
            record.challenger,
            record.champion,
        )
        assert "challenger" not in aliases
    else:
        assert aliases.get("champion") == record.champion
        assert aliases.get("challenger") == (record.challenger if record.active else None)
    return record
