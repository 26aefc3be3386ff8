"""Appending one line to a file that several processes append to: locked, whole, durable.

`append_line` takes an exclusive lock on the file, lets the caller build the line under
it (the audit log reads its chain's head there), ends a line that a writer killed
mid-write left open, writes, and fsyncs (and the directory, for a new file), so the line
is on disk when it returns.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = Path(tmp) / "log.jsonl"
...     _ = path.write_bytes(b'{"torn": ')  # a writer died mid-line
...     _ = append_line(path, lambda descriptor, size: b'{"n": 1}\\n')
...     path.read_bytes()
b'{"torn": \\n{"n": 1}\\n'
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from pathlib import Path

from liftgate.core.jsonstate import fsync_directory

#: Builds the line under the lock, given the open file (read-write) and its size.
LineBuilder = Callable[[int, int], bytes]


def append_line(path: Path, line_for: LineBuilder) -> bytes:
    """Append the line `line_for` builds (ending in a newline); returns it as built."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Read and write: the builder, and the torn-line check, read the file.
    descriptor = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)  # released when the descriptor closes
        size = os.fstat(descriptor).st_size
        line = built = line_for(descriptor, size)
        # A writer killed mid-line left a line without its end: end it, so that only that
        # fragment is unreadable and this line starts a line of its own.
        if size and os.pread(descriptor, 1, size - 1) != b"\n":
            line = b"\n" + line
        written = 0
        while written < len(line):  # O_APPEND: every write goes to the end
            written += os.write(descriptor, line[written:])
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    if size == 0:  # a new file: its name must survive a crash too
        fsync_directory(path.parent)
    return built
