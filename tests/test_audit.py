"""The hash-chained audit log: the chain, tampering found at the right record, torn lines,
concurrent writers, `liftgate audit verify`, and the config changes `liftgate serve` records."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from configs.loader import DEFAULT_DIR, load_config
from liftgate.app.cli.main import app
from liftgate.app.runner import CONFIG_LOADED, audit_config
from liftgate.core import audit
from liftgate.core.home import HOME_ENV, Home

runner = CliRunner()

#: Field values of any JSON kind, Unicode and control characters included.
values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
entries = st.lists(
    st.tuples(
        st.sampled_from(["alias_set", "approved", "api_key.create", "rollout_step"]),
        st.dictionaries(st.sampled_from(["model", "version", "why", "detail"]), values),
    ),
    min_size=2,
    max_size=8,
)
#: Hypothesis runs many examples on one directory: each example writes a log of its own.
fresh = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def write_log(directory: Path, chosen: list[tuple[str, dict]]) -> tuple[Path, list[dict]]:
    path = directory / f"audit-{os.urandom(4).hex()}.jsonl"
    return path, [audit.append(path, action, who="alice", **fields) for action, fields in chosen]


def lines_of(path: Path) -> list[bytes]:
    """The file's lines, each with its newline (split on newlines only, as `verify` reads)."""
    *lines, rest = path.read_bytes().split(b"\n")
    return [line + b"\n" for line in lines] + ([rest] if rest else [])


# --- the chain --------------------------------------------------------------------------------


@fresh
@given(chosen=entries)
def test_any_sequence_of_appends_verifies(tmp_path: Path, chosen) -> None:
    path, written = write_log(tmp_path, chosen)
    verdict = audit.verify(path)
    assert verdict.ok and verdict.problem is None and verdict.warnings == ()
    assert (verdict.head_seq, verdict.head_hash) == (len(chosen), written[-1]["hash"])
    assert [r["seq"] for r in written] == list(range(1, len(chosen) + 1))
    assert written[0]["prev"] == audit.GENESIS
    assert all(b["prev"] == a["hash"] for a, b in zip(written, written[1:], strict=False))
    assert audit.read(path) == written  # what append returned is what was written


@fresh
@given(chosen=entries, data=st.data())
def test_a_flipped_byte_in_any_field_is_found_at_that_record(tmp_path: Path, chosen, data) -> None:
    path, written = write_log(tmp_path, chosen)
    index = data.draw(st.integers(0, len(written) - 1), label="record")
    record = written[index]
    key = data.draw(st.sampled_from(sorted(record)), label="field")
    lines = lines_of(path)
    # The field's value as it stands in the canonical line, after `"key":`.
    prefix, value = json.dumps(key).encode() + b":", audit.canonical(record[key])
    start = lines[index].index(prefix + value) + len(prefix)
    at = start + data.draw(st.integers(0, len(value) - 1), label="byte")
    mask = data.draw(st.integers(1, 255).filter(lambda m: lines[index][at] ^ m != ord("\n")))
    flipped = bytearray(lines[index])
    flipped[at] ^= mask
    lines[index] = bytes(flipped)
    path.write_bytes(b"".join(lines))

    verdict = audit.verify(path)
    assert not verdict.ok
    assert (verdict.problem.kind, verdict.problem.line) == (audit.CHANGED, index + 1)
    assert verdict.head_seq == index  # the chain holds up to the record before


@fresh
@given(chosen=entries, data=st.data())
def test_a_removed_record_is_found_where_it_was(tmp_path: Path, chosen, data) -> None:
    path, written = write_log(tmp_path, chosen)
    # The last record's removal leaves a valid, shorter chain (see the module docstring).
    index = data.draw(st.integers(0, len(written) - 2), label="removed")
    lines = lines_of(path)
    del lines[index]
    path.write_bytes(b"".join(lines))

    problem = audit.verify(path).problem
    assert (problem.kind, problem.line, problem.seq) == (audit.REMOVED, index + 1, index + 1)


@fresh
@given(chosen=entries, data=st.data())
def test_two_swapped_records_are_found_at_the_first(tmp_path: Path, chosen, data) -> None:
    path, written = write_log(tmp_path, chosen)
    first = data.draw(st.integers(0, len(written) - 2), label="first")
    second = data.draw(st.integers(first + 1, len(written) - 1), label="second")
    lines = lines_of(path)
    lines[first], lines[second] = lines[second], lines[first]
    path.write_bytes(b"".join(lines))

    problem = audit.verify(path).problem
    assert (problem.kind, problem.line, problem.seq) == (audit.REORDERED, first + 1, second + 1)
    assert f"it is on line {second + 1}" in str(problem)


