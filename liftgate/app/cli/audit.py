"""`liftgate audit tail | verify`: the last records of the audit log; its hash chain checked."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from liftgate.app.cli.common import JsonOption, session
from liftgate.app.cli.group import CommandGroup
from liftgate.app.cli.output import emit, print_table, say, table_of

if TYPE_CHECKING:
    from liftgate.core.audit import AuditVerdict

app = CommandGroup(help="The append-only, hash-chained audit log.")


def print_audit(entries: list[dict]) -> None:
    if not entries:
        typer.echo("audit log is empty")
        return
    skip = {"ts", "who", "action", "seq", "prev", "hash"}
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


def print_verdict(path: str, verdict: AuditVerdict) -> None:
    before = f" and {verdict.unchained} from before the chain" if verdict.unchained else ""
    typer.echo(
        f"{path}: intact; {verdict.head_seq} chained records checked{before}; "
        f"head seq {verdict.head_seq}, hash {verdict.head_hash}"
    )


@app.command("verify")
def verify(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Check the hash chain: exit 1 naming the first record changed, removed or reordered.

    A torn last line (a write cut short by a crash) is a warning, not a failure. Removing
    records from the end leaves a valid, shorter chain: compare the head hash printed with
    one kept elsewhere to notice that.

    **Examples:**

    * `liftgate audit verify`
    * `liftgate audit verify --json`
    """
    from liftgate.core import audit
    from liftgate.core.errors import CheckFailed

    path = session(ctx).home.audit_log
    verdict = audit.verify(path)
    for warning in verdict.warnings:
        say(f"warning: {path}: {warning}")
    if not verdict.ok:
        raise CheckFailed(
            f"{path}: {verdict.problem}; the chain holds up to record seq {verdict.head_seq}"
        )
    emit(verdict.to_dict(), as_json, lambda: print_verdict(str(path), verdict))
