"""The simulation on the synthetic world, and `liftgate simulate bandit` through CliRunner."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from experiments.bandits import EpsilonGreedy
from liftgate.app.cli.bandit import register
from liftgate.sim.bandit_arena import build_arena, make_policy, play, simulate

app = typer.Typer(pretty_exceptions_enable=False)
register(app)
runner = CliRunner()


@pytest.fixture(scope="module")
def arena():
    return build_arena(seed=3, n_customers=800)


def test_regret_is_against_the_eligible_oracle(arena) -> None:
    run = play(make_policy("random", arena, seed=0), arena, rounds=3_000, seed=1)
    assert (run["regret"] >= -1e-12).all()
    assert arena.eligible[run["who"], run["actions"]].all()  # only candidates are played
    best = np.where(arena.eligible, arena.expected, -np.inf).max(axis=1)
    mean_gap = (best[:, None] - arena.expected)[arena.eligible].mean()
    assert run["regret"].mean() == pytest.approx(mean_gap, rel=0.15)


def test_outcomes_wait_for_their_lag_and_the_next_batch(arena) -> None:
    policy = EpsilonGreedy(n_actions=5, seed=0)
    play(policy, arena, rounds=1_000, seed=0, delay_rounds=0, batch=300)
    assert policy.n_updates_ == 900  # three batches; the last 100 outcomes wait
    delayed = EpsilonGreedy(n_actions=5, seed=0)
    play(delayed, arena, rounds=1_000, seed=0, delay_rounds=1e9, batch=100)
    assert delayed.n_updates_ == 0


def test_profit_reward_and_common_random_numbers(arena) -> None:
    profit = build_arena(seed=3, n_customers=800, reward="profit")
    a = simulate(["gaussian_ts", "random"], rounds=1_500, seed=2, arena=profit, curve_points=10)
    b = simulate(["random"], rounds=1_500, seed=2, arena=profit, curve_points=10)
    assert a["policies"]["random"] == b["policies"]["random"]  # same seed, same run
    assert a["reward"] == "profit" and len(a["policies"]["random"]["curve"]) == 10
    assert a["curve_rounds"][-1] == 1_500
    with pytest.raises(ValueError, match="needs conversion rewards"):
        make_policy("thompson", profit)
    with pytest.raises(ValueError, match="unknown policies"):
        simulate(["nope"], arena=arena)


@pytest.mark.slow
def test_thompson_and_linucb_beat_epsilon_greedy_which_beats_random() -> None:
    """Three seeded worlds, 30k delayed, batched decisions each (about 25 s).

    Per seed the large gaps hold; Thompson's edge over ε-greedy is ~5–10 % of the regret
    (both pay the same gap of the best single action to the per-customer oracle), so it is
    asserted on the total over the seeds.
    """
    totals = dict.fromkeys(("thompson", "linucb", "egreedy", "random"), 0.0)
    for seed in (0, 1, 2):
        result = simulate(list(totals), rounds=30_000, seed=seed, delay_rounds=20, batch=200)
        regret = {name: summary["regret"] for name, summary in result["policies"].items()}
        assert regret["linucb"] < regret["egreedy"] < regret["random"], (seed, regret)
        assert regret["thompson"] < regret["random"], (seed, regret)
        for name in totals:
            totals[name] += regret[name]
    assert totals["thompson"] < totals["egreedy"], totals
    assert totals["linucb"] < totals["egreedy"], totals


def test_cli_json_is_one_document(tmp_path) -> None:
    plot = tmp_path / "regret.png"
    result = runner.invoke(
        app,
        [
            "simulate",
            "bandit",
            "--policies",
            "egreedy,random",
            "--rounds",
            "500",
            "--customers",
            "500",
            "--seed",
            "4",
            "--delay-rounds",
            "5",
            "--batch",
            "50",
            "--json",
            "--plot",
            str(plot),
        ],
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert {"rounds", "seed", "policies"} <= set(document)
    assert document["rounds"] == 500 and document["seed"] == 4
    assert set(document["policies"]["egreedy"]) == {"regret", "mean_reward", "curve"}
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_cli_table() -> None:
    result = runner.invoke(
        app,
        ["simulate", "bandit", "--policies", "ucb,random", "--rounds", "300", "--customers", "300"],
    )
    assert result.exit_code == 0, result.output
    assert "ucb" in result.stdout and "regret" in result.stdout


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--policies", "thompson,bogus"], "--policies"),
        (["--rounds", "0"], "--rounds"),
        (["--batch", "0"], "--batch"),
        (["--delay-rounds", "-1"], "--delay-rounds"),
        (["--reward", "revenue"], "--reward"),
        (["--reward", "profit", "--policies", "thompson"], "--policies"),
        (["--plot", "/nonexistent/dir/x.png"], "--plot"),
    ],
)
def test_cli_bad_input_exits_2_naming_the_option(args, option) -> None:
    result = runner.invoke(app, ["simulate", "bandit", *args, "--json"])
    assert result.exit_code == 2
    assert option in result.stderr
    assert result.stdout == ""
