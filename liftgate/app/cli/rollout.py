"""On-call commands in the style of Argo Rollouts: `liftgate rollout …`, `liftgate rollback`,
`liftgate audit tail`, `liftgate guard run`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from liftgate.app.cli.common import ConfigDirOption, JsonOption, emit, failures, say

NameArgument = Annotated[str, typer.Argument(help="The rollout's name (configs/rollouts/).")]
WhoOption = Annotated[str | None, typer.Option("--by", help="Who (default: the OS user).")]


@contextmanager
def _controller(config_dir: Path | None) -> Iterator:
    from liftgate.app.cli.common import load_checked_config
    from liftgate.core.home import Home
    from liftgate.guard.controller import RolloutController, RolloutError

    with failures():
        try:
            yield RolloutController(load_checked_config(config_dir), Home.from_env().ensure())
        except RolloutError as exc:
            say(f"error: {exc}")
            raise typer.Exit(1) from None


def format_record(record: dict) -> str:
    lines = [
        f"rollout {record['name']}: {record['status']}"
        f" — {record['model']} v{record['challenger']} vs champion v{record['champion']}",
        f"  step {record['step'] + 1}, canary weight {record['weight']:.0%}"
        + ("  (dry run)" if record.get("dry_run") else ""),
    ]
    verdict = record.get("last_verdict")
    if verdict:
        lines.append(f"  last verdict {verdict['kind']} at {verdict['at']}: {verdict['summary']}")
        units = ", ".join(f"{k} {v:,}" for k, v in sorted(verdict.get("units", {}).items()))
        if units:
            lines.append(f"  units: {units}")
    if "aliases" in record:
        aliases = ", ".join(f"{a} v{v}" for a, v in sorted(record["aliases"].items()))
        lines.append(f"  registry: {aliases}")
    for event in record.get("history", [])[-5:]:
        extra = event.get("why") or event.get("alert") or event.get("error") or ""
        lines.append(f"  {event['ts']}  {event['event']}  {extra}")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    rollout_app = typer.Typer(
        no_args_is_help=True, help="Canary rollouts of a challenger model, watched by the guard."
    )
    app.add_typer(rollout_app, name="rollout")

    def command(name: str, method: str, help_text: str):
        @rollout_app.command(name, help=help_text)
        def run(
            rollout: NameArgument,
            who: WhoOption = None,
            config_dir: ConfigDirOption = None,
            as_json: JsonOption = False,
        ) -> None:
            with _controller(config_dir) as controller:
                record = getattr(controller, method)(rollout, who=who)
            emit(record, as_json, lambda: typer.echo(format_record(record)))

    command("start", "start", "Start at the first step (after the OPE check, if required).")
    command("pause", "pause", "Hold at the current step; the guard stops acting.")
    command("resume", "resume", "Continue a paused rollout (the step's clock restarts).")
    command("abort", "abort", "Stop now: canary weight 0, challenger alias removed.")

    @rollout_app.command("promote")
    def promote(
        rollout: NameArgument,
        full: Annotated[bool, typer.Option("--full", help="Straight to champion.")] = False,
        who: WhoOption = None,
        config_dir: ConfigDirOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Advance to the next step now, skipping analysis (or promote fully)."""
        with _controller(config_dir) as controller:
            record = controller.promote(rollout, who=who, full=full)
        emit(record, as_json, lambda: typer.echo(format_record(record)))

    @rollout_app.command("status")
    def status(
        rollout: NameArgument, config_dir: ConfigDirOption = None, as_json: JsonOption = False
    ) -> None:
        """Status, step, weight, the last verdict with its evidence, aliases, recent events."""
        with _controller(config_dir) as controller:
            record = controller.status(rollout)
        emit(record, as_json, lambda: typer.echo(format_record(record)))

    @app.command("rollback")
    def rollback(
        rollout: NameArgument,
        who: WhoOption = None,
        config_dir: ConfigDirOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Undo a rollout in one command: an active one is rolled back (weight 0, challenger
        alias removed); a promoted one gives the champion back to `previous`."""
        with _controller(config_dir) as controller:
            record = controller.rollback(rollout, who=who)
        emit(record, as_json, lambda: typer.echo(format_record(record)))

    guard_app = typer.Typer(no_args_is_help=True, help="The guard: canary analysis and rollback.")
    app.add_typer(guard_app, name="guard")

    @guard_app.command("run")
    def guard_run(
        once: Annotated[
            bool, typer.Option("--once", help="One interval, then exit (cron).")
        ] = False,
        config_dir: ConfigDirOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Analyse every active rollout and act on the verdicts; every interval unless --once.
        (`liftgate serve` runs the same loop in the background.)"""
        import threading

        from liftgate.guard.loop import guard_loop

        with _controller(config_dir) as controller:
            if once:
                results = controller.guard_once()
                emit(results, as_json, lambda: typer.echo(format_results(results)))
                return
            stop = threading.Event()
            try:
                guard_loop(controller, stop, lambda r: typer.echo(format_results(r), err=True))
            except KeyboardInterrupt:
                stop.set()

    audit_app = typer.Typer(no_args_is_help=True, help="The append-only audit log.")
    app.add_typer(audit_app, name="audit")

    @audit_app.command("tail")
    def audit_tail(
        lines: Annotated[int, typer.Option("-n", "--lines", min=1, help="How many.")] = 20,
        as_json: JsonOption = False,
    ) -> None:
        """The last audit records: verdicts, alias changes, rollout actions, approvals."""
        from liftgate.core import audit
        from liftgate.core.home import Home

        entries = audit.read(Home.from_env().audit_log)[-lines:]
        emit(entries, as_json, lambda: typer.echo(format_audit(entries)))


def format_results(results: list[dict]) -> str:
    if not results:
        return "guard: no active rollout"
    lines = []
    for result in results:
        if "error" in result:
            lines.append(f"{result['rollout']}: error: {result['error']}")
            continue
        verdict = result.get("verdict") or {}
        action = result.get("action") or {}
        lines.append(
            f"{result['rollout']}: {verdict.get('kind', result.get('status'))}"
            f" — {verdict.get('summary', '')}"
            + (f" → {action.get('action') or action.get('would')}" if action else "")
        )
    return "\n".join(lines)


def format_audit(entries: list[dict]) -> str:
    skip = {"ts", "who", "action"}
    return (
        "\n".join(
            f"{e['ts']}  {e['who']:<10} {e['action']:<22} "
            + " ".join(f"{k}={v}" for k, v in e.items() if k not in skip and v is not None)
            for e in entries
        )
        or "audit log is empty"
    )
