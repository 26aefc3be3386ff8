"""The audit log: one JSON line per change that matters, hash-chained and fsynced.

Key, config, alias, approval, rollout and governance changes each append a record. Every
record carries ``seq`` (1, 2, …), ``prev`` (the previous record's ``hash``; 64 zeros for the
first) and ``hash``: the SHA-256 of the record's canonical JSON (sorted keys, compact
separators) without ``hash``. Editing a record breaks its hash; removing or reordering
records breaks the sequence and the ``prev`` links. `verify` names the first record where
the chain breaks. Removing records from the end leaves a shorter valid chain: compare the
head `verify` reports with one kept elsewhere to see that.

`append` takes an exclusive `flock` on the file (so concurrent writers never interleave or
fork the chain), reads the last record from the end of the file, writes one line and fsyncs
it before it returns. A crash mid-write leaves a torn last line: the next append first ends
it with a newline and chains to the last whole record, and `verify` reports the fragment as
a warning. Records written before the chain existed (no ``hash``) are counted as unchained.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as tmp:
...     log = Path(tmp) / "audit.jsonl"
...     first = append(log, "alias_set", who="alice", alias="champion", to_version="2")
...     second = append(log, "approved", who="bob", version="2")
...     intact = verify(log)
...     text = log.read_text().replace('"who":"bob"', '"who":"eve"')
...     _ = log.write_text(text)
...     tampered = verify(log)
>>> (first["seq"], first["prev"] == GENESIS, second["prev"] == first["hash"])
(1, True, True)
>>> intact.ok, intact.records, intact.head_seq
(True, 2, 2)
>>> tampered.ok, str(tampered.problem)
(False, 'line 2 (record seq 2) was changed: its content does not match its hash')
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from liftgate.core.linefile import append_line

#: The ``prev`` of the first record of a chain.
GENESIS = "0" * 64
#: What `verify` finds: a record changed, removed or out of order (each fails the check),
#: or a line that is not a whole record because a write was cut short (a warning).
CHANGED, REMOVED, REORDERED = "changed", "removed", "reordered"
TORN_TAIL, TORN_LINE = "torn_tail", "torn_line"
#: How much of the file's end `append` reads at a time looking for the last record.
_TAIL_BLOCK = 8192


def current_user() -> str:
    """The OS user (``LOGNAME`` or ``USER`` first, as `getpass` reads them)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


# --- the chain ------------------------------------------------------------------------------


def canonical(value: Any) -> bytes:
    """Canonical JSON (sorted keys, compact separators): of a record without its hash, the
    bytes the hash covers; of a record with it, the line it is written as."""
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def record_hash(record: dict[str, Any]) -> str:
    """SHA-256 of the record's canonical JSON without its ``hash``."""
    return hashlib.sha256(canonical({k: v for k, v in record.items() if k != "hash"})).hexdigest()


def chained(entry: dict[str, Any], head: dict[str, Any] | None) -> dict[str, Any]:
    """`entry` as the record after `head` (None: the first of the chain).

    The entry goes through JSON once, so the record returned is the one `read` gives back.
    """
    seq, prev = (1, GENESIS) if head is None else (head["seq"] + 1, head["hash"])
    record = json.loads(canonical({**entry, "seq": seq, "prev": prev}))
    record["hash"] = record_hash(record)
    return record


def _parse(line: bytes) -> dict[str, Any] | None:
    """The record on a line; None for a line that is not one (a torn write, say)."""
    try:
        record = json.loads(line)
    except ValueError:  # not JSON, or not UTF-8
        return None
    return record if isinstance(record, dict) else None


# --- writing and reading --------------------------------------------------------------------


def append(path: Path, action: str, *, who: str | None = None, **fields: Any) -> dict:
    """Append a record of `action` by `who` (default: the OS user); it is on disk, chained
    to the one before, when this returns. The record, as written, is returned."""
    entry = {
        "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "who": who or current_user(),
        "action": action,
        **fields,
    }

    def line_for(descriptor: int, size: int) -> bytes:
        return canonical(chained(entry, _head(_lines_backwards(descriptor, size)))) + b"\n"

    return json.loads(append_line(path, line_for))


def read(path: Path) -> list[dict]:
    """Every record of the log, oldest first (lines that are not records are skipped)."""
    if not path.exists():
        return []
    with path.open("rb") as handle:
        return [record for record in map(_parse, handle) if record is not None]


def last(path: Path, action: str) -> dict | None:
    """The latest record of `action`, read from the end of the file (None: there is none)."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        size = os.fstat(descriptor).st_size
        for record in map(_parse, _lines_backwards(descriptor, size)):
            if record is not None and record.get("action") == action:
                return record
        return None
    finally:
        os.close(descriptor)


def _lines_backwards(descriptor: int, size: int) -> Iterator[bytes]:
    """The file's lines, last first, read block by block from the end."""
    end, carry = size, b""
    while end > 0:
        start = max(0, end - _TAIL_BLOCK)
        lines = (os.pread(descriptor, end - start, start) + carry).split(b"\n")
        carry = lines[0]  # it may begin in the block before
        yield from reversed(lines[1:])
        end = start
    yield carry


def _head(lines_backwards: Iterable[bytes]) -> dict | None:
    """The last whole record, if it is chained (None: an empty log, or one whose records
    all predate the chain, which then starts after them). A record whose seq or hash is
    mangled is passed over: appends go on, and `verify` reports it."""
    for record in map(_parse, lines_backwards):
        if record is None:
            continue
        if "hash" not in record:
            return None
        if isinstance(record.get("seq"), int) and isinstance(record["hash"], str):
            return record
    return None


