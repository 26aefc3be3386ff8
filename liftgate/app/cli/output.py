"""How `liftgate` commands print: results on stdout (a text rendering, or with `--json` one
JSON document), messages on stderr, tables through `rich`.

Importing this module is cheap: `rich` is imported when a table is printed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from rich.table import Table


def say(message: str) -> None:
    """A message for the person at the terminal (progress, warnings): stderr."""
    typer.echo(message, err=True)


def emit(document: object, as_json: bool, render: Callable[[], None]) -> None:
    """The command's result: `document` as JSON, or `render()`'s text."""
    if as_json:
        sys.stdout.write(json.dumps(document, default=str) + "\n")
    else:
        render()


#: `start(total, done=0)` begins the bar and returns `advance(n)`.
StartBar = Callable[..., Callable[[int], None]]


@contextmanager
def progress_bar(show: bool, what: str = "customers") -> Iterator[StartBar]:
    """A progress bar of `what` on stderr, drawn while the block runs (or nothing when not
    `show`, e.g. under `--json`): yields `start(total, done=0)`, which returns `advance(n)`."""
    if not show:
        yield lambda total, done=0: lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    bar = Progress(
        "{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )

    def start(total: int, done: int = 0) -> Callable[[int], None]:
        task = bar.add_task(what, total=total, completed=done)
        return lambda n: bar.advance(task, n)

    with bar:
        yield start


def table_of(*columns: str, numeric: Iterable[str] = ()) -> Table:
    """An empty table with these column headers; the `numeric` ones are right-aligned.

    Plain, to read and to grep: a rule under the header, no frame, no padding at the edges.
    """
    from rich import box
    from rich.table import Table

    right = set(numeric)
    new = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, header_style="bold")
    for column in columns:
        new.add_column(column, justify="right" if column in right else "left")
    return new


def print_table(rows: Table, indent: int = 0) -> None:
    """Print a table on stdout, `indent` spaces in. On a terminal it fits the terminal's
    width; into a file or a pipe no cell is wrapped, however wide the table."""
    from rich.console import Console
    from rich.measure import Measurement
    from rich.padding import Padding

    # No markup, emoji or highlighting: cells are data ("[0.1, 0.2]", "a:b:ratio").
    settings = {"markup": False, "emoji": False, "highlight": False}
    console = Console(**settings)
    renderable = Padding(rows, (0, 0, 0, indent)) if indent else rows
    if not console.is_terminal:
        unbounded = console.options.update_width(1_000_000)
        width = Measurement.get(console, unbounded, renderable).maximum
        console = Console(width=max(width, console.width), **settings)
    console.print(renderable)
