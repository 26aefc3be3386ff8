"""`liftgate replay`: recompute a logged decision and check it matches what was served."""

from __future__ import annotations

from typing import Annotated

import typer

from liftgate.app.cli.common import ConfigDirOption, JsonOption, session
from liftgate.app.cli.group import CommandGroup
from liftgate.app.cli.output import emit

app = CommandGroup()


@app.command("replay")
def replay(
    ctx: typer.Context,
    decision_id: Annotated[str, typer.Argument(help="The decision's id, as the API returned it.")],
    _config_dir: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Recompute a logged decision from its feature snapshot and model version.

    Exits 1 if a recomputed score differs from the served one by more than 1e-9.

    **Examples:**

    * `liftgate replay 5c0e9a7d1b3f48e2a6c4d8f0b2e1a9c7d3f56e01`
    * `liftgate replay 5c0e9a7d1b3f48e2a6c4d8f0b2e1a9c7d3f56e01 --json`
    """
    from serving.replay import replay as replay_decision

    cli = session(ctx)
    result = replay_decision(decision_id, cli.config, cli.home)

    def render() -> None:
        if result["fallback"]:
            typer.echo(f"{decision_id}: a fallback decision ({result['chosen']}); no model scores")
            return
        typer.echo(
            f"{decision_id}: {result['model']['name']} v{result['model']['version']}, "
            f"max |difference| {result['max_abs_diff']:.3g} -> "
            f"{'match' if result['match'] else 'MISMATCH'}; chosen {result['chosen']} "
            f"(replayed {result['chosen_replayed']})"
        )

    emit(result, as_json, render)
    if not result["match"]:
        raise typer.Exit(1)
