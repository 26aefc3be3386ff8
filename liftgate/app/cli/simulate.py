"""`liftgate simulate bandit`: the regret of bandit policies on the synthetic world.

Importing this module is cheap; NumPy, the world and matplotlib are imported when the
command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from liftgate.app.cli.common import JsonOption
from liftgate.app.cli.group import CommandGroup
from liftgate.app.cli.output import emit, print_table, say, table_of
from liftgate.core.errors import InputError
from liftgate.core.vocabulary import (
    CONVERTED,
    EPSILON_GREEDY,
    GAUSSIAN_TS,
    LINTS,
    LINUCB,
    OLD_BANDIT_POLICIES,
    OLD_REWARD_KINDS,
    REWARD_KINDS,
    THOMPSON,
    UCB,
    UNIFORM_RANDOM,
    current_spelling,
)

DEFAULT_POLICIES = ",".join(
    (THOMPSON, UCB, EPSILON_GREEDY, LINUCB, LINTS, GAUSSIAN_TS, UNIFORM_RANDOM)
)

app = CommandGroup(help="Simulations on the synthetic world.")


def parse_policies(text: str) -> list[str]:
    """``a,b,c`` → names, checked against the known policies (``--policies`` in errors); an
    old spelling is taken under its current name, with a warning."""
    from experiments.bandits.policies import POLICY_CLASSES

    names = [
        current_spelling(p.strip(), OLD_BANDIT_POLICIES, "--policies")
        for p in text.split(",")
        if p.strip()
    ]
    if not names:
        raise InputError(
            f"--policies: expected a comma-separated list of {', '.join(POLICY_CLASSES)}"
        )
    unknown = [p for p in names if p not in POLICY_CLASSES]
    if unknown:
        raise InputError(
            f"--policies: unknown {', '.join(repr(u) for u in unknown)}; "
            f"expected some of {', '.join(POLICY_CLASSES)}"
        )
    if len(set(names)) != len(names):
        raise InputError(f"--policies: a policy is listed twice in {text!r}")
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
    policies = table_of("policy", "regret", "mean reward", numeric=["regret", "mean reward"])
    for name, summary in rows:
        policies.add_row(name, f"{summary['regret']:,.1f}", f"{summary['mean_reward']:.4f}")
    print_table(policies)


@app.command("bandit")
def bandit_command(
    policies: Annotated[
        str, typer.Option("--policies", help="Comma-separated policies.")
    ] = DEFAULT_POLICIES,
    rounds: Annotated[int, typer.Option("--rounds", min=1, help="Decisions per policy.")] = 20_000,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    customers: Annotated[int, typer.Option("--customers", min=1, help="World population.")] = 5_000,
    reward: Annotated[str, typer.Option("--reward", help=" | ".join(REWARD_KINDS))] = CONVERTED,
    delay_rounds: Annotated[
        float, typer.Option("--delay-rounds", min=0.0, help="Median outcome delay, in rounds.")
    ] = 0.0,
    batch: Annotated[
        int, typer.Option("--batch", min=1, help="Rounds between policy updates.")
    ] = 100,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write a PNG of the regret curves.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Cumulative regret of bandit policies against the world's oracle, on the same arrivals.

    **Examples:**

    * `liftgate simulate bandit --rounds 20000 --seed 0`
    * `liftgate simulate bandit --policies thompson,linucb,uniform_random --delay-rounds 20
      --batch 200 --plot regret.png --json`
    """
    names = parse_policies(policies)
    # An earlier release's spelling is still taken (with a warning): not a fixed choice.
    reward = current_spelling(reward, OLD_REWARD_KINDS, "--reward")
    if reward not in REWARD_KINDS:
        raise InputError(f"--reward: expected one of {', '.join(REWARD_KINDS)}; got {reward!r}")
    if reward != CONVERTED and THOMPSON in names:
        raise InputError(
            f"--policies: {THOMPSON} (Beta–Bernoulli) needs --reward {CONVERTED}; "
            f"use {GAUSSIAN_TS} for {reward}"
        )
    if plot is not None and not plot.parent.exists():
        raise InputError(f"--plot: directory {plot.parent} does not exist")
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
