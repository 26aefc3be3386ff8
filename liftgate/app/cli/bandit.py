"""`liftgate simulate bandit` (regret on the synthetic world) and `liftgate bandit update /
status` (the served bandits' learning).

Mounted on the main app by :func:`register`: a ``simulate`` sub-app holding ``bandit``, and
a ``bandit`` sub-app holding ``update`` and ``status``.
Importing this module is cheap (typer and the standard library); NumPy, the world and
matplotlib are imported when the command runs. Output conventions and error translation are
`liftgate.app.cli.common`'s: a table on stdout, or with ``--json`` exactly one JSON document;
bad input exits 2 with a message naming the option.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from liftgate.app.cli.common import ConfigDirOption, JsonOption, emit, failures, say

DEFAULT_POLICIES = "thompson,ucb,egreedy,linucb,lints,gaussian_ts,random"


def register(app: typer.Typer) -> None:
    """Mount ``simulate bandit`` and ``bandit update|status`` on ``app``."""
    simulate_app = typer.Typer(no_args_is_help=True, help="Simulations on the synthetic world.")
    simulate_app.command("bandit")(bandit_command)
    app.add_typer(simulate_app, name="simulate")
    served_app = typer.Typer(no_args_is_help=True, help="Served bandits: learn and inspect.")
    served_app.command("update")(update_command)
    served_app.command("status")(status_command)
    app.add_typer(served_app, name="bandit")


def parse_policies(text: str) -> list[str]:
    """``a,b,c`` → names, checked against the known policies (``--policies`` in errors)."""
    from experiments.bandits.policies import POLICY_CLASSES

    names = [p.strip() for p in text.split(",") if p.strip()]
    if not names:
        raise ValueError(
            f"--policies: expected a comma-separated list of {', '.join(POLICY_CLASSES)}"
        )
    unknown = [p for p in names if p not in POLICY_CLASSES]
    if unknown:
        raise ValueError(
            f"--policies: unknown {', '.join(repr(u) for u in unknown)}; "
            f"expected some of {', '.join(POLICY_CLASSES)}"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"--policies: a policy is listed twice in {text!r}")
    return names


def plot_regret(result: dict[str, Any], path: Path) -> None:
    """A PNG of the cumulative regret curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, summary in result["policies"].items():
        ax.plot(result["curve_rounds"], summary["curve"], label=name)
    ax.set_xlabel("round")
    ax.set_ylabel(f"cumulative regret ({result['reward']})")
    ax.set_title(
        f"Bandit regret on the synthetic world (seed {result['seed']}, "
        f"delay {result['delay_rounds']:g}, batch {result['batch']})"
    )
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def render_table(result: dict[str, Any]) -> None:
    rows = sorted(result["policies"].items(), key=lambda item: item[1]["regret"])
    typer.echo(
        f"{result['rounds']:,} rounds, seed {result['seed']}, reward {result['reward']}, "
        f"delay {result['delay_rounds']:g} rounds, batch {result['batch']} "
        f"(oracle mean reward {result['oracle_mean_reward']:.4f})"
    )
    typer.echo(f"{'policy':<12} {'regret':>12} {'mean reward':>12}")
    for name, summary in rows:
        typer.echo(f"{name:<12} {summary['regret']:>12,.1f} {summary['mean_reward']:>12.4f}")