def test_a_record_rewritten_with_a_new_hash_is_found_by_the_next_link(tmp_path: Path) -> None:
    path, written = write_log(tmp_path, [("approved", {}), ("approved", {}), ("approved", {})])
    forged = {k: v for k, v in written[1].items() if k != "hash"} | {"who": "mallory"}
    forged["hash"] = audit.record_hash(forged)
    lines = lines_of(path)
    lines[1] = audit.canonical(forged) + b"\n"
    path.write_bytes(b"".join(lines))

    problem = audit.verify(path).problem
    assert (problem.kind, problem.line, problem.seq) == (audit.CHANGED, 2, 2)
    assert "line 3 links to" in str(problem)


def test_append_fsyncs_before_it_returns(tmp_path: Path, monkeypatch) -> None:
    synced = []
    monkeypatch.setattr(audit.os, "fsync", lambda descriptor: synced.append(descriptor))
    audit.append(tmp_path / "audit.jsonl", "approved")
    assert synced  # the line, and the new file's directory entry


# --- torn lines and records from before the chain ---------------------------------------------


@fresh
@given(chosen=entries, cut=st.floats(0.05, 0.95))
def test_a_torn_tail_is_a_warning_and_later_appends_chain_past_it(
    tmp_path: Path, chosen, cut: float
) -> None:
    path, written = write_log(tmp_path, chosen)
    whole = audit.canonical(audit.chained({"action": "cut", "who": "x", "ts": "t"}, written[-1]))
    with path.open("ab") as handle:  # a crash mid-write: part of a line, no newline
        handle.write(whole[: max(1, int(len(whole) * cut))])

    torn = audit.verify(path)
    assert torn.ok and torn.head_seq == len(written)
    assert [(w.kind, w.line) for w in torn.warnings] == [(audit.TORN_TAIL, len(written) + 1)]
    assert audit.read(path) == written

    after = audit.append(path, "approved")
    assert (after["seq"], after["prev"]) == (len(written) + 1, written[-1]["hash"])
    verdict = audit.verify(path)
    assert verdict.ok and verdict.head_hash == after["hash"]
    assert [(w.kind, w.line) for w in verdict.warnings] == [(audit.TORN_LINE, len(written) + 1)]
    assert audit.read(path) == [*written, after]


def test_a_whole_line_that_is_not_a_record_at_the_end_is_a_change(tmp_path: Path) -> None:
    path, _ = write_log(tmp_path, [("approved", {}), ("approved", {})])
    lines = lines_of(path)
    lines[-1] = lines[-1].replace(b'"action"', b'"action\\')  # still ended by its newline
    path.write_bytes(b"".join(lines))
    problem = audit.verify(path).problem
    assert (problem.kind, problem.line, problem.seq) == (audit.CHANGED, 2, 2)


def test_records_from_before_the_chain_are_counted_not_failed(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    legacy = [{"ts": "2026-01-01T00:00:00", "who": "bob", "action": "approved", "version": "1"}]
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in legacy * 2))
    first = audit.append(path, "approved")
    assert (first["seq"], first["prev"]) == (1, audit.GENESIS)
    verdict = audit.verify(path)
    assert (verdict.ok, verdict.unchained, verdict.head_seq, verdict.records) == (True, 2, 1, 3)
    assert len(audit.read(path)) == 3

    with path.open("a") as handle:  # an unchained record after the chain began: tampering
        handle.write(json.dumps(legacy[0]) + "\n")
    problem = audit.verify(path).problem
    assert (problem.kind, problem.line) == (audit.CHANGED, 4)


def test_an_empty_or_missing_log_verifies(tmp_path: Path) -> None:
    verdict = audit.verify(tmp_path / "none.jsonl")
    assert (verdict.ok, verdict.records, verdict.head_hash) == (True, 0, audit.GENESIS)
    assert audit.read(tmp_path / "none.jsonl") == []


