"""`liftgate audit tail`: the last records of the append-only audit log."""

from __future__ import annotations

from typing import Annotated

import typer

from liftgate.app.cli.common import JsonOption, session
from liftgate.app.cli.group import CommandGroup
from liftgate.app.cli.output import emit, print_table, table_of

app = CommandGroup(help="The append-only audit log.")


def print_audit(entries: list[dict]) -> None:
    if not entries:
        typer.echo("audit log is empty")
        return
    skip = {"ts", "who", "action"}
    rows = table_of("time", "who", "action", "details")
    for e in entries:
        details = " ".join(f"{k}={v}" for k, v in e.items() if k not in skip and v is not None)
        rows.add_row(e["ts"], e["who"], e["action"], details)
    print_table(rows)


@app.command("tail")
def tail(
    ctx: typer.Context,
    lines: Annotated[int, typer.Option("-n", "--lines", min=1, help="How many.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """The last audit records: verdicts, alias changes, rollout actions, approvals.

    **Examples:**

    * `liftgate audit tail`
    * `liftgate audit tail -n 50 --json`
    """
    from liftgate.core import audit

    entries = audit.read(session(ctx).home.audit_log)[-lines:]
    emit(entries, as_json, lambda: print_audit(entries))
