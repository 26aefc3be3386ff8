"""Group commit: many appends share one fsync, and each caller learns when its record is safe.

Every record appended to a write-ahead segment gets a log sequence number (LSN).
:meth:`GroupCommit.wait` returns once the record with that LSN is as durable as the
policy asks, and raises :class:`~experiments.logs.wal.LogUnavailable` if the fsync that
covered it failed. The policies (``serving.decision_log.fsync``):

- ``always``: a background thread fsyncs as soon as a caller waits; callers who arrive
  during an fsync share the next one (no caller waits for more than two fsyncs);
- ``group``: the same, but the thread first waits ``interval_s`` (``group_commit_ms``)
  after the first waiting caller, so that more appends share each fsync;
- ``off``: no fsync; :meth:`wait` returns at once. A record is still written to its
  segment with ``write(2)`` before it is acknowledged, so it survives the death of the
  process (``kill -9``, the OOM killer), but not a power cut or a kernel crash.

The fsync runs on the thread, never on the caller's: an asyncio caller awaits a future the
thread resolves, so the event loop goes on serving meanwhile. This is the group commit of
DeWitt et al. (1984), "Implementation Techniques for Main Memory Database Systems",
SIGMOD, section 5, and of PostgreSQL's ``commit_delay``.

>>> import asyncio, tempfile
>>> from pathlib import Path
>>> from experiments.logs.wal import Segment
>>> with tempfile.TemporaryDirectory() as tmp:
...     commits = GroupCommit("group", interval_s=0.002)
...     segment = Segment.create(Path(tmp))
...     segment.write(b"frame 1"); commits.written(1, segment)
...     asyncio.run(commits.wait(1))
...     commits.synced, commits.fsyncs
...     commits.close(); segment.close()
(1, 1)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Literal

from experiments.logs.wal import LogUnavailable, Segment

logger = logging.getLogger(__name__)

FsyncPolicy = Literal["always", "group", "off"]
FSYNC_POLICIES: tuple[FsyncPolicy, ...] = ("always", "group", "off")

_Settle = Callable[[BaseException | None], None]


class GroupCommit:
    """The fsync thread of one writer, and the callers waiting for it.

    ``on_failure`` is called (on the thread) with the error of a failed fsync; the
    segment it failed on is marked ``broken``.
    """

    def __init__(
        self,
        policy: FsyncPolicy,
        interval_s: float = 0.0,
        on_failure: Callable[[OSError], None] = lambda error: None,
    ) -> None:
        if policy not in FSYNC_POLICIES:
            raise ValueError(f"fsync policy {policy!r}: expected one of {FSYNC_POLICIES}")
        if interval_s < 0:
            raise ValueError("interval_s must be >= 0")
        self.policy = policy
        self.interval_s = interval_s if policy == "group" else 0.0
        self.on_failure = on_failure
        self.synced = 0  # every LSN up to this one is durable
        self.fsyncs = 0
        self._written = 0
        self._dirty: list[Segment] = []  # segments written to since their last fsync
        self._waiters: list[tuple[int, _Settle]] = []
        self._cond = threading.Condition()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    def written(self, lsn: int, segment: Segment) -> None:
        """The frame with ``lsn`` is in ``segment`` (call in LSN order)."""
        if self.policy == "off":
            return
        with self._cond:
            self._written = lsn
            if not self._dirty or self._dirty[-1] is not segment:
                self._dirty.append(segment)

    async def wait(self, lsn: int) -> None:
        """Return once the record with ``lsn`` is durable under the policy."""
        if self.policy == "off":
            return
        loop = asyncio.get_running_loop()
        future = loop.create_future()

        def settle(error: BaseException | None) -> None:
            with contextlib.suppress(RuntimeError):  # the caller's loop has closed
                loop.call_soon_threadsafe(_resolve, future, error)

        with self._cond:
            if lsn <= self.synced:
                return
            if self._closing.is_set():
                raise LogUnavailable("the log is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="fsync", daemon=True)
                self._thread.start()
            self._waiters.append((lsn, settle))
            self._cond.notify()
        await future

    def close(self) -> None:
        """Stop the thread; make everything written so far durable, settling all waiters."""
        with self._cond:
            self._closing.set()
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join()
        if self.policy != "off":
            self._sync()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._waiters and not self._closing.is_set():
                    self._cond.wait()
                if self._closing.is_set():
                    return  # close() does the last fsync
            if self.interval_s:
                self._closing.wait(self.interval_s)  # let more appends join this fsync
            self._sync()

    def _sync(self) -> None:
        with self._cond:
            target, segments, self._dirty = self._written, self._dirty, []
        error = None
        for segment in segments:
            try:
                segment.sync()
            except OSError as exc:
                error = exc
        with self._cond:
            if error is None:
                self.synced = max(self.synced, target)
            self.fsyncs += 1
            settled = [settle for lsn, settle in self._waiters if lsn <= target]
            self._waiters = [(lsn, settle) for lsn, settle in self._waiters if lsn > target]
        failure = None
        if error is not None:
            logger.error("fsync of the write-ahead log failed: %s", error)
            self.on_failure(error)
            failure = LogUnavailable(f"the log could not be made durable: {error}")
        for settle in settled:
            settle(failure)


def _resolve(future: asyncio.Future, error: BaseException | None) -> None:
    if future.done():  # the caller gave up (cancelled)
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
