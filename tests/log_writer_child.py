"""A process that logs, for tests/test_wal.py to kill or starve (not a test module).

``python tests/log_writer_child.py MODE LOG_DIR [ARG]``:

- ``load LOG_DIR POLICY``: 8 concurrent clients commit decisions with fsync POLICY, in
  small, frequent Parquet batches; each acknowledged id is printed (one line, flushed) once
  its commit returns. Runs until killed.
- ``crash LOG_DIR POINT``: appends decisions of several dates, then flushes and SIGKILLs
  itself at POINT: ``written`` (a temporary Parquet file written, not renamed), ``renamed``
  (the first date's file renamed into place, not the others) or ``converted`` (every file
  in place, the segment not yet deleted).
- ``full-disk LOG_DIR BALLAST``: on a small file system that BALLAST fills, commits until
  refused, then deletes BALLAST, waits until healthy, commits more (retrying refusals while
  the backlog drains) and closes; prints one JSON document (acknowledged and refused ids,
  the largest buffer seen, health).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import sys
import time
from pathlib import Path

from log_records import NOON, make_decision  # tests/, beside this file

from experiments.logs.schema import DecisionRecord
from experiments.logs.wal import LogUnavailable, Segment
from experiments.logs.writer import LogWriter

CLIENTS = 8


async def load(directory: Path, policy: str) -> None:
    writer = LogWriter(
        directory, DecisionRecord, max_rows=37, max_age_s=0.01, fsync=policy, group_commit_ms=1
    ).start()

    async def client(number: int) -> None:
        for i in range(10**9):
            decision_id = f"c{number}-{i}"
            await writer.commit(make_decision(decision_id, dt.datetime.now(dt.UTC)))
            print(decision_id, flush=True)

    await asyncio.gather(*(client(n) for n in range(CLIENTS)))


def crash(directory: Path, point: str) -> None:
    writer = LogWriter(directory, DecisionRecord, max_age_s=3600)
    for i in range(10):
        writer.append(make_decision(f"d{i}", NOON + dt.timedelta(hours=7 * i)))  # two dates
    kill = lambda: os.kill(os.getpid(), signal.SIGKILL)  # noqa: E731
    replace = os.replace
    if point == "written":
        os.replace = lambda *args: kill()
    elif point == "renamed":
        renamed = []

        def replace_once(*args):
            if renamed:
                kill()
            renamed.append(replace(*args))

        os.replace = replace_once
    elif point == "converted":
        Segment.delete = lambda self: kill()
    writer.flush()
    raise SystemExit(f"flushed without reaching {point}")


async def full_disk(directory: Path, ballast: Path) -> None:
    writer = LogWriter(
        directory, DecisionRecord, max_rows=10, max_age_s=0.02, max_buffered_rows=200
    ).start()
    acknowledged, refused, largest, unhealthy = [], [], 0, False
    for i in range(100_000):
        try:
            await writer.commit(make_decision(f"before-{i}", dt.datetime.now(dt.UTC)))
            acknowledged.append(f"before-{i}")
        except LogUnavailable:
            refused.append(f"before-{i}")
        largest = max(largest, writer.buffered_rows)
        unhealthy = unhealthy or not writer.healthy
        if len(refused) >= 50:
            break
    ballast.unlink()
    deadline = time.monotonic() + 30
    while not writer.healthy and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    healthy_again = writer.healthy
    for i in range(50):
        while True:  # the backlog may still be draining: retry, as a client told 503 would
            try:
                await writer.commit(make_decision(f"after-{i}", dt.datetime.now(dt.UTC)))
            except LogUnavailable:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.01)
            else:
                acknowledged.append(f"after-{i}")
                break
    writer.close()
    document = {
        "acknowledged": acknowledged,
        "refused": refused,
        "largest_buffer": largest,
        "unhealthy_seen": unhealthy,
        "healthy_again": healthy_again,
    }
    print(json.dumps(document))


if __name__ == "__main__":
    mode, log_dir = sys.argv[1], Path(sys.argv[2])
    if mode == "load":
        asyncio.run(load(log_dir, sys.argv[3]))
    elif mode == "crash":
        crash(log_dir, sys.argv[3])
    elif mode == "full-disk":
        asyncio.run(full_disk(log_dir, Path(sys.argv[3])))
    else:
        raise SystemExit(f"unknown mode {mode!r}")