def test_last_finds_the_latest_record_of_an_action_across_blocks(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    assert audit.last(path, CONFIG_LOADED) is None
    wanted = audit.append(path, CONFIG_LOADED, digest="a")
    for n in range(30):  # well over one block of the file's end
        audit.append(path, "rollout_step", padding="x" * 500, n=n)
    assert audit.last(path, CONFIG_LOADED) == wanted
    assert audit.last(path, "rollout_step")["n"] == 29
    assert audit.last(path, "never") is None


# --- several writers --------------------------------------------------------------------------


def _append_many(path: str, writer: int, count: int) -> None:
    for n in range(count):
        audit.append(Path(path), "rollout_step", who=f"writer-{writer}", n=n)


def test_concurrent_appends_from_processes_form_one_chain(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    context = multiprocessing.get_context("fork")  # the child needs no imports of its own
    processes = [context.Process(target=_append_many, args=(str(path), w, 50)) for w in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    verdict = audit.verify(path)
    assert verdict.ok and verdict.warnings == ()
    assert verdict.head_seq == 200
    records = audit.read(path)
    for writer in range(4):  # each writer's records are all there, in its order
        assert [r["n"] for r in records if r["who"] == f"writer-{writer}"] == list(range(50))


# --- the command line -------------------------------------------------------------------------


@pytest.fixture
def cli_home(home: Home, monkeypatch: pytest.MonkeyPatch) -> Home:
    monkeypatch.setenv(HOME_ENV, str(home.root))
    for n in range(3):
        audit.append(home.audit_log, "approved", who="alice", version=str(n))
    return home


def test_verify_exits_0_with_the_records_checked_and_the_head(cli_home: Home) -> None:
    head = audit.read(cli_home.audit_log)[-1]["hash"]
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "intact; 3 chained records checked" in result.stdout and head in result.stdout

    document = json.loads(runner.invoke(app, ["audit", "verify", "--json"]).stdout)
    assert (document["ok"], document["records"], document["head_hash"]) == (True, 3, head)


def test_verify_warns_about_a_torn_tail_and_exits_0(cli_home: Home) -> None:
    with cli_home.audit_log.open("a") as handle:
        handle.write('{"action":"appro')
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "warning:" in result.stderr and "line 4 is torn" in result.stderr


def test_verify_exits_1_naming_the_first_changed_record(cli_home: Home) -> None:
    text = cli_home.audit_log.read_text().replace('"version":"1"', '"version":"9"')
    cli_home.audit_log.write_text(text)
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 1
    assert "line 2 (record seq 2) was changed" in result.stderr
    assert "the chain holds up to record seq 1" in result.stderr

    document = json.loads(runner.invoke(app, ["audit", "verify", "--json"]).stdout)
    assert document["exit_code"] == 1 and "record seq 2" in document["error"]


def test_tail_does_not_show_the_chain_fields(cli_home: Home) -> None:
    result = runner.invoke(app, ["audit", "tail"])
    assert result.exit_code == 0, result.output
    assert "version=2" in result.stdout and "hash=" not in result.stdout


# --- config changes ---------------------------------------------------------------------------


def test_serve_records_a_config_only_when_its_digest_changes(home: Home, tmp_path: Path) -> None:
    directory = tmp_path / "configs"
    shutil.copytree(DEFAULT_DIR, directory, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    first = audit_config(load_config(directory), home)
    assert first["action"] == CONFIG_LOADED and first["previous_digest"] is None
    assert audit_config(load_config(directory), home) is None  # unchanged: nothing appended

    models = directory / "models.yaml"
    models.write_text(
        models.read_text().replace(
            "require_approval_for_champion: false", "require_approval_for_champion: true"
        )
    )
    changed = audit_config(load_config(directory), home)
    assert changed["previous_digest"] == first["digest"] != changed["digest"]
    assert [r["action"] for r in audit.read(home.audit_log)] == [CONFIG_LOADED] * 2
    assert audit.verify(home.audit_log).ok


def test_a_mangled_last_record_does_not_stop_appends(tmp_path: Path) -> None:
    path, written = write_log(tmp_path, [("approved", {}), ("approved", {})])
    path.write_bytes(path.read_bytes().replace(b'"seq":2', b'"seq":"two"'))
    after = audit.append(path, "approved")  # chains to the last record it can read
    assert (after["seq"], after["prev"]) == (2, written[0]["hash"])
    problem = audit.verify(path).problem
    assert (problem.kind, problem.line) == (audit.CHANGED, 2)