def bandit_command(
    policies: Annotated[
        str, typer.Option("--policies", help="Comma-separated policies.")
    ] = DEFAULT_POLICIES,
    rounds: Annotated[int, typer.Option("--rounds", help="Decisions per policy.")] = 20_000,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    customers: Annotated[int, typer.Option("--customers", help="World population.")] = 5_000,
    reward: Annotated[str, typer.Option("--reward", help="conversion | profit")] = "conversion",
    delay_rounds: Annotated[
        float, typer.Option("--delay-rounds", help="Median outcome delay, in rounds.")
    ] = 0.0,
    batch: Annotated[int, typer.Option("--batch", help="Rounds between policy updates.")] = 100,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write a PNG of the regret curves.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Cumulative regret of bandit policies against the world's oracle, on the same arrivals."""
    with failures():
        names = parse_policies(policies)
        if rounds < 1:
            raise ValueError(f"--rounds: must be ≥ 1; got {rounds}")
        if customers < 1:
            raise ValueError(f"--customers: must be ≥ 1; got {customers}")
        if batch < 1:
            raise ValueError(f"--batch: must be ≥ 1; got {batch}")
        if delay_rounds < 0:
            raise ValueError(f"--delay-rounds: must be ≥ 0; got {delay_rounds}")
        if reward not in ("conversion", "profit"):
            raise ValueError(f"--reward: expected conversion or profit; got {reward!r}")
        if reward == "profit" and "thompson" in names:
            raise ValueError(
                "--policies: thompson (Beta–Bernoulli) needs --reward conversion; "
                "use gaussian_ts for profit"
            )
        if plot is not None and not plot.parent.exists():
            raise ValueError(f"--plot: directory {plot.parent} does not exist")
        from liftgate.sim.bandit_arena import simulate

        say(f"simulating {', '.join(names)} for {rounds:,} rounds …")
        result = simulate(
            names,
            rounds=rounds,
            seed=seed,
            n_customers=customers,
            reward=reward,
            delay_rounds=delay_rounds,
            batch=batch,
        )
    if plot is not None:
        plot_regret(result, plot)
        say(f"wrote {plot}")
    document = {
        "rounds": result["rounds"],
        "seed": result["seed"],
        "reward": result["reward"],
        "delay_rounds": result["delay_rounds"],
        "batch": result["batch"],
        "oracle_mean_reward": result["oracle_mean_reward"],
        "curve_rounds": result["curve_rounds"],
        "policies": result["policies"],
    }
    emit(document, as_json, lambda: render_table(result))


def update_command(
    name: Annotated[
        str | None, typer.Argument(help="A bandit experiment; default: every running one.")
    ] = None,
    config_dir_: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Learn the decisions whose attribution window has closed (the replicas do it too, every
    `bandit.update_every_s`); each decision is learned once."""
    from experiments.bandits.updater import running_bandits, update_bandit
    from liftgate.app.cli.common import load_checked_config
    from liftgate.core.home import Home

    with failures():
        config = load_checked_config(config_dir_)
        home = Home.from_env()
        names = [name] if name else running_bandits(home.root)
        results = [update_bandit(home, config, n) for n in names]

    def render() -> None:
        if not results:
            typer.echo("no running bandit experiment")
        for r in results:
            typer.echo(
                f"{r['experiment']}: learned {r['learned']:,} decisions up to {r['watermark']} "
                f"({r['n_updates']:,} in all)"
            )

    emit(results, as_json, render)


def status_command(name: str, config_dir_: ConfigDirOption = None, as_json: JsonOption = False):
    """Learned decisions, mean reward and served propensity per action; watermark, updates."""
    from experiments.bandits.spec import BanditSpec
    from experiments.bandits.store import BanditState, BanditStore
    from experiments.bandits.updater import bandit_experiment
    from liftgate.app.cli.common import load_checked_config
    from liftgate.core.contract import FeatureContract
    from liftgate.core.home import Home
    from serving.bandit_arm import bandit_status

    with failures():
        config = load_checked_config(config_dir_)
        home = Home.from_env()
        experiment = bandit_experiment(home.root, config, name)
        spec = BanditSpec(experiment, config.features, config.actions)
        store = BanditStore(home.root, name)
        state = store.read() or BanditState.initial(spec)
        default_customer, _ = FeatureContract(config.features).transform_row({})
        status = {**bandit_status(spec, state, default_customer), "state": str(store.path)}

    def render() -> None:
        typer.echo(
            f"{name}: {status['policy']}, reward {status['reward']}; "
            f"{status['n_updates']:,} decisions learned in {status['n_runs']} runs, "
            f"watermark {status['watermark'] or 'none yet'}"
        )
        if status["burn_in_left"]:
            typer.echo(f"  burn-in: uniform for {status['burn_in_left']:,} more learned decisions")
        typer.echo(f"  {'action':<16} {'learned':>9} {'mean reward':>12} {'propensity':>11}")
        for a in status["actions"]:
            mean = "-" if a["mean_reward"] is None else f"{a['mean_reward']:.4f}"
            p = "-" if a["propensity"] is None else f"{a['propensity']:.4f}"
            typer.echo(f"  {a['action']:<16} {a['learned']:>9,} {mean:>12} {p:>11}")

    emit(status, as_json, render)
