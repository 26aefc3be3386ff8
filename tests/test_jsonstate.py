"""Shared JSON state (liftgate/core/jsonstate.py): locked changes, atomic and durable writes."""

from __future__ import annotations

import multiprocessing
import os
import stat
from pathlib import Path

import pytest
from racing import race  # tests/, beside this file

from liftgate.core import jsonstate
from liftgate.core.jsonstate import UnreadableDocument, locked_json, read_json, write_json

PROCESSES, ROUNDS = 8, 25


def increment(path: Path, start: multiprocessing.synchronize.Event) -> None:
    start.wait()
    for _ in range(ROUNDS):
        with locked_json(path, dict) as document:
            document["n"] = document.get("n", 0) + 1


def test_concurrent_processes_lose_no_change(tmp_path: Path) -> None:
    path = tmp_path / "counter.json"
    assert race(increment, path, processes=PROCESSES) == [0] * PROCESSES
    assert read_json(path) == {"n": PROCESSES * ROUNDS}


def test_a_crash_between_write_and_replace_leaves_the_old_document(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    write_json(path, {"revision": 1})

    def crash(source, destination) -> None:
        assert Path(source).read_text() == '{"revision": 2}'  # written in full, then the crash
        raise OSError("the machine went down")

    monkeypatch.setattr(jsonstate.os, "replace", crash)
    with pytest.raises(OSError, match="went down"), locked_json(path) as document:
        document["revision"] = 2
    assert read_json(path) == {"revision": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == [".state.json.lock", "state.json"]


def test_the_file_then_the_rename_are_made_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "state.json"
    events: list[str] = []
    fsync, replace = os.fsync, os.replace

    def record_fsync(descriptor: int) -> None:
        is_directory = stat.S_ISDIR(os.fstat(descriptor).st_mode)
        events.append("fsync directory" if is_directory else "fsync file")
        if is_directory:
            assert os.fstat(descriptor).st_ino == tmp_path.stat().st_ino
        fsync(descriptor)

    def record_replace(source, destination) -> None:
        events.append("replace")
        replace(source, destination)

    monkeypatch.setattr(jsonstate.os, "fsync", record_fsync)
    monkeypatch.setattr(jsonstate.os, "replace", record_replace)
    write_json(path, {"a": 1})
    assert events == ["fsync file", "replace", "fsync directory"]


def test_a_failed_or_empty_change_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    with locked_json(path, dict):
        pass
    assert not path.exists()  # nothing changed, nothing written
    with pytest.raises(RuntimeError), locked_json(path, dict) as document:
        document["half"] = "done"
        raise RuntimeError("boom")
    assert not path.exists()

    write_json(path, {"a": 1})
    before = path.stat()
    with locked_json(path, dict) as document:
        document["a"] = 1
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_the_format_options_are_kept_on_every_write(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    with locked_json(path, dict, indent=2, sort_keys=True) as document:
        document.update(b=1, a=[1])
    assert path.read_text() == '{\n  "a": [\n    1\n  ],\n  "b": 1\n}'


@pytest.mark.parametrize("content", [b"{half", b"\xff\xfe{\x00"], ids=["torn", "not text"])
def test_a_document_that_is_not_json_is_an_error_naming_the_file(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    with pytest.raises(UnreadableDocument, match=f"{path}: not a JSON document"):
        read_json(path)
    with pytest.raises(UnreadableDocument), locked_json(path):
        pass
    assert read_json(tmp_path / "missing.json", default={}) == {}
