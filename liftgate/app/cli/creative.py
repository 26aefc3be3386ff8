"""`liftgate creative …`: creatives and their review (README: Creatives).

A creative is checked by the safety filter of actions.yaml ``creatives`` when it is added,
and waits, pending, for a person to approve or reject it; only an approved creative is
sent. Adding and reviewing are audit-logged with the OS user.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from liftgate.app.cli.common import ConfigDirOption, JsonOption, session
from liftgate.app.cli.group import CommandGroup
from liftgate.app.cli.output import emit, print_table, say, table_of

if TYPE_CHECKING:
    from liftgate.governance.creatives import Creative, CreativeStore

app = CommandGroup(help="Creatives (the text an action sends): add, review, show.")

IdArgument = Annotated[str, typer.Argument(help="The creative's id (`liftgate creative add`).")]
#: How much of a creative's text a listing shows.
PREVIEW = 60


def _store(ctx: typer.Context) -> CreativeStore:
    from liftgate.governance.creatives import CreativeStore, filter_for

    config = session(ctx).config
    rules = config.actions.creatives
    return CreativeStore(
        session(ctx).home.creatives, filter_for(rules, str(config.directory / "actions.yaml"))
    )


def _print_findings(creative: Creative) -> None:
    for finding in creative.findings:
        typer.echo(f"  {finding.severity}: {finding.rule}: {finding.detail}")


def _print_creative(creative: Creative) -> None:
    typer.echo(f"creative {creative.creative_id} for {creative.action}: {creative.status}")
    typer.echo(f"  text: {creative.text}")
    typer.echo(f"  added by {creative.created_by} at {creative.created_at}")
    if creative.reviewed_by:
        override = " (override of blocking findings)" if creative.overridden else ""
        reason = f": {creative.reason}" if creative.reason else ""
        typer.echo(
            f"  {creative.status} by {creative.reviewed_by} at {creative.reviewed_at}"
            f"{override}{reason}"
        )
    if creative.findings:
        typer.echo("findings of the safety filter:")
        _print_findings(creative)
    else:
        typer.echo("the safety filter found nothing")


@app.command("add")
def add(
    ctx: typer.Context,
    action: Annotated[str, typer.Option("--action", help="The action id (actions.yaml).")],
    text: Annotated[str | None, typer.Option("--text", help="The creative's text.")] = None,
    from_file: Annotated[
        Path | None, typer.Option("--from", help="A file holding the creative's text.")
    ] = None,
    _config_dir: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register a creative for an action; it stays pending until reviewed.

    The safety filter runs now and its findings are kept: a `block` finding (blocklist,
    length, an unresolved placeholder) means approving it needs `--override`; a `warn`
    (a claim such as "guaranteed") is for the reviewer to judge.

    **Examples:**

    * `liftgate creative add --action email_10 --text "Your 10% code is inside"`
    * `liftgate creative add --action push_reminder --from subject.txt --json`
    """
    from liftgate.core import audit
    from liftgate.core.errors import InputError

    if (text is None) == (from_file is None):
        raise InputError("expected the text in --text or in a file --from FILE (one of them)")
    if from_file is not None:
        if not from_file.is_file():
            raise InputError(f"{from_file}: file not found", parameter="from_file")
        text = from_file.read_text().rstrip("\n")
    config = session(ctx).config
    channels = {a.id: a.channel for a in config.actions.actions}
    if action not in channels:
        raise InputError(
            f"no action {action!r} in {config.directory / 'actions.yaml'} (actions: "
            f"{', '.join(channels)})",
            parameter="action",
        )
    if channels[action] == "none":
        raise InputError(f"{action} contacts no one (channel none): it takes no creative")
    with _store(ctx) as store:
        creative = store.add(action, text, who=audit.current_user())
    audit.append(
        session(ctx).home.audit_log,
        "creative_added",
        creative_id=creative.creative_id,
        action_id=action,
        findings=[f"{f.severity}:{f.rule}" for f in creative.findings],
    )
    if creative.blocked:
        say(
            f"warning: creative {creative.creative_id} has blocking findings: approving it "
            "needs --override"
        )
    emit(creative.to_json(), as_json, lambda: _print_creative(creative))


def _print_pending(pending: list[Creative]) -> None:
    if not pending:
        typer.echo("no creative is waiting for a review")
        return
    rows = table_of("creative id", "action", "added", "by", "text", "findings")
    for c in pending:
        text = c.text if len(c.text) <= PREVIEW else c.text[: PREVIEW - 1] + "…"
        findings = "; ".join(f"{f.severity}: {f.detail}" for f in c.findings) or "-"
        rows.add_row(c.creative_id, c.action, c.created_at, c.created_by, text, findings)
    print_table(rows)


@app.command("review")
def review(
    ctx: typer.Context,
    creative_id: Annotated[
        str | None,
        typer.Argument(help="The creative to decide on; without it, the pending ones are listed."),
    ] = None,
    approve: Annotated[
        bool | None,
        typer.Option("--approve/--reject", help="Approve the creative, or reject it."),
    ] = None,
    reason: Annotated[
        str, typer.Option("--reason", help="Why (needed to reject, and to override).")
    ] = "",
    override: Annotated[
        bool,
        typer.Option("--override", help="Approve despite blocking findings (with --reason)."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """List the creatives waiting for a review, or approve or reject one, once.

    A creative with a blocking finding is approved only with `--override` and a `--reason`,
    both recorded.

    **Examples:**

    * `liftgate creative review`
    * `liftgate creative review cr_3f9a0c1b2d4e --approve`
    * `liftgate creative review cr_3f9a0c1b2d4e --reject --reason "off brand" --json`
    """
    from liftgate.core import audit
    from liftgate.core.errors import InputError
    from liftgate.governance.creatives import CreativeStore

    home = session(ctx).home
    if creative_id is None:
        if approve is not None:
            raise InputError("name the creative to approve or reject (CREATIVE_ID)")
        with CreativeStore(home.creatives) as store:
            pending = store.pending()
        emit([c.to_json() for c in pending], as_json, lambda: _print_pending(pending))
        return
    if approve is None:
        raise InputError("expected --approve, or --reject with a --reason")
    who = audit.current_user()
    with CreativeStore(home.creatives) as store:
        creative = store.review(creative_id, approve, reason, who, override=override)
    audit.append(
        home.audit_log,
        "creative_approved" if approve else "creative_rejected",
        who=who,
        creative_id=creative.creative_id,
        action_id=creative.action,
        reason=creative.reason,
        override=creative.overridden,
    )
    emit(creative.to_json(), as_json, lambda: _print_creative(creative))


@app.command("show")
def show(ctx: typer.Context, creative_id: IdArgument, as_json: JsonOption = False) -> None:
    """A creative: its text, status, review and the safety filter's findings.

    **Examples:**

    * `liftgate creative show cr_3f9a0c1b2d4e`
    * `liftgate creative show cr_3f9a0c1b2d4e --json`
    """
    from liftgate.core.errors import InputError
    from liftgate.governance.creatives import CreativeStore

    with CreativeStore(session(ctx).home.creatives) as store:
        creative = store.get(creative_id)
    if creative is None:
        raise InputError(f"no creative {creative_id!r} (`liftgate creative review` lists them)")
    emit(creative.to_json(), as_json, lambda: _print_creative(creative))
