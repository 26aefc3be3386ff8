"""`liftgate ope` beside the action log: the share of the decisions whose action was
delivered, refused, ... is reported, and every decision stays in the estimate (intent to
treat)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner, Result

from experiments.logs.schema import ActionRecord
from experiments.logs.writer import LogWriter
from liftgate.app.cli.main import app
from liftgate.core.home import HOME_ENV, Home

N = 1_000
NOON = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)
runner = CliRunner()


def step(i: int, status: str, **fields) -> ActionRecord:
    row = dict(
        ts=NOON, action="email_10", channel="email", campaign_id="spring", detail="",
        dry_run=False, attempt=0, check=None,
    )  # fmt: skip
    return ActionRecord(
        **{**row, **fields}, action_id=f"a{i}", decision_id=f"d{i}", status=status,
        idempotency_key=f"k{i}",
    )  # fmt: skip


@pytest.fixture
def logged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A logged table of N decisions with ids; a fifth of them delivered, a tenth refused
    for consent (in LIFTGATE_HOME's action log); .npy files of a target and q̂."""
    rng = np.random.default_rng(0)
    action = rng.integers(0, 3, N)
    frame = pd.DataFrame(
        {
            "decision_id": [f"d{i}" for i in range(N)],
            "act": action,
            "y": (rng.random(N) < 0.1 + 0.1 * action).astype(float),
            "p": np.full(N, 1 / 3),
        }
    )
    frame.to_csv(tmp_path / "log.csv", index=False)
    frame.drop(columns="decision_id").to_csv(tmp_path / "anonymous.csv", index=False)
    np.save(tmp_path / "target.npy", np.tile([0.0, 0.0, 1.0], (N, 1)))
    np.save(tmp_path / "q.npy", np.tile([0.1, 0.2, 0.3], (N, 1)))
    home = Home(tmp_path / "home")
    monkeypatch.setenv(HOME_ENV, str(home.root))
    with LogWriter(home.action_log, ActionRecord) as log:
        for i in range(0, N, 5):
            log.append(step(i, "queued"))
            log.append(step(i, "delivered", attempt=1))
        for i in range(1, N, 10):
            log.append(step(i, "refused", check="consent"))
    return tmp_path


def invoke(directory: Path, log: str, *extra: str) -> Result:
    return runner.invoke(
        app,
        ["ope", str(directory / log), "--policy-probs", str(directory / "target.npy"),
         "--reward-hat", str(directory / "q.npy"), "--action-col", "act", "--reward-col", "y",
         "--propensity-col", "p", "--resamples", "50", *extra],
    )  # fmt: skip


def ope(directory: Path, log: str, *extra: str) -> dict:
    result = invoke(directory, log, *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if "--json" in extra else {"text": result.stdout}


def test_shares_of_what_was_sent_are_reported_beside_the_estimates(logged: Path) -> None:
    document = ope(logged, "log.csv", "--json")
    sent = document["sent"]
    assert sent["decisions"] == N
    assert sent["fates"] == {
        "delivered": N // 5, "pending": 0, "failed": 0, "refused": N // 10, "dry_run": 0,
        "no_action": N - N // 5 - N // 10,
    }  # fmt: skip
    assert sent["shares"]["delivered"] == pytest.approx(0.2)
    text = ope(logged, "log.csv")["text"]
    assert "delivered 20.0%" in text and "refused 10.0%" in text and "intent to treat" in text


def test_every_decision_stays_in_the_estimate(logged: Path) -> None:
    """Intent to treat: the refused decisions are not dropped; the estimates are those of
    the same table without decision ids, where nothing is known of what was sent."""
    with_ids = ope(logged, "log.csv", "--json")
    without = ope(logged, "anonymous.csv", "--json")
    assert without["sent"] is None
    assert with_ids["n"] == without["n"] == N
    assert with_ids["estimates"] == without["estimates"]


def test_an_action_log_the_command_cannot_read_exits_2_naming_it(logged: Path) -> None:
    home = Home(logged / "home")
    with LogWriter(home.action_log, ActionRecord) as log:
        log.append(step(3, "bounced"))
    result = invoke(logged, "log.csv")
    assert result.exit_code == 2
    assert str(home.action_log) in result.stderr and "'bounced'" in result.stderr
