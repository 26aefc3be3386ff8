"""Durable logs (experiments/logs/: frames, wal, group_commit, parquet_files, writer): an
acknowledged record is on disk before the answer and lands in Parquet exactly once, through
kill -9, a crash at any step of a flush, a failing fsync and a full disk."""

from __future__ import annotations

import asyncio
import bisect
import collections
import datetime as dt
import errno
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from log_records import NOON, make_decision  # tests/, beside this file

from experiments.logs import parquet_files, wal
from experiments.logs.frames import decode, encode
from experiments.logs.reader import read_decisions
from experiments.logs.schema import DecisionRecord
from experiments.logs.wal import LogUnavailable, Segment, recover
from experiments.logs.writer import LogWriter

CHILD = Path(__file__).with_name("log_writer_child.py")
ROOT = Path(__file__).resolve().parents[1]


def enospc() -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def logged_ids(directory: Path) -> list[str]:
    return read_decisions(directory)["decision_id"].to_pylist()


def segments(directory: Path) -> list[Path]:
    return sorted((directory / "_wal").glob("*.wal"))


def assert_exactly_once(logged: list[str], acknowledged: list[str]) -> None:
    counts = collections.Counter(logged)
    assert not [i for i, n in counts.items() if n > 1], "rows logged twice"
    assert set(acknowledged) <= set(counts), "acknowledged rows lost"


# --- frames ---------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 6), cut=st.floats(0, 1), flip=st.booleans())
def test_a_torn_tail_is_dropped_and_every_whole_frame_before_it_kept(
    n: int, cut: float, flip: bool
) -> None:
    frames = [encode(make_decision(f"d{i}", NOON)) for i in range(n)]
    ends = list(itertools.accumulate(map(len, frames)))
    torn = bytearray(b"".join(frames)[: int(cut * ends[-1])])
    intact = len(torn)
    if flip and torn:
        torn[-1] ^= 0xFF  # a sector written half: the frame holding it fails its checksum
        intact -= 1
    whole = bisect.bisect_right(ends, intact)  # frames that end before the damage
    records, valid = decode(bytes(torn), DecisionRecord)
    assert [r.decision_id for r in records] == [f"d{i}" for i in range(whole)]
    assert valid == (ends[whole - 1] if whole else 0)


def test_zeros_after_the_frames_are_no_record() -> None:
    frame = encode(make_decision("d0", NOON))
    assert decode(frame + bytes(4096), DecisionRecord) == ([make_decision("d0", NOON)], len(frame))


# --- group commit ---------------------------------------------------------------------------


def gate_fsyncs(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, list[int]]:
    """Segment.sync blocks until the returned event is set; the list counts syncs."""
    release, calls = threading.Event(), []
    sync = Segment.sync

    def gated(self: Segment) -> None:
        release.wait()
        sync(self)
        calls.append(1)

    monkeypatch.setattr(Segment, "sync", gated)
    return release, calls


@pytest.mark.parametrize("policy", ["always", "group"])
def test_a_commit_returns_only_after_its_fsync_and_the_event_loop_runs_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policy: str
) -> None:
    release, calls = gate_fsyncs(monkeypatch)
    writer = LogWriter(tmp_path, DecisionRecord, fsync=policy, group_commit_ms=1)

    async def scenario() -> None:
        commit = asyncio.ensure_future(writer.commit(make_decision("d0", NOON)))
        for _ in range(20):  # the loop is free: other requests are served meanwhile
            await asyncio.sleep(0.001)
        assert not commit.done() and not calls
        release.set()
        await commit
        assert calls

    asyncio.run(scenario())
    writer.close()
    assert logged_ids(tmp_path) == ["d0"]


