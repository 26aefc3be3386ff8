"""`liftgate world generate`: a seeded synthetic marketing world on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from liftgate.app.cli.common import ConfigDirOption, JsonOption, session
from liftgate.app.cli.group import CommandGroup
from liftgate.app.cli.output import emit

# The world's choices (liftgate.sim.world, which is slow to import; a test keeps them equal).
Scenario = Literal["stationary", "covariate_drift", "concept_drift"]
LoggingPolicy = Literal["uniform", "epsilon_greedy"]

app = CommandGroup(help="The synthetic marketing world.")


@app.command("generate")
def generate(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="Output directory.")],
    rows: Annotated[int, typer.Option("--rows", min=1, help="Logged decisions.")] = 100_000,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    scenario: Annotated[
        Scenario, typer.Option("--scenario", help="What changes half-way through the log.")
    ] = "stationary",
    customers: Annotated[
        int | None, typer.Option("--customers", min=1, help="Population (default rows/5).")
    ] = None,
    policy: Annotated[
        LoggingPolicy, typer.Option("--policy", help="The logging policy.")
    ] = "uniform",
    epsilon: Annotated[
        float, typer.Option("--epsilon", min=0.0, max=1.0, help="Exploration of epsilon_greedy.")
    ] = 0.2,
    _config_dir: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write customers.parquet, logged.parquet, truth.parquet and consent.parquet of a
    seeded world (`liftgate consent import` takes the last).

    **Examples:**

    * `liftgate world generate --out data/w --rows 1000000 --seed 7`
    * `liftgate world generate --out data/drift --scenario concept_drift --json`
    """
    from liftgate.sim.world import World

    n_customers = customers or max(1_000, rows // 5)
    world = World(seed, n_customers, scenario, session(ctx).config.actions)
    summary = world.write(out, rows, policy, epsilon)
    emit(
        summary,
        as_json,
        lambda: typer.echo(
            f"wrote {summary['logged_rows']:,} logged decisions and {summary['customers']:,} "
            f"customers ({scenario}, seed {seed}, conversion {summary['conversion_rate']:.1%}) "
            f"to {out}"
        ),
    )
