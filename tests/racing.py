"""Processes that race: forked, then let go at the same moment to contend for a lock.

>>> race(lambda start: start.wait(), processes=2)
[0, 0]
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable


def race(target: Callable[..., object], *args: object, processes: int) -> list[int | None]:
    """Run ``target(*args, start)`` in `processes` forked processes, each to wait for the
    `start` event, which is set once all have started; their exit codes (None: hung)."""
    context = multiprocessing.get_context("fork")  # the children need no imports of their own
    start = context.Event()
    workers = [context.Process(target=target, args=(*args, start)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    start.set()  # all at once
    for worker in workers:
        worker.join(timeout=60)
    return [worker.exitcode for worker in workers]
