"""`liftgate consent …`: the consent store (README: Consent).

Every change is audit-logged with the OS user; the audit log names the customer by their
pseudonym only (`liftgate.governance.pseudonyms`), since it can never be rewritten.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from liftgate.app.cli.common import JsonOption, session
from liftgate.app.cli.group import CommandGroup
from liftgate.app.cli.output import emit, print_table, table_of

if TYPE_CHECKING:
    from liftgate.governance.consent import ConsentStore

app = CommandGroup(help="Consent per customer and channel: import, grant, revoke, show.")

# The consent store's channels (liftgate.governance.consent.CHANNELS, which imports the
# configuration's schema: slow for `--help`; a test keeps them equal).
Channel = Literal["email", "push", "sms", "web"]

CustomerArgument = Annotated[str, typer.Argument(help="The customer's id.")]
ChannelOption = Annotated[Channel, typer.Option("--channel", help="The contact channel.")]
SourceOption = Annotated[
    str, typer.Option("--source", help="Where the change comes from (a form, a call, …).")
]


def _store(ctx: typer.Context) -> ConsentStore:
    from liftgate.governance.consent import ConsentStore

    return ConsentStore(session(ctx).home.consent)


def _change(ctx: typer.Context, customer_id: str, channel: str, granted: bool, source: str) -> dict:
    from liftgate.core.errors import CheckFailed
    from liftgate.governance.consent_changes import change_consent
    from liftgate.governance.pseudonyms import Pseudonyms

    home = session(ctx).home
    with _store(ctx) as store:
        pseudonyms = Pseudonyms.for_home(home)
        change = change_consent(
            store, home.audit_log, pseudonyms, customer_id, channel, granted, source=source
        )
    if not change.applied:
        stored = change.current
        raise CheckFailed(
            f"not applied: the consent store holds a later change for {customer_id!r} on "
            f"{channel} (ts {stored['ts']}, source {stored['source']})"
        )
    return {"customer_id": customer_id, **change.current}


def _print_change(change: dict) -> None:
    verb = "granted" if change["granted"] else "revoked"
    typer.echo(
        f"consent of {change['customer_id']} for {change['channel']} {verb} at {change['ts']} "
        f"(source {change['source']})"
    )


@app.command("grant")
def grant(
    ctx: typer.Context,
    customer_id: CustomerArgument,
    channel: ChannelOption,
    source: SourceOption = "cli",
    as_json: JsonOption = False,
) -> None:
    """Record that the customer consents to be contacted on the channel, as of now.

    The channel's actions are offered to them from the next decision on, on every replica.

    **Examples:**

    * `liftgate consent grant c0000042 --channel email`
    * `liftgate consent grant c0000042 --channel push --source app-settings --json`
    """
    change = _change(ctx, customer_id, channel, True, source)
    emit(change, as_json, lambda: _print_change(change))


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    customer_id: CustomerArgument,
    channel: ChannelOption,
    source: SourceOption = "cli",
    as_json: JsonOption = False,
) -> None:
    """Record that the customer withdrew consent for the channel, as of now.

    From the next decision on, no replica offers them the channel's actions, and no action
    on it is sent.

    **Examples:**

    * `liftgate consent revoke c0000042 --channel email`
    * `liftgate consent revoke c0000042 --channel push --source call-centre --json`
    """
    change = _change(ctx, customer_id, channel, False, source)
    emit(change, as_json, lambda: _print_change(change))


@app.command("import")
def import_file(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(help="CSV or Parquet: customer_id, channel, granted, ts[, source]."),
    ],
    as_json: JsonOption = False,
) -> None:
    """Import consent changes from a file; the latest `ts` wins per customer and channel.

    Every row is checked first: a bad cell imports nothing, and the error names the row,
    the column and what was expected. Changes older than the one stored are counted stale
    and ignored. `ts` is ISO 8601 (UTC without an offset); `source` defaults to the file's
    name; `granted` is true or false (1/0, yes/no).

    **Examples:**

    * `liftgate consent import optins.csv`
    * `liftgate consent import data/w/consent.parquet --json`
    """
    from liftgate.core import audit
    from liftgate.governance.consent_import import read_consent_file

    consent = read_consent_file(file)
    with _store(ctx) as store:
        summary = store.import_rows(consent.rows)
    document = {"file": str(file), "sha256": consent.sha256, **summary.to_json()}
    audit.append(session(ctx).home.audit_log, "consent_imported", **document)

    def render() -> None:
        typer.echo(
            f"imported {file}: {summary.rows:,} rows, {summary.applied:,} applied, "
            f"{summary.stale:,} stale (the store held a later change)"
        )
        for channel, counts in sorted(summary.by_channel.items()):
            typer.echo(f"  {channel}: {counts['granted']:,} granted, {counts['revoked']:,} revoked")

    emit(document, as_json, render)


@app.command("show")
def show(ctx: typer.Context, customer_id: CustomerArgument, as_json: JsonOption = False) -> None:
    """The customer's consent per channel now, and every change that led to it.

    **Examples:**

    * `liftgate consent show c0000042`
    * `liftgate consent show c0000042 --json`
    """
    from liftgate.governance.consent import ConsentStore

    with ConsentStore.reader(session(ctx).home.consent) as reader:
        current, history = reader.current(customer_id), reader.history(customer_id)
    granted = sorted(c["channel"] for c in current if c["granted"])
    document = {
        "customer_id": customer_id,
        "granted": granted,
        "current": current,
        "history": history,
    }

    def render() -> None:
        if not current:
            typer.echo(f"no consent recorded for {customer_id}: no channel is granted")
            return
        rows = table_of("channel", "granted", "since", "source", "recorded")
        for c in current:
            rows.add_row(c["channel"], _yes(c["granted"]), c["ts"], c["source"], c["updated_at"])
        print_table(rows)
        typer.echo(f"\nhistory of {customer_id}, oldest first:")
        rows = table_of("time", "channel", "granted", "source", "recorded")
        for h in history:
            rows.add_row(h["ts"], h["channel"], _yes(h["granted"]), h["source"], h["recorded_at"])
        print_table(rows)

    emit(document, as_json, render)


def _yes(granted: bool) -> str:
    return "yes" if granted else "no"
