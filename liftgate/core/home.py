"""Where liftgate keeps its state: everything lives under LIFTGATE_HOME (default ./.liftgate)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "LIFTGATE_HOME"


@dataclass(frozen=True)
class Home:
    root: Path

    @classmethod
    def from_env(cls) -> Home:
        return cls(Path(os.environ.get(HOME_ENV, ".liftgate")).resolve())

    @property
    def mlflow_uri(self) -> str:
        return f"sqlite:///{self.root / 'mlflow.db'}"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def audit_log(self) -> Path:
        return self.root / "audit" / "audit.jsonl"

    @property
    def worlds(self) -> Path:
        return self.root / "worlds"

    def ensure(self) -> Home:
        for path in (self.root, self.artifacts, self.logs, self.audit_log.parent):
            path.mkdir(parents=True, exist_ok=True)
        return self
