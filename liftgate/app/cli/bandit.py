"""`liftgate bandit update` and `liftgate bandit status`: the served bandits' learning."""

from __future__ import annotations

from typing import Annotated

import typer

from liftgate.app.cli.common import ConfigDirOption, JsonOption, session
from liftgate.app.cli.group import CommandGroup
from liftgate.app.cli.output import emit, print_table, table_of

app = CommandGroup(help="Served bandits: learn and inspect.")


@app.command("update")
def update(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(help="A bandit experiment; default: every running one.")
    ] = None,
    _config_dir: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Learn the decisions whose attribution window has closed (the replicas do it too, every
    `bandit.update_every_s`); each decision is learned once.

    **Examples:**

    * `liftgate bandit update`
    * `liftgate bandit update bandit-offers --json`
    """
    from experiments.bandits.updater import running_bandits, update_bandit

    cli = session(ctx)
    names = [name] if name else running_bandits(cli.home)
    results = [update_bandit(cli.home, cli.config, n) for n in names]

    def render() -> None:
        if not results:
            typer.echo("no running bandit experiment")
        for r in results:
            typer.echo(
                f"{r['experiment']}: learned {r['learned']:,} decisions up to {r['watermark']} "
                f"({r['n_updates']:,} in all)"
            )

    emit(results, as_json, render)


@app.command("status")
def status(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A bandit experiment (configs/experiments/).")],
    _config_dir: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Learned decisions, mean reward and served propensity per action; watermark, updates.

    **Examples:**

    * `liftgate bandit status bandit-offers`
    * `liftgate bandit status bandit-offers --json`
    """
    from experiments.bandits.spec import BanditSpec
    from experiments.bandits.store import BanditState, BanditStore
    from experiments.bandits.updater import bandit_experiment
    from liftgate.core.contract import FeatureContract
    from serving.bandit_arm import bandit_status

    cli = session(ctx)
    config, home = cli.config, cli.home
    experiment = bandit_experiment(home, config, name)
    spec = BanditSpec(experiment, config.features, config.actions)
    store = BanditStore(home, name)
    state = store.read() or BanditState.initial(spec)
    default_customer, _ = FeatureContract(config.features).transform_row({})
    result = {**bandit_status(spec, state, default_customer), "state": str(store.path)}

    def render() -> None:
        typer.echo(
            f"{name}: {result['policy']}, reward {result['reward']}; "
            f"{result['n_updates']:,} decisions learned in {result['n_runs']} runs, "
            f"watermark {result['watermark'] or 'none yet'}"
        )
        if result["burn_in_left"]:
            typer.echo(f"  burn-in: uniform for {result['burn_in_left']:,} more learned decisions")
        if result["n_skipped"]:
            typer.echo(f"  skipped: {result['n_skipped']:,} decisions whose reward was not finite")
        actions = table_of(
            "action",
            "learned",
            "mean reward",
            "propensity",
            numeric=["learned", "mean reward", "propensity"],
        )
        for a in result["actions"]:
            mean = "-" if a["mean_reward"] is None else f"{a['mean_reward']:.4f}"
            p = "-" if a["propensity"] is None else f"{a['propensity']:.4f}"
            actions.add_row(a["action"], f"{a['learned']:,}", mean, p)
        print_table(actions, indent=2)

    emit(result, as_json, render)
