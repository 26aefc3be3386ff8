"""`liftgate config check`: validate every configuration file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from liftgate.app.cli.common import JsonOption, config_dir_option, session
from liftgate.app.cli.group import CommandGroup
from liftgate.app.cli.output import emit, say
from liftgate.core.errors import BAD_INPUT

app = CommandGroup(help="Validate the configuration.")


@app.command("check")
def check(
    ctx: typer.Context,
    _config_dir: Annotated[Path | None, config_dir_option("--dir", "--config-dir")] = None,
    as_json: JsonOption = False,
) -> None:
    """Validate every configuration file (journeys too); errors name the file, the key and what
    was expected.

    Exits 2 when something is wrong, with every problem listed (`--json`: in `errors`).

    **Examples:**

    * `liftgate config check`
    * `liftgate config check --dir configs --json`
    """
    from configs.loader import ConfigError

    cli = session(ctx)
    try:
        config = cli.config
    except ConfigError as exc:
        problems = exc.problems
        message = "configuration error:\n" + "\n".join(f"  {p}" for p in problems)
        document = {
            "ok": False,
            "directory": str(cli.config_directory),
            "errors": problems,
            "error": message,
            "exit_code": BAD_INPUT,
        }
        emit(document, as_json, lambda: say(message))
        raise typer.Exit(BAD_INPUT) from None
    summary = {
        "ok": True,
        "directory": str(config.directory),
        "features": len(config.features.features),
        "actions": [a.id for a in config.actions.actions],
        "model": config.models.scorer.name,
        "journeys": sorted(config.journeys),
    }
    emit(
        summary,
        as_json,
        lambda: typer.echo(
            f"ok: {config.directory} — {summary['features']} features, "
            f"{len(summary['actions'])} actions, model {summary['model']}, "
            f"journeys: {', '.join(summary['journeys']) or 'none'}"
        ),
    )
