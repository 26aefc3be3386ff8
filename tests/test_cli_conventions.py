"""What every `liftgate` command promises, checked across commands.

Bad input exits 2 with a message naming what is wrong on stderr, and under `--json` the
``{"error", "exit_code"}`` document on stdout (and nothing else there); every command's
`--help` has examples and shows no value type for its flags.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

import pytest
import typer.main
from typer.testing import CliRunner

from liftgate.app.cli import demo, drift, ope, uplift, world
from liftgate.app.cli.main import app
from liftgate.core.home import HOME_ENV

runner = CliRunner()

ANALYZE = ["--arm-col", "arm", "--control", "control", "--metric", "converted:binomial"]

# (what is wrong, the command line, what stderr must name)
BAD_INPUT = [
    ("unknown rollout", ["rollout", "status", "nope"], "no rollout 'nope'"),
    ("rollout never started", ["rollout", "status", "scorer-canary"], "never started"),
    ("rollout never started", ["rollout", "pause", "scorer-canary"], "never started"),
    ("rollout never started", ["rollout", "promote", "scorer-canary"], "never started"),
    ("rollout never started", ["rollback", "scorer-canary"], "never started"),
    ("unknown experiment", ["experiment", "status", "nope"], "no experiment 'nope'"),
    ("unknown experiment", ["experiment", "report", "nope"], "no experiment 'nope'"),
    ("experiment never started", ["experiment", "stop", "nope"], "'nope' was never started"),
    ("unknown bandit", ["bandit", "status", "nope"], "no experiment 'nope'"),
    ("unknown decision", ["replay", "0" * 40], "decision '0000"),
    ("unknown action", ["actions", "show", "nope"], "no action 'nope'"),
    ("missing file", ["analyze", "{tmp}/missing.parquet", *ANALYZE], "missing.parquet"),
    ("missing file", ["ope", "{tmp}/log.csv", "--policy", "uniform"], "log.csv: file not found"),
    (
        "missing file",
        ["drift", "compare", "--reference", "{tmp}/ref.csv", "--current", "{tmp}/cur.csv"],
        "ref.csv: file not found",
    ),
    ("missing file", ["uplift", "train", "--data", "{tmp}", "--treatment", "email_20"], "--data"),
    ("bad option value", ["analyze", "{tmp}/u.csv", *ANALYZE, "--method", "magic"], "--method"),
    ("bad option value", ["world", "generate", "--out", "{tmp}", "--scenario", "x"], "--scenario"),
    ("bad option value", ["drift", "run", "--window", "soon"], "--window: expected a time span"),
    ("bad option value", ["registry", "promote", "m", "1", "--alias", "boss"], "--alias"),
    ("out of range", ["simulate", "bandit", "--rounds", "0"], "--rounds"),
    ("out of range", ["audit", "tail", "-n", "0"], "--lines"),
    ("out of range", ["experiment", "plan", "--baseline", "0.1", "--alpha", "2"], "--alpha"),
    ("out of range", ["serve", "--port", "70000"], "--port"),
    ("out of range", ["demo", "--rows", "10"], "--rows"),
    ("out of range", ["privacy", "retention", "--days", "0"], "--days"),
    ("no retention set", ["privacy", "retention"], "--days: no retention set"),
]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))
    return tmp_path


@pytest.mark.parametrize(("problem", "args", "named"), BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_bad_input_exits_2_naming_it(home: Path, problem: str, args: list[str], named: str):
    args = [a.format(tmp=home) for a in args]
    plain = runner.invoke(app, args)
    assert plain.exit_code == 2, (problem, plain.output)
    assert named in plain.stderr, (problem, plain.stderr)
    assert plain.stdout == ""
    assert "Traceback" not in plain.output

    as_json = runner.invoke(app, [*args, "--json"])
    assert as_json.exit_code == 2, (problem, as_json.output)
    assert named in as_json.stderr, (problem, as_json.stderr)
    document = json.loads(as_json.stdout)  # one document, nothing else on stdout
    assert set(document) == {"error", "exit_code"} and document["exit_code"] == 2
    assert named in document["error"]


def _commands(command, path: tuple[str, ...] = ()):
    """(path, command) of every command under `command`, groups included."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


COMMANDS = list(_commands(typer.main.get_command(app)))


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_help_has_examples_and_no_flag_types(path: tuple[str, ...], command) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.stdout and "<list[" not in result.stdout
    if not hasattr(command, "commands"):  # a command, not a group
        assert "Examples:" in result.stdout
        assert f"liftgate {' '.join(path)}" in result.stdout


@pytest.mark.parametrize(
    ("choices", "domain"),
    [
        (world.Scenario, "liftgate.sim.world:SCENARIOS"),
        (world.LoggingPolicy, "liftgate.sim.world.world:LoggingPolicy"),
        (demo.RolloutScenario, "liftgate.app.scenarios:SCENARIOS"),
        (ope.Policy, "experiments.ope.policies:BUILT_IN"),
        (uplift.Learner, "experiments.uplift.learners:LEARNERS"),
        (drift.PredictionAction, "drift.job:PREDICTION_ACTIONS"),
    ],
)
def test_the_command_lines_choices_are_the_codes(choices, domain: str) -> None:
    """Choices the command line spells out (their modules are slow to import for `--help`)
    are exactly those the code takes."""
    import importlib

    module, name = domain.split(":")
    values = getattr(importlib.import_module(module), name)
    values = get_args(values) or tuple(values)
    assert set(get_args(choices)) == set(values)
