"""JSON state files that several processes share: atomic writes and locked changes.

Replicas, the guard and `liftgate` commands keep small JSON documents under LIFTGATE_HOME
(rollout records, serving weights, experiment state, bandit state). Three rules make sharing
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
- `create_once` creates a file that is written once and then only read (a key): processes
  that race to create it all get the one whole file that won.

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

from liftgate.core.errors import LiftgateError

#: How often a writer waiting for the lock tries again (filelock polls a non-blocking flock).
LOCK_POLL_S = 0.01

_MISSING = object()


class UnreadableDocument(LiftgateError, ValueError):
    """A state file whose content is not what it should be (not JSON, or not the document
    its reader expects); the message names the file."""


def read_json(path: Path, default: Any = None) -> Any:
    """The document at `path`, or `default` if there is no file; `UnreadableDocument`
    naming the file if it is not JSON."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return default
    try:
        return json.loads(data)
    except ValueError as exc:  # not JSON, or not text
        raise UnreadableDocument(f"{path}: not a JSON document ({exc})") from None


def write_json(path: Path, document: Any, **options: Any) -> None:
    """Replace the document at `path` atomically; `options` go to `json.dumps`."""
    replace_file(path, json.dumps(document, **options).encode())


def lock_path(path: Path) -> Path:
    """The lock file that `locked_json` takes for the document at `path`."""
    return path.with_name(f".{path.name}.lock")


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the exclusive lock of the document at `path` (the one `locked_json` takes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(lock_path(path), poll_interval=LOCK_POLL_S):
        yield


@contextmanager
def locked_json(path: Path, initial: Callable[[], Any] = dict, **options: Any) -> Iterator[Any]:
    """Yield the document at `path` (or `initial()` if there is none) under an exclusive
    lock, to change in place; written back if the block completes and changed it.
    `options` go to `json.dumps` (the same ones on every write keep the format stable)."""
    with locked(path):
        document = read_json(path, _MISSING)
        if document is _MISSING:
            document = initial()
        before = json.dumps(document, **options)
        yield document
        after = json.dumps(document, **options)
        if after != before:
            replace_file(path, after.encode())


def create_once(path: Path, content: bytes, mode: int = 0o600) -> bytes:
    """The file at `path`, created with `content` if there is none. The content is written
    whole to a temporary file, fsynced, and linked into place (`os.link` refuses a name that
    exists), so of processes racing to create it one wins and all read its whole content."""
    with contextlib.suppress(FileExistsError):
        _publish(path, content, os.link, mode)
    return path.read_bytes()


def replace_file(path: Path, data: bytes) -> None:
    """Replace the file at `path` with `data` atomically and durably, as `write_json` does."""
    _publish(path, data, os.replace, 0o666)  # 0o666: the umask decides, as for any new file


def _publish(path: Path, data: bytes, place: Callable[[Path, Path], None], mode: int) -> None:
    """Write `data` to a temporary file beside `path`, fsync it, `place` it at `path` (a
    rename or a link) and fsync the directory; the temporary file never outlives the call."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    # O_EXCL: a name no one else writes.
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        place(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):  # renamed away, or linked: remove
            temporary.unlink()
    fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    """Make the directory's entries (the rename) durable."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
