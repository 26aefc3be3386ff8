"""`liftgate rollout …`: canary rollouts of a challenger model, in the style of Argo Rollouts.

The guard (`liftgate guard run`, or the loop in `liftgate serve`) analyses every active
rollout and acts on its verdicts; these commands are the on-call's hands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from liftgate.app.cli.common import ConfigDirOption, JsonOption, session
from liftgate.app.cli.group import CommandGroup
from liftgate.app.cli.output import emit

if TYPE_CHECKING:
    from liftgate.guard.controller import RolloutController
    from liftgate.guard.state import RolloutRecord

app = CommandGroup(help="Canary rollouts of a challenger model, watched by the guard.")

NameArgument = Annotated[str, typer.Argument(help="The rollout's name (configs/rollouts/).")]
WhoOption = Annotated[str | None, typer.Option("--by", help="Who (default: the OS user).")]


def controller(ctx: typer.Context) -> RolloutController:
    from liftgate.guard.controller import RolloutController

    cli = session(ctx)
    return RolloutController(cli.config, cli.home.ensure())


def format_record(record: RolloutRecord, aliases: dict[str, str] | None = None) -> str:
    lines = [
        f"rollout {record.name}: {record.status}"
        f" — {record.model} v{record.challenger} vs champion v{record.champion}",
        f"  step {record.step + 1}, canary weight {record.weight:.0%}"
        + ("  (dry run)" if record.dry_run else ""),
    ]
    pending = record.pending
    if pending:
        moves = ", ".join(
            f"{alias} → {'removed' if version is None else 'v' + version}"
            for alias, version in pending.aliases.items()
        )
        lines.append(
            f"  pending {pending.action} since {pending.at} by {pending.who}: canary weight "
            f"→ {pending.weight:.0%}" + (f", {moves}" if moves else "") + f" ({pending.why})"
        )
    verdict = record.last_verdict
    if verdict:
        lines.append(f"  last verdict {verdict['kind']} at {verdict['at']}: {verdict['summary']}")
        units = ", ".join(f"{k} {v:,}" for k, v in sorted(verdict.get("units", {}).items()))
        if units:
            lines.append(f"  units: {units}")
    if aliases is not None:
        listed = ", ".join(f"{a} v{v}" for a, v in sorted(aliases.items()))
        lines.append(f"  registry: {listed}")
    for event in record.history[-5:]:
        extra = event.get("why") or event.get("alert") or event.get("error") or ""
        lines.append(f"  {event['ts']}  {event['event']}  {extra}")
    return "\n".join(lines)


def emit_record(record: RolloutRecord, as_json: bool) -> None:
    """The record after a command: its JSON, or the text `rollout status` prints."""
    emit(record.to_json(), as_json, lambda: typer.echo(format_record(record)))


def _examples(action: str) -> str:
    return (
        "**Examples:**\n\n"
        f"* `liftgate rollout {action} scorer-canary`\n"
        f"* `liftgate rollout {action} scorer-canary --by alice --json`"
    )


def _transition(action: str, summary: str) -> None:
    """Add ``rollout ACTION NAME``: the controller's method of that name, then the record."""

    def run(
        ctx: typer.Context,
        rollout: NameArgument,
        who: WhoOption = None,
        _config_dir: ConfigDirOption = None,
        as_json: JsonOption = False,
    ) -> None:
        record = getattr(controller(ctx), action)(rollout, who=who)
        emit_record(record, as_json)

    app.command(action, help=f"{summary}\n\n{_examples(action)}")(run)


_transition("start", "Start at the first step (after the OPE check, if required).")
_transition("pause", "Hold at the current step; the guard stops acting.")
_transition("resume", "Continue a paused rollout (the step's clock restarts).")
_transition("abort", "Stop now: canary weight 0, challenger alias removed.")


@app.command("promote")
def promote(
    ctx: typer.Context,
    rollout: NameArgument,
    full: Annotated[bool, typer.Option("--full", help="Straight to champion.")] = False,
    who: WhoOption = None,
    _config_dir: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Advance to the next step now, skipping analysis (or promote fully).

    **Examples:**

    * `liftgate rollout promote scorer-canary`
    * `liftgate rollout promote scorer-canary --full --by alice`
    """
    record = controller(ctx).promote(rollout, who=who, full=full)
    emit_record(record, as_json)


@app.command("status")
def status(
    ctx: typer.Context,
    rollout: NameArgument,
    _config_dir: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Status, step, weight, the last verdict with its evidence, aliases, recent events.

    **Examples:**

    * `liftgate rollout status scorer-canary`
    * `liftgate rollout status scorer-canary --json`
    """
    shown = controller(ctx).status(rollout)
    emit(shown.to_json(), as_json, lambda: typer.echo(format_record(shown.record, shown.aliases)))
