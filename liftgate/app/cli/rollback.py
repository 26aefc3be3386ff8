"""`liftgate rollback`: undo a rollout in one command."""

from __future__ import annotations

import typer

from liftgate.app.cli.common import ConfigDirOption, JsonOption
from liftgate.app.cli.group import CommandGroup
from liftgate.app.cli.rollout import NameArgument, WhoOption, controller, emit_record

app = CommandGroup()


@app.command("rollback")
def rollback(
    ctx: typer.Context,
    rollout: NameArgument,
    who: WhoOption = None,
    _config_dir: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Undo a rollout in one command: an active one is rolled back (weight 0, challenger
    alias removed); a promoted one gives the champion back to `previous`.

    **Examples:**

    * `liftgate rollback scorer-canary`
    * `liftgate rollback scorer-canary --by alice --json`
    """
    record = controller(ctx).rollback(rollout, who=who)
    emit_record(record, as_json)