# --- verifying ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """Where the chain breaks (`kind` one of changed, removed, reordered) or a line that is
    not a whole record (torn_tail, torn_line); `seq` is the record's, or the one expected
    there."""

    kind: str
    line: int
    seq: int | None
    detail: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f" (record seq {self.seq})" if self.seq else "")
        verb = {CHANGED: "was changed", REMOVED: "is missing", REORDERED: "is out of order"}
        return f"{where} {verb.get(self.kind, 'is torn')}: {self.detail}"


@dataclass(frozen=True)
class AuditVerdict:
    """`ok` unless a record was changed, removed or reordered (`problem`, the first one);
    the head of the chain (as far as it holds), the records from before the chain
    (`unchained`), and `warnings` (torn lines: not failures)."""

    ok: bool
    head_seq: int
    head_hash: str
    unchained: int = 0
    problem: Finding | None = None
    warnings: tuple[Finding, ...] = field(default_factory=tuple)

    @property
    def records(self) -> int:
        """The whole records checked (chained ones up to the problem, if any, and unchained)."""
        return self.head_seq + self.unchained

    def to_dict(self) -> dict[str, Any]:
        document = {**asdict(self), "records": self.records}
        document["problem"] = self.problem and {
            **asdict(self.problem),
            "message": str(self.problem),
        }
        document["warnings"] = [{**asdict(w), "message": str(w)} for w in self.warnings]
        return document


def verify(path: Path) -> AuditVerdict:
    """The verdict on the log at `path` (an empty verdict, ok, if there is no file)."""
    if not path.exists():
        return check_lines([])
    with path.open("rb") as handle:
        return check_lines(handle)


def check_lines(lines: Iterable[bytes]) -> AuditVerdict:
    """The verdict on a log's lines, each with its ``\\n`` (the last may lack it).

    One pass; after a gap in the sequence it reads on only to tell a record that was moved
    (reordered) from one that is gone (removed).
    """
    numbered = enumerate(lines, start=1)
    head = _Head()
    unchained = 0
    fragments: list[int] = []  # lines since the last record that are not records
    warnings: list[Finding] = []

    def verdict(problem: Finding | None = None) -> AuditVerdict:
        return AuditVerdict(
            problem is None, head.seq, head.hash, unchained, problem, tuple(warnings)
        )

    ended = True  # did the last line end with a newline?
    for number, line in numbered:
        ended = line.endswith(b"\n")
        if not line.strip():
            continue
        record = _parse(line)
        if record is None:
            fragments.append(number)
            continue
        if "hash" not in record and head.seq:
            return verdict(Finding(CHANGED, number, None, f"no hash, after {head}"))
        if "hash" in record and record["hash"] != record_hash(record):
            seq = record.get("seq")
            detail = "its content does not match its hash"
            return verdict(Finding(CHANGED, number, seq if isinstance(seq, int) else None, detail))
        if "hash" in record and not head.links(record):
            if fragments:  # a record should be where the fragment is
                detail = f"not a record, and the record on line {number} does not chain past it"
                return verdict(Finding(CHANGED, fragments[0], head.seq + 1, detail))
            return verdict(_misplaced(record, number, head, numbered))
        # A record that chains on: the fragments before it were writes cut short.
        torn = "not a whole record (a write cut short); the next record chains past it"
        warnings.extend(Finding(TORN_LINE, n, None, torn) for n in fragments)
        fragments.clear()
        if "hash" in record:
            head = _Head(record["seq"], record["hash"], number)
        else:
            unchained += 1
    if fragments and ended:  # ended by a newline: not a write cut short, yet nothing chains
        return verdict(Finding(CHANGED, fragments[0], head.seq + 1, "not a record"))
    if fragments:
        detail = "the last line is not a whole record (a write cut short); the next append "
        warnings.append(Finding(TORN_TAIL, fragments[0], None, detail + "chains past it"))
    return verdict()


@dataclass(frozen=True)
class _Head:
    """The last record of the chain so far (seq 0: none yet)."""

    seq: int = 0
    hash: str = GENESIS
    line: int = 0

    def links(self, record: dict[str, Any]) -> bool:
        """Whether `record` is the next one of the chain."""
        return record.get("seq") == self.seq + 1 and record.get("prev") == self.hash

    def __str__(self) -> str:
        return f"record seq {self.seq} (line {self.line})"


def _misplaced(
    record: dict[str, Any], number: int, head: _Head, rest: Iterator[tuple[int, bytes]]
) -> Finding:
    """Why a record with a valid hash on line `number` does not follow `head`."""
    seq, prev, expected = record.get("seq"), record.get("prev"), head.seq + 1
    if not isinstance(seq, int) or not isinstance(prev, str):
        return Finding(CHANGED, number, None, "it has no seq or prev")
    if seq == expected and not head.seq:
        return Finding(CHANGED, number, seq, f"the first record's prev is {prev}, not 64 zeros")
    if seq == expected:  # the record before was rewritten, and its hash computed anew
        return Finding(
            CHANGED, head.line, head.seq, f"its hash is not the one line {number} links to"
        )
    if seq < expected:
        return Finding(REORDERED, number, seq, f"it comes after {head}")
    moved_to = next((n for n, line in rest if _seq_of(line) == expected), None)
    if moved_to is not None:
        return Finding(
            REORDERED, number, seq, f"record seq {expected} belongs here; it is on line {moved_to}"
        )
    gone = "" if seq == expected + 1 else f" (and every record up to seq {seq - 1})"
    return Finding(REMOVED, number, expected, f"this line holds record seq {seq}{gone}")


def _seq_of(line: bytes) -> int | None:
    record = _parse(line)
    return record.get("seq") if record is not None and "hash" in record else None
