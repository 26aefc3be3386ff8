"""Console output of a benchmark: progress on stderr, values and aligned tables on stdout."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def say(message: str) -> None:
    """A progress line on stderr (stdout stays for the report, or the JSON document)."""
    print(message, file=sys.stderr, flush=True)


def fmt(value: object, digits: int = 2) -> str:
    """A table cell: floats with `digits` decimals, None as a dash."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def print_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], first_left: bool = False
) -> None:
    """Columns as wide as their widest cell, right-aligned (the first left-aligned if
    `first_left`), a rule under the header."""
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if first_left and i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    head = line(header)
    print(head)
    print("-" * len(head))
    for row in rows:
        print(line(row))
