"""The rollout controller on a real MLflow registry (no Ray): steps, rollback with an alert,
promotion and its undo, the weights/aliases transition under injected failures and a
process killed between them, and what `liftgate rollout status` shows."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rollout_child import KILLED
from rollout_helpers import NAME, assert_agree, write_config
from typer.testing import CliRunner

from configs.loader import load_config
from experiments.canary_state import read_split
from experiments.logs.schema import DecisionRecord, OutcomeRecord
from experiments.logs.writer import LogWriter
from liftgate.app.cli.main import app
from liftgate.core import audit
from liftgate.core.home import HOME_ENV, Home
from liftgate.core.vocabulary import EPSILON_GREEDY
from liftgate.guard.alerts import AlertReceiver
from liftgate.guard.controller import RolloutController, RolloutError
from liftgate.guard.state import read_record
from registry.client import ModelRegistry

pytestmark = pytest.mark.slow

CHILD = Path(__file__).with_name("rollout_child.py")


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    return write_config(tmp_path / "configs")


@pytest.fixture
def receiver():
    receiver = AlertReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def home(trained: dict, tmp_path: Path, monkeypatch, receiver) -> Home:
    """A copy of the shared trained home: v1 champion, v2 challenger (tests/conftest.py)."""
    copy = Home(tmp_path / "home")
    shutil.copytree(trained["home"].root, copy.root)
    monkeypatch.setenv(HOME_ENV, str(copy.root))
    monkeypatch.setenv("LIFTGATE_ALERT_WEBHOOK", receiver.url)
    return copy


def controller(home: Home, config_dir: Path, registry=None) -> RolloutController:
    return RolloutController(load_config(config_dir), home, registry=registry)


def log_traffic(home: Home, units: int, canary_rate: float, comparison_rate: float, seed=0):
    """Decisions of the rollout's canary and baseline groups, with conversions."""
    rng = np.random.default_rng(seed)
    now = dt.datetime.now(dt.UTC)
    base = dict(
        ts=now,
        features=[0.0],
        contract_version="1",
        actions=["email_10"],
        scores=[1.0],
        probabilities=[0.1],
        chosen="email_10",
        propensity=1.0,
        policy=EPSILON_GREEDY,
        model_name="m",
        model_version="1",
        model_alias="champion",
        experiment=f"rollout/{NAME}",
        fallback=False,
        fallback_reason=None,
        cold_start=False,
        latency_ms=2.0,
        trace_id="t",
        request_id=None,
    )
    with (
        LogWriter(home.decision_log, DecisionRecord) as decisions,
        LogWriter(home.outcome_log, OutcomeRecord) as outcomes,
    ):
        for arm, rate in (("canary", canary_rate), ("baseline", comparison_rate)):
            for i in range(units):
                decision_id = f"{arm}-{seed}-{i}"
                decisions.append(
                    DecisionRecord(
                        **base,
                        decision_id=decision_id,
                        customer_id=f"{arm}{seed}-{i}",
                        arm=arm,
                    )
                )
                if rng.random() < rate:
                    outcomes.append(
                        OutcomeRecord(
                            outcome_id=f"o{decision_id}",
                            decision_id=decision_id,
                            ts=now,
                            event="conversion",
                            value=1.0,
                            received_ts=now,
                            known_decision=True,
                        )
                    )


def test_a_regressing_challenger_is_rolled_back_with_an_alert(home, config_dir, receiver):
    guard = controller(home, config_dir)
    record = guard.start(NAME)
    split, _ = read_split(home)
    assert (record.status, split.weight, split.challenger) == ("running", 0.1, "2")
    log_traffic(home, units=3_000, canary_rate=0.05, comparison_rate=0.10)
    result = guard.tick(NAME)
    assert result["verdict"]["kind"] == "ROLLBACK"
    assert result["action"]["action"] == "rollback"
    assert result["action"]["seconds_after_verdict"] < 2.0
    assert read_split(home)[0] is None
    aliases = ModelRegistry(home).aliases(guard.model)
    assert "challenger" not in aliases and aliases["champion"] == "1"
    assert read_record(home, NAME).status == "rolled_back"
    alert = receiver.received[-1]
    assert alert["alert"] == "rollout_rolled_back" and "conversion" in alert["summary"]
    assert alert["evidence"]["kind"] == "ROLLBACK" and alert["action"]["elapsed_s"] < 2.0
    actions = [r["action"] for r in audit.read(home.audit_log)]
    assert {"guard_verdict", "rollout_rolled_back", "alias_removed"} <= set(actions)


