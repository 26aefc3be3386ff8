"""JSON state files that several processes share: atomic writes and locked changes.

Replicas, the guard and `liftgate` commands keep small JSON documents under LIFTGATE_HOME
(rollout records, serving weights, experiment state, bandit state). Two rules make sharing
them safe:

- `write_json` is atomic and durable: the text goes to a temporary file in the same
  directory (``.<name>.<random>.tmp``), is flushed and fsynced, replaces the document with
  `os.replace`, and the directory is fsynced so that the rename survives a crash too. A
  reader (`read_json`) sees the old document or the new one, never half of one, and takes
  no lock; a crash before the replace leaves the old document as it was.
- `locked_json` is a read-modify-write under an exclusive lock (`filelock`, on
  ``.<name>.lock`` next to the document), so concurrent writers never lose each other's
  change. The block changes the document in place; it is written back (with `write_json`)
  only if the block completes and the document changed: an exception writes nothing.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as directory:
...     path = Path(directory) / "counter.json"
...     for _ in range(2):
...         with locked_json(path, dict) as document:
...             document["n"] = document.get("n", 0) + 1
...     read_json(path), read_json(Path(directory) / "missing.json", {})
({'n': 2}, {})
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock

#: How often a writer waiting for the lock tries again (filelock polls a non-blocking flock).
LOCK_POLL_S = 0.01

_MISSING = object()


def read_json(path: Path, default: Any = None) -> Any:
    """The document at `path`, or `default` if there is no file; a ValueError naming the
    file if it is not JSON."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return default
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{path}: not a JSON document ({exc})") from None


def write_json(path: Path, document: Any, **options: Any) -> None:
    """Replace the document at `path` atomically; `options` go to `json.dumps`."""
    _write_text(path, json.dumps(document, **options))


def lock_path(path: Path) -> Path:
    """The lock file that `locked_json` takes for the document at `path`."""
    return path.with_name(f".{path.name}.lock")


@contextmanager
def locked_json(path: Path, initial: Callable[[], Any] = dict, **options: Any) -> Iterator[Any]:
    """Yield the document at `path` (or `initial()` if there is none) under an exclusive
    lock, to change in place; written back if the block completes and changed it.
    `options` go to `json.dumps` (the same ones on every write keep the format stable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(lock_path(path), poll_interval=LOCK_POLL_S):
        document = read_json(path, _MISSING)
        if document is _MISSING:
            document = initial()
        before = json.dumps(document, **options)
        yield document
        after = json.dumps(document, **options)
        if after != before:
            _write_text(path, after)


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    # O_EXCL: a name no one else writes; 0o666: the umask decides, as for any new file.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    """Make the directory's entries (the rename) durable."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
