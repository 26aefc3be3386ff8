"""A setting of ``serving.yaml`` as a benchmark variable: a copy of the configuration
directory with some settings changed. A server started with ``LIFTGATE_CONFIG_DIR`` set to
the copy reads them (uvicorn's ``serving.local:app_from_env`` and ``liftgate serve``, whose
replicas get the same directory).

>>> from configs.loader import load_config
>>> import tempfile
>>> with tempfile.TemporaryDirectory() as tmp:
...     copy = config_copy(Path(tmp), load_config().directory, "example",
...                        {"replicas": 1, "decision_log": {"fsync": "off"}})
...     serving = load_config(copy).serving
...     copy.name, serving.replicas, serving.decision_log.fsync, serving.decision_log.max_rows
('configs-example', 1, 'off', 5000)
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml


def config_copy(
    work: Path, source: Path, name: str, serving: Mapping[str, Any] | None = None
) -> Path:
    """A copy of the configuration directory `source` at `work`/configs-`name`, with the
    settings `serving` merged into its serving.yaml (:func:`set_serving`)."""
    target = work / f"configs-{name}"
    shutil.copytree(source, target)
    if serving:
        set_serving(target, serving)
    return target


def set_serving(config_dir: Path, settings: Mapping[str, Any]) -> None:
    """Merge `settings` into `config_dir`/serving.yaml in place: a mapping merges into the
    section of its key (``{"decision_log": {"fsync": "off"}}`` keeps the section's other
    settings), any other value replaces the setting."""
    path = config_dir / "serving.yaml"
    document = yaml.safe_load(path.read_text())
    _merge(document, settings)
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def _merge(document: dict[str, Any], settings: Mapping[str, Any]) -> None:
    for key, value in settings.items():
        if isinstance(value, Mapping) and isinstance(document.get(key), dict):
            _merge(document[key], value)
        else:
            document[key] = value
