"""`liftgate ope` through the app: JSON shape, input errors (exit 2)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from liftgate.app.cli.main import app

runner = CliRunner()


@pytest.fixture
def log(tmp_path):
    rng = np.random.default_rng(0)
    n = 2_000
    action = rng.integers(0, 3, n)
    frame = pd.DataFrame(
        {
            "act": action,
            "y": (rng.random(n) < 0.1 + 0.1 * action).astype(float),
            "p": np.full(n, 1 / 3),
            "f": rng.random(n),
        }
    )
    path = tmp_path / "log.csv"
    frame.to_csv(path, index=False)
    np.save(tmp_path / "target.npy", np.tile([0.0, 0.0, 1.0], (n, 1)))
    np.save(tmp_path / "q.npy", np.tile([0.1, 0.2, 0.3], (n, 1)))
    return path


def run(*args):
    result = runner.invoke(app, ["ope", *map(str, args)])
    return result.exit_code, result.stdout, result.stderr


def test_json_document_with_given_policy_and_reward_hat(log):
    code, out, _ = run(
        log, "--policy-probs", log.parent / "target.npy", "--reward-hat", log.parent / "q.npy",
        "--action-col", "act", "--reward-col", "y", "--propensity-col", "p", "--json",
    )  # fmt: skip
    assert code == 0
    doc = json.loads(out)
    assert doc["n"] == 2_000 and doc["n_actions"] == 3
    assert set(doc["estimates"]) == {"ipw", "snipw", "dm", "dr", "sndr"}
    for est in doc["estimates"].values():
        assert est["ci_low"] - 1e-12 <= est["value"] <= est["ci_high"] + 1e-12
    assert doc["estimates"]["dm"]["value"] == pytest.approx(0.3)
    assert doc["estimates"]["ipw"]["value"] == pytest.approx(0.3, abs=0.05)
    assert doc["ess"] == pytest.approx(doc["n"] / 3, rel=0.1)
    assert doc["max_weight"] == pytest.approx(3.0)
    assert doc["warnings"] == []


def test_built_in_policy_fits_the_reward_model(log):
    code, out, _ = run(
        log, "--policy", "greedy-model", "--feature-cols", "f", "--action-col", "act",
        "--reward-col", "y", "--propensity-col", "p", "--json", "--folds", "2",
    )  # fmt: skip
    assert code == 0
    doc = json.loads(out)
    assert doc["estimates"]["dr"]["value"] > doc["on_policy_value"]
    assert "--feature-cols f" in doc["reward_model"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--policy", "uniform", "--reward-col", "nope"], "'nope' (from --reward-col)"),
        (["--policy", "best"], "--policy"),
        ([], "exactly one of --policy"),
        (["--policy-probs", "missing.npy"], "--policy-probs"),
        (["--policy-probs", "BAD"], "expected shape (2000, K)"),
        (["--policy", "uniform", "--propensity-col", "y"], "--propensity-col"),
    ],
)
def test_bad_input_exits_2_naming_the_problem(log, args, message):
    bad = log.parent / "bad.npy"
    np.save(bad, np.ones((3, 3)) / 3)
    args = [str(bad) if a == "BAD" else a for a in args]
    defaults = ["--action-col", "act", "--reward-col", "y", "--propensity-col", "p"]
    code, out, err = run(log, *defaults, *args, "--json")
    assert code == 2
    assert json.loads(out)["exit_code"] == 2  # the error document
    assert message in err