def test_concurrent_commits_share_fsyncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    release, calls = gate_fsyncs(monkeypatch)
    release.set()
    writer = LogWriter(tmp_path, DecisionRecord, fsync="group", group_commit_ms=20)

    async def clients() -> None:
        await asyncio.gather(*(writer.commit(make_decision(f"d{i}", NOON)) for i in range(64)))

    asyncio.run(clients())
    assert 1 <= len(calls) <= 2  # 64 commits appended within one gathering interval
    writer.close()
    assert sorted(logged_ids(tmp_path)) == sorted(f"d{i}" for i in range(64))


def test_off_acknowledges_without_fsync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, calls = gate_fsyncs(monkeypatch)  # never released: an fsync would hang the test
    writer = LogWriter(tmp_path, DecisionRecord, fsync="off")
    asyncio.run(writer.commit(make_decision("d0", NOON)))
    assert not calls
    assert decode(segments(tmp_path)[0].read_bytes(), DecisionRecord)[0] == [
        make_decision("d0", NOON)
    ]
    writer.close()


def test_a_failed_fsync_refuses_its_commit_and_the_writer_moves_to_a_new_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failures: list[str] = []
    writer = LogWriter(tmp_path, DecisionRecord, on_failure=failures.append)
    sync = Segment.sync

    def failing(self: Segment) -> None:
        self.broken = True
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(Segment, "sync", failing)
    with pytest.raises(LogUnavailable, match="durable"):
        asyncio.run(writer.commit(make_decision("refused", NOON)))
    assert failures == ["wal_fsync"] and not writer.healthy
    first = segments(tmp_path)

    monkeypatch.setattr(Segment, "sync", sync)
    asyncio.run(writer.commit(make_decision("acknowledged", NOON)))
    assert writer.healthy and len(segments(tmp_path)) == 2 and segments(tmp_path) != first
    writer.close()
    # Refused is not acknowledged, but it was written: it may be logged, once at most.
    assert_exactly_once(logged_ids(tmp_path), ["acknowledged"])


# --- crashes --------------------------------------------------------------------------------


def run_child(*args: str, **options) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(CHILD), *args], cwd=ROOT, text=True, **options)


@pytest.mark.parametrize("policy", ["group", "off"])
def test_kill_9_under_load_at_8_clients_loses_no_acknowledged_row_and_duplicates_none(
    tmp_path: Path, policy: str
) -> None:
    child = run_child("load", str(tmp_path), policy, stdout=subprocess.PIPE)
    acknowledged = []
    assert child.stdout is not None
    while len(acknowledged) < 3_000:  # many small Parquet batches are written meanwhile
        line = child.stdout.readline()
        assert line, f"the child died: {child.wait()}"
        acknowledged.append(line.strip())
    os.kill(child.pid, signal.SIGKILL)
    acknowledged += child.stdout.read().split()  # acknowledged before it died
    child.wait()
    assert len(segments(tmp_path)) >= 1  # what the crash left for recovery

    LogWriter(tmp_path, DecisionRecord).start().close()  # a restart

    assert segments(tmp_path) == []
    assert_exactly_once(logged_ids(tmp_path), acknowledged)


@pytest.mark.parametrize("point", ["written", "renamed", "converted"])
def test_a_kill_9_at_any_step_of_a_flush_is_recovered_exactly_once(
    tmp_path: Path, point: str
) -> None:
    child = run_child("crash", str(tmp_path), point)
    assert child.wait() == -signal.SIGKILL
    before = logged_ids(tmp_path)
    assert len(before) == {"written": 0, "renamed": 2, "converted": 10}[point]  # 2 on May 1

    LogWriter(tmp_path, DecisionRecord).start().close()
    LogWriter(tmp_path, DecisionRecord).start().close()  # a second restart adds nothing

    assert sorted(logged_ids(tmp_path)) == sorted(f"d{i}" for i in range(10))
    assert segments(tmp_path) == [] and list(tmp_path.glob("*/.*.tmp")) == []


