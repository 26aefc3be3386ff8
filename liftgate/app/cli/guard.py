"""`liftgate guard run`: the guard in the foreground, or one interval of it."""

from __future__ import annotations

from typing import Annotated

import typer

from liftgate.app.cli.common import ConfigDirOption, JsonOption
from liftgate.app.cli.group import CommandGroup
from liftgate.app.cli.output import emit
from liftgate.app.cli.rollout import controller

app = CommandGroup(help="The guard: canary analysis and rollback.")


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


@app.command("run")
def run(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="One interval, then exit (cron).")] = False,
    _config_dir: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Analyse every active rollout and act on the verdicts, every interval until interrupted.

    `liftgate serve` runs the same loop in the background; `--once` runs one interval, for
    cron.

    **Examples:**

    * `liftgate guard run`
    * `liftgate guard run --once --json`
    """
    import threading

    from liftgate.guard.loop import guard_loop

    rollouts = controller(ctx)
    if once:
        results = rollouts.guard_once()
        emit(results, as_json, lambda: typer.echo(format_results(results)))
        return
    stop = threading.Event()
    try:
        guard_loop(rollouts, stop, lambda r: typer.echo(format_results(r), err=True))
    except KeyboardInterrupt:
        stop.set()