def test_a_good_challenger_is_promoted_step_by_step_and_undone_in_one_command(home, config_dir):
    guard = controller(home, config_dir)
    guard.start(NAME)
    assert guard.tick(NAME)["verdict"]["kind"] == "HOLD"  # no exposure yet
    log_traffic(home, units=400, canary_rate=0.1, comparison_rate=0.1, seed=1)
    step = guard.tick(NAME)
    assert step["verdict"]["kind"] == "PROMOTE" and read_split(home)[0].weight == 0.3
    promoted = guard.tick(NAME)
    assert promoted["action"]["action"] == "promoted"
    registry = ModelRegistry(home)
    aliases = registry.aliases(guard.model)
    assert (aliases["champion"], aliases["previous"]) == ("2", "1") and "challenger" not in aliases
    assert read_split(home)[0] is None
    result = CliRunner().invoke(app, ["rollback", NAME, "--config-dir", str(config_dir)])
    assert result.exit_code == 0, result.output
    assert registry.aliases(guard.model)["champion"] == "1"


class FlakyRegistry:
    """The real registry, whose alias reads and changes fail the next `failures` times."""

    def __init__(self, registry: ModelRegistry):
        self.registry, self.failures = registry, 0

    def _fail(self) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("injected: registry unreachable")

    def aliases(self, name: str) -> dict[str, str]:
        self._fail()
        return self.registry.aliases(name)

    def set_aliases(self, *args, **kwargs):
        self._fail()
        return self.registry.set_aliases(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.registry, name)


def test_an_alias_failure_between_weights_and_aliases_is_retried(home, config_dir):
    flaky = FlakyRegistry(ModelRegistry(home))
    guard = controller(home, config_dir, registry=flaky)
    guard.start(NAME)
    flaky.failures = 2
    record = guard.abort(NAME)
    assert record.status == "aborted" and read_split(home)[0] is None
    assert_agree(home, flaky.registry.aliases(guard.model))


def test_a_rollback_in_a_lasting_outage_ends_at_weight_0_and_the_next_tick_finishes_it(
    home, config_dir
):
    flaky = FlakyRegistry(ModelRegistry(home))
    guard = controller(home, config_dir, registry=flaky)
    guard.start(NAME)
    flaky.failures = 100
    log_traffic(home, units=3_000, canary_rate=0.05, comparison_rate=0.10)
    result = guard.tick(NAME)
    assert result["verdict"]["kind"] == "ROLLBACK"
    assert result["action"]["action"] == "rollback_failed"
    assert read_split(home)[0] is None  # the canary is out and stays out
    assert flaky.registry.aliases(guard.model)["challenger"] == "2"  # the registry is down
    record = read_record(home, NAME)
    assert record.status == "running" and record.pending.action == "rollback"

    flaky.failures = 0
    result = guard.tick(NAME)
    assert result["action"]["action"] == "rollback" and result["verdict"] is None
    assert assert_agree(home, flaky.registry.aliases(guard.model)).status == "rolled_back"


@pytest.mark.parametrize(
    ("command", "action", "done"),
    [
        ("tick", "rollback", "rolled_back"),
        ("promote", "promote", "promoted"),
    ],
)
def test_a_process_killed_between_weights_and_aliases_converges_at_the_next_tick(
    home, config_dir, command, action, done
):
    guard = controller(home, config_dir)
    guard.start(NAME)
    log_traffic(home, units=3_000, canary_rate=0.05, comparison_rate=0.10)  # a regression
    child = subprocess.run(
        [sys.executable, str(CHILD), str(config_dir), command],
        env={**os.environ, HOME_ENV: str(home.root)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == KILLED, child.stderr
    registry = ModelRegistry(home)
    assert read_split(home)[0] is None  # the weights moved; the aliases did not
    assert registry.aliases(guard.model) == {"champion": "1", "challenger": "2"}
    record = read_record(home, NAME)
    assert (record.status, record.pending.action) == ("running", action)

    result = controller(home, config_dir).tick(NAME)  # the guard, in another process
    assert result["action"]["reconciled"] is True and result["verdict"] is None
    assert assert_agree(home, registry.aliases(guard.model)).status == done


def test_commands_refuse_what_cannot_be_done(home, config_dir):
    guard = controller(home, config_dir)
    with pytest.raises(RolloutError, match="never started"):
        guard.status(NAME)
    with pytest.raises(RolloutError, match="no rollout"):
        guard.start("nope")
    guard.start(NAME)
    with pytest.raises(RolloutError, match="already running"):
        guard.start(NAME)
    result = CliRunner().invoke(app, ["rollout", "resume", NAME, "--config-dir", str(config_dir)])
    assert result.exit_code == 1 and "not paused" in result.output


def test_status_shows_the_record_the_split_and_the_aliases(home, config_dir):
    guard = controller(home, config_dir)
    guard.start(NAME)
    args = ["rollout", "status", NAME, "--config-dir", str(config_dir)]

    shown = json.loads(CliRunner().invoke(app, [*args, "--json"]).stdout)
    stored = json.loads(home.rollout_record(NAME).read_text())
    assert shown == {
        **{key: value for key, value in stored.items() if key != "history"},
        "serving": read_split(home)[0].to_dict(),
        "serving_revision": read_split(home)[1],
        "aliases": ModelRegistry(home).aliases(guard.model),
        "history": stored["history"][-10:],
    }
    text = CliRunner().invoke(app, args).stdout
    assert f"rollout {NAME}: running" in text and "registry: challenger v2, champion v1" in text
