"""`liftgate uplift metrics` and `liftgate uplift train` through the registered sub-app."""

from __future__ import annotations

import hashlib
import json
import pickle

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from experiments.uplift.metrics import uplift_metrics
from liftgate.app.cli.main import app
from liftgate.sim.world import World

runner = CliRunner()


@pytest.fixture
def scored(tmp_path):
    rng = np.random.default_rng(0)
    n = 5_000
    t = rng.integers(0, 2, n)
    s = rng.random(n)
    y = (rng.random(n) < 0.1 + 0.2 * t * s).astype(int)
    path = tmp_path / "scored.csv"
    pd.DataFrame({"t": t, "y": y, "s": s, "name": "x"}).to_csv(path, index=False)
    return path, y, s, t


def test_metrics_json(scored):
    path, y, s, t = scored
    args = ["uplift", "metrics", str(path), "--treatment-col", "t", "--outcome-col", "y"]
    result = runner.invoke(app, [*args, "--score-col", "s", "--k", "0.2", "--json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    expected = uplift_metrics(y, s, t, k=0.2).to_dict()
    assert doc["uplift_at_k"] == pytest.approx(expected["uplift_at_k"])
    assert doc["qini_auc"] == pytest.approx(expected["qini_auc"]) and doc["qini_auc"] > 0
    assert doc["uplift_auc"] == pytest.approx(expected["uplift_auc"])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--score-col", "nope"], "'nope' (from --score-col)"),
        (["--score-col", "s", "--k", "1.5"], "--k"),
        (["--score-col", "name"], "--score-col"),
        (["--score-col", "s", "--outcome-col", "s"], "(from --outcome-col)"),
    ],
)
def test_metrics_bad_input_exits_2(scored, options, message):
    path = scored[0]
    base = ["uplift", "metrics", str(path), "--treatment-col", "t", "--outcome-col", "y"]
    result = runner.invoke(app, [*base, *options, "--json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout)["exit_code"] == 2  # the error document
    assert message in result.stderr


@pytest.mark.slow
def test_train_reports_held_out_metrics_and_saves_the_model(tmp_path):
    World(seed=4, n_customers=3_000).write(tmp_path / "w", rows=15_000)
    out = tmp_path / "model.pkl"
    result = runner.invoke(
        app,
        ["uplift", "train", "--data", str(tmp_path / "w"), "--treatment", "email_20",
         "--learner", "x", "--out", str(out), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert set(doc["metrics"]) >= {"uplift_at_k", "qini_auc", "uplift_auc"}
    assert doc["true_uplift_correlation"] > 0.3
    saved = pickle.loads(out.read_bytes())
    assert saved["treatment"] == "email_20" and hasattr(saved["model"], "predict_uplift")
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert (tmp_path / "model.pkl.sha256").read_text() == f"{digest}  model.pkl\n"  # sha256sum
    bad = runner.invoke(
        app, ["uplift", "train", "--data", str(tmp_path / "w"), "--treatment", "email_99"]
    )
    assert bad.exit_code == 2 and "--treatment" in bad.stderr