def test_a_live_writers_segment_is_left_to_it(tmp_path: Path) -> None:
    live = LogWriter(tmp_path, DecisionRecord, max_age_s=3600)
    live.append(make_decision("d0", NOON))
    assert recover(tmp_path, DecisionRecord) == 0  # another replica starting
    assert len(segments(tmp_path)) == 1 and logged_ids(tmp_path) == []
    live.close()
    assert logged_ids(tmp_path) == ["d0"] and segments(tmp_path) == []


def test_a_recovery_that_fails_at_start_keeps_the_writer_unhealthy_until_a_flush_retries_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    crashed = Segment.create(tmp_path)
    crashed.write(encode(make_decision("d0", NOON)))
    crashed.close()  # its writer died
    failures: list[str] = []
    with monkeypatch.context() as disk:
        disk.setattr(wal, "write_batch", lambda *args: enospc())
        writer = LogWriter(tmp_path, DecisionRecord, on_failure=failures.append).start()
        assert failures == ["recovery"] and not writer.healthy
        writer.append(make_decision("d1", NOON))
        writer.flush()  # its own batch is written; the orphan still fails
        assert not writer.healthy and segments(tmp_path) == [crashed.path]
    writer.flush()
    assert writer.healthy and segments(tmp_path) == []
    writer.close()
    assert sorted(logged_ids(tmp_path)) == ["d0", "d1"]


# --- the Parquet files ----------------------------------------------------------------------


def test_each_rename_is_followed_by_an_fsync_of_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps: list[tuple[str, Path]] = []
    replace, fsync_directory = os.replace, parquet_files.fsync_directory
    monkeypatch.setattr(
        parquet_files.os, "replace", lambda a, b: (replace(a, b), steps.append(("rename", b)))
    )
    monkeypatch.setattr(
        parquet_files,
        "fsync_directory",
        lambda d: (fsync_directory(d), steps.append(("fsync", Path(d)))),
    )
    with LogWriter(tmp_path, DecisionRecord) as writer:
        writer.append(make_decision("d0", NOON))
        writer.append(make_decision("d1", NOON + dt.timedelta(days=1)))

    renames = [i for i, (kind, _) in enumerate(steps) if kind == "rename"]
    assert len(renames) == 2
    for i in renames:
        assert steps[i + 1] == ("fsync", steps[i][1].parent)
    # A new partition directory is made durable in the log directory before its file.
    assert ("fsync", tmp_path) in steps[: renames[0]]


# --- a full disk ----------------------------------------------------------------------------


def can_mount_tmpfs() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = "d=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs $d && umount $d; rmdir $d"
    return subprocess.run(["unshare", "-rm", "sh", "-c", probe], check=False).returncode == 0


@pytest.mark.skipif(not can_mount_tmpfs(), reason="needs user namespaces to mount a tmpfs")
def test_a_really_full_disk_refuses_records_with_bounded_memory_and_loses_none(
    tmp_path: Path,
) -> None:
    """A 1 MiB tmpfs, filled by a ballast file but for 160 KiB, in a mount namespace of the
    child's own: real ENOSPC from write(2), fsync and Parquet."""
    disk = tmp_path / "disk"
    disk.mkdir()
    script = (
        f"mount -t tmpfs -o size=1m tmpfs {disk} && "
        f"head -c 864k /dev/zero > {disk}/ballast && "
        f"{sys.executable} {CHILD} full-disk {disk}/log {disk}/ballast && "
        f"{sys.executable} -c 'import sys; from experiments.logs.reader import read_decisions; "
        f'print(" ".join(read_decisions(sys.argv[1])["decision_id"].to_pylist()))\' {disk}/log'
    )
    done = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    document_line, logged_line = done.stdout.splitlines()[-2:]
    result = json.loads(document_line)

    assert result["refused"] and result["unhealthy_seen"] and result["healthy_again"]
    assert result["largest_buffer"] <= 200  # max_buffered_rows
    assert_exactly_once(logged_line.split(), result["acknowledged"])
