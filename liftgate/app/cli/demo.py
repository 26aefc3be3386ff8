"""`liftgate demo`: the whole platform end to end on a simulated world, or a rollout scenario."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from liftgate.app.cli.common import JsonOption, session
from liftgate.app.cli.group import CommandGroup
from liftgate.app.cli.output import emit, say

# The scenarios of liftgate.app.scenarios, which is slow to import (a test keeps them equal),
# and the journey demo's.
RolloutScenario = Literal["bad-challenger", "good-challenger", "drift"]
Scenario = Literal["bad-challenger", "good-challenger", "drift", "cart-abandonment"]
JOURNEY_SCENARIO = "cart-abandonment"

app = CommandGroup()


@app.command("demo")
def demo(
    ctx: typer.Context,
    rows: Annotated[int, typer.Option("--rows", min=1_000, help="Logged decisions.")] = 60_000,
    customers: Annotated[
        int, typer.Option("--customers", min=10, help="Customers served.")
    ] = 3_000,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    port: Annotated[
        int | None, typer.Option("--port", min=1, max=65535, help="Default: serving.yaml.")
    ] = None,
    scenario: Annotated[
        Scenario | None,
        typer.Option(
            "--scenario",
            help="A challenger's canary rollout, watched by the guard, or the cart-abandonment "
            "journey, instead.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """World → train → register → serve → simulated traffic and outcomes → summary → stop.

    With `--scenario`, a challenger's canary rollout and what the guard does about it: a bad
    challenger is rolled back, a good one promoted step by step, drift holds the rollout;
    cart-abandonment runs the journey of configs/journeys/ with a SIGKILL of its worker.

    **Examples:**

    * `liftgate demo`
    * `liftgate demo --scenario bad-challenger --json`
    * `liftgate demo --scenario cart-abandonment --json`
    """
    home = session(ctx).home
    if scenario == JOURNEY_SCENARIO:
        from liftgate.app.journey_demo import run_cart_abandonment

        summary = run_cart_abandonment(home, seed=seed, progress=say)
    elif scenario is not None:
        from liftgate.app.scenarios import run_scenario

        summary = run_scenario(scenario, home, seed=seed, port=port, progress=say)
    else:
        from liftgate.app.demo import run_demo

        summary = run_demo(
            home, rows=rows, customers_served=customers, seed=seed, port=port, progress=say
        )
    emit(summary, as_json, lambda: typer.echo(summary["report"]))
