"""Reading a consent file (CSV or Parquet) for `liftgate consent import`, checked whole.

The columns are `customer_id`, `channel` (email, push, sms or web), `granted` (true or
false; also 1/0, yes/no), `ts` (ISO 8601, such as ``2026-03-01T09:30:00Z``; without an
offset it is UTC) and, optionally, `source` (by default the file's name). Other columns are
ignored. Every row is checked before anything is applied: a file with a bad cell changes
nothing, and the error names the file, each bad row (counted from 1 after the header), its
column and what was expected.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as directory:
...     path = Path(directory) / "optins.csv"
...     _ = path.write_text("customer_id,channel,granted,ts\\nc1,email,yes,2026-03-01T09:30Z\\n")
...     [row] = read_consent_file(path).rows
>>> row.customer_id, row.channel, row.granted, row.ts.isoformat(), row.source
('c1', 'email', True, '2026-03-01T09:30:00+00:00', 'optins.csv')
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from liftgate.core.clock import utc_now
from liftgate.core.errors import InputError
from liftgate.core.tables import read_table
from liftgate.governance.consent import ConsentRow, check, check_channel

REQUIRED: Final = ("customer_id", "channel", "granted", "ts")
SOURCE: Final = "source"
#: How many bad cells an error lists (then how many more there are).
SHOWN_PROBLEMS: Final = 20
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}


@dataclass(frozen=True)
class ConsentFile:
    """A consent file, checked: its rows and the SHA-256 of its bytes (for the audit)."""

    path: Path
    sha256: str
    rows: list[ConsentRow]


def _granted(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, str | int) else None
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ValueError(f"expected true or false (or 1/0, yes/no); got {value!r}")


def _ts(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f"expected an ISO 8601 time such as 2026-03-01T09:30:00Z; got {value!r}")


def _text(value: Any) -> str:
    if isinstance(value, str) and value.strip():
        return value.strip()
    raise ValueError(f"expected text; got {value!r}")


def _channel(value: Any) -> str:
    try:
        return check_channel(_text(value))
    except InputError as exc:
        raise ValueError(exc.message) from None


def _source(value: Any) -> str | None:
    """The row's source, or None for a blank cell (the file's name stands in)."""
    return None if value is None or value == "" else _text(value)


_PARSERS = {
    "customer_id": _text,
    "channel": _channel,
    "granted": _granted,
    "ts": _ts,
    SOURCE: _source,
}


def read_consent_file(path: Path, now: datetime | None = None) -> ConsentFile:
    """The rows of the file at `path`, each checked as the store checks a change at `now`
    (default: the current time); an InputError listing the bad cells if any is bad."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: expected a CSV or Parquet file; found a directory")
    expected = "the consent file format: customer_id, channel, granted, ts[, source]"
    table = read_table(
        path, dict.fromkeys(REQUIRED, expected), [SOURCE], string_columns=[*REQUIRED, SOURCE]
    )
    now = now or utc_now()
    columns = {name: table.column(name).to_pylist() for name in table.column_names}
    sources = columns.get(SOURCE) or [None] * table.num_rows
    rows, problems = [], []
    for i in range(table.num_rows):
        values, bad = {}, False
        for column, parse in _PARSERS.items():
            try:
                values[column] = parse(sources[i] if column == SOURCE else columns[column][i])
            except ValueError as exc:
                problems.append(f"row {i + 1}, column {column!r}: {exc}")
                bad = True
        if bad:
            continue
        values[SOURCE] = values[SOURCE] or path.name
        try:
            rows.append(check(ConsentRow(**values), now))
        except InputError as exc:
            problems.append(f"row {i + 1}, column {exc.parameter!r}: {exc.message}")
    if problems:
        shown = problems[:SHOWN_PROBLEMS]
        if len(problems) > SHOWN_PROBLEMS:
            shown.append(f"… and {len(problems) - SHOWN_PROBLEMS:,} more")
        listed = "\n".join(f"  {problem}" for problem in shown)
        raise InputError(f"{path}: {len(problems):,} bad cell(s), nothing imported:\n{listed}")
    return ConsentFile(path, hashlib.sha256(path.read_bytes()).hexdigest(), rows)
