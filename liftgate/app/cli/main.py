"""The `liftgate` command line: the app, assembled from one module per command group.

The app's callback starts the session the commands share (`liftgate.app.cli.common`);
`liftgate.app.cli.group` makes every command report its failures the same way.
"""

from __future__ import annotations

import typer

from liftgate.app.cli import (
    actions,
    analyze,
    audit,
    bandit,
    campaign,
    config,
    consent,
    creative,
    demo,
    drift,
    experiment,
    export,
    features,
    guard,
    journey,
    keys,
    ope,
    privacy,
    registry,
    replay,
    rollback,
    rollout,
    score,
    serve,
    simulate,
    train,
    uplift,
    world,
)
from liftgate.app.cli.common import Session
from liftgate.app.cli.group import CommandGroup

app = CommandGroup(
    help="""Model serving and experimentation for marketing decisions.

Exit codes: 0 success, 1 a failed check, 2 bad input or configuration. Every command that
reports something takes `--json`: one JSON document on stdout and nothing else there
(`{"error": ..., "exit_code": N}` when it fails); progress and messages go to stderr.
Run `liftgate COMMAND --help` for a command's options and examples."""
)


@app.callback()
def start_session(ctx: typer.Context) -> None:
    ctx.obj = Session()


# Commands of their own, in the order of the platform's life cycle, then the groups.
for commands in (train, score, serve, replay, demo, analyze, ope, rollback):
    app.add_typer(commands.app)
for name, group in {
    "world": world,
    "registry": registry,
    "config": config,
    "experiment": experiment,
    "features": features,
    "export": export,
    "simulate": simulate,
    "bandit": bandit,
    "uplift": uplift,
    "drift": drift,
    "rollout": rollout,
    "guard": guard,
    "audit": audit,
    "keys": keys,
    "consent": consent,
    "creative": creative,
    "privacy": privacy,
    "actions": actions,
    "campaign": campaign,
    "journey": journey,
}.items():
    app.add_typer(group.app, name=name)


if __name__ == "__main__":
    app()
