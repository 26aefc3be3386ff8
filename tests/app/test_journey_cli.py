"""`liftgate journey list | start | pause | resume | status | inspect`, on a journeys' state
filled directly (no worker, no workflow engine), for the packaged cart-abandonment journey."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from typer.testing import CliRunner

from liftgate.app.cli.main import app
from liftgate.core import audit
from liftgate.core.home import HOME_ENV, Home
from liftgate.journeys.state import (
    ACTIVE,
    COMPLETED,
    EXITED,
    PAUSED,
    RUNNING,
    JourneyState,
    RunRow,
    run_id_of,
)

runner = CliRunner()
JOURNEY = "cart-abandonment"
T0 = dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC)


def invoke(home: Home, *args: str):
    return runner.invoke(app, ["journey", *args], env={HOME_ENV: str(home.root)})


def invoke_json(home: Home, *args: str) -> dict:
    result = invoke(home, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def add_run(state: JourneyState, customer: str, arm: str = "journey") -> str:
    run_id = run_id_of(JOURNEY, customer, f"e-{customer}")
    state.add_run(RunRow(run_id, JOURNEY, customer, f"e-{customer}", arm, "cart-recovery", T0))
    return run_id


@pytest.fixture
def filled(home: Home) -> Home:
    """Four runs (two open at wait_1h and wait_purchase, one completed, one exited holdout),
    two refused entries, one hand-off, and a history of three entries for c1."""
    state = JourneyState(home.journey_state)
    state.set_status(JOURNEY, ACTIVE, at=T0)
    c1, c2 = add_run(state, "c1"), add_run(state, "c2")
    state.move(c1, "wait_purchase", at=T0)
    state.move(c2, "wait_1h", at=T0)
    state.finish(add_run(state, "c3"), COMPLETED, "finished", at=T0)
    state.finish(add_run(state, "c4", arm="holdout"), EXITED, "purchase", at=T0)
    state.refuse_entry(JOURNEY, "e-c5", "c5", "no_consent", at=T0)
    state.refuse_entry(JOURNEY, "e-c6", "c6", "cooldown", at=T0)
    decision = {"decision_id": "d1", "chosen": "email_20", "expected_value": 50.0}
    state.hand_off(c2, "call", "agent", "c2", decision, at=T0)
    state.record(c1, 2, "action", "send_offer", {"action_id": "a1", "status": "queued"}, at=T0)
    state.record(c1, 0, "wait", "wait_1h", {"until": "2026-03-01T10:00:00+00:00"}, at=T0)
    state.record(c1, 1, "decision", "offer", {"decision_id": "d0", "chosen": "email_10"}, at=T0)
    state.close()
    return home


def test_list_shows_every_journey_never_started_on_an_empty_home(home: Home) -> None:
    [row] = invoke_json(home, "list")
    assert row["name"] == JOURNEY and row["status"] == "never started"
    assert row["trigger"] == "cart_abandoned" and row["steps"] == 10
    assert set(row["arms"]) == {"journey", "holdout"}
    assert row["runs"] == dict.fromkeys(("starting", "running", "completed", "exited", "failed"), 0)
    text = invoke(home, "list")
    assert text.exit_code == 0 and "never started" in text.stdout and JOURNEY in text.stdout


def test_list_counts_runs_by_status(filled: Home) -> None:
    [row] = invoke_json(filled, "list")
    assert row["status"] == ACTIVE
    assert row["runs"] == {"starting": 0, "running": 2, "completed": 1, "exited": 1, "failed": 0}


def test_start_pause_resume_change_the_status_and_are_audited(home: Home) -> None:
    started = invoke_json(home, "start", JOURNEY, "--by", "alice")
    assert started == {"journey": JOURNEY, "status": ACTIVE, "previous": "never started"}
    assert invoke_json(home, "pause", JOURNEY)["status"] == PAUSED
    state = JourneyState(home.journey_state)
    assert state.status(JOURNEY) == PAUSED
    state.close()
    assert invoke_json(home, "list")[0]["status"] == PAUSED
    resumed = invoke(home, "resume", JOURNEY)
    assert resumed.exit_code == 0 and f"{JOURNEY}: paused → active" in resumed.stdout

    records = [(r["action"], r["journey"], r["who"]) for r in audit.read(home.audit_log)]
    assert records[0] == ("journey_started", JOURNEY, "alice")
    assert [action for action, _, _ in records] == [
        "journey_started",
        "journey_paused",
        "journey_resumed",
    ]


@pytest.mark.parametrize("command", ["pause", "resume"])
def test_pausing_or_resuming_a_journey_never_started_exits_2(home: Home, command: str) -> None:
    result = invoke(home, command, JOURNEY, "--json")
    assert result.exit_code == 2
    error = json.loads(result.stdout)
    assert error["exit_code"] == 2 and "was never started" in error["error"]
    assert f"liftgate journey start {JOURNEY}" in result.stderr
    assert not home.audit_log.exists()


@pytest.mark.parametrize("command", ["start", "pause", "resume", "status"])
def test_an_unknown_journey_exits_2_naming_those_defined(home: Home, command: str) -> None:
    result = invoke(home, command, "nope")
    assert result.exit_code == 2
    assert "no journey 'nope'" in result.stderr and f"defined: {JOURNEY}" in result.stderr
    assert "Traceback" not in result.output


def test_status_counts_runs_steps_arms_refusals_and_the_agent_queue(filled: Home) -> None:
    status = invoke_json(filled, "status", JOURNEY)
    assert status["status"] == ACTIVE
    assert status["runs"][RUNNING] == 2 and status["runs"][COMPLETED] == 1
    assert status["open_runs_by_step"]["wait_purchase"] == 1
    assert status["open_runs_by_step"]["wait_1h"] == 1
    assert status["open_runs_by_step"]["remind"] == 0
    assert status["runs_by_arm"] == {"journey": 3, "holdout": 1}
    assert status["entries_refused"] == {"no_consent": 1, "cooldown": 1}
    assert status["agent_queue"] == 1
    text = invoke(filled, "status", JOURNEY)
    assert text.exit_code == 0
    assert "wait_purchase" in text.stdout and "no_consent 1" in text.stdout


def test_inspect_shows_the_run_and_its_history_in_order(filled: Home) -> None:
    run_id = run_id_of(JOURNEY, "c1", "e-c1")
    document = invoke_json(filled, "inspect", run_id)
    run = document["run"]
    assert (run["journey"], run["customer_id"], run["arm"]) == (JOURNEY, "c1", "journey")
    assert (run["status"], run["step"], run["exit_reason"]) == (RUNNING, "wait_purchase", None)
    assert dt.datetime.fromisoformat(run["started_at"]) == T0
    assert [(h["seq"], h["kind"]) for h in document["history"]] == [
        (0, "wait"),
        (1, "decision"),
        (2, "action"),
    ]
    assert document["history"][2]["action_id"] == "a1"
    text = invoke(filled, "inspect", run_id)
    assert text.exit_code == 0 and "action_id=a1" in text.stdout


def test_inspect_an_unknown_run_exits_2(home: Home) -> None:
    result = invoke(home, "inspect", "cart-abandonment:nobody:e0", "--json")
    assert result.exit_code == 2
    assert "no journey run 'cart-abandonment:nobody:e0'" in json.loads(result.stdout)["error"]
