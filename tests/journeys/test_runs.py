"""Journey runs on the real workflow engine (DBOS on SQLite), with canned decide and commit
ports (journey_process.py): exit on conversion, quiet hours, pause and resume, a redelivered
event, the holdout, consent revoked mid-journey, and SIGKILL during waits and sends.

The journeys' clock runs 3600 times faster than real time (an hour a second). A test waits
for an outcome with a generous timeout and asserts on the runs, their history and the
commit table, never on how long anything took.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from journey_process import (
    CRASH_SPEED,
    CannedPorts,
    Worker,
    cart_event,
    read_sends,
)

from configs.journey_schema import JourneyConfig
from liftgate.core.clock import CompressedClock
from liftgate.core.home import Home
from liftgate.governance.events import EventInbox
from liftgate.journeys import plan
from liftgate.journeys.clock_file import write_clock
from liftgate.journeys.state import (
    ACTIVE,
    COMPLETED,
    EXITED,
    OPEN_STATUSES,
    PAUSED,
    RUNNING,
    JourneyState,
)

SPEED = 3600.0
T0 = dt.datetime(2026, 3, 2, 12, tzinfo=dt.UTC)
TIMEOUT_S = 60.0
OFFER = {"id": "offer", "decide": {"candidates": ["email_10", "no_action"]}}
SEND = {"id": "send", "act": {"decision": "offer"}}


def journey(*steps: dict, **fields) -> JourneyConfig:
    return JourneyConfig.model_validate(
        {"name": "cart", "trigger": {"event": "cart_abandoned"}, "steps": list(steps), **fields}
    )


async def until(what: str, condition: Callable[[], bool], timeout_s: float = TIMEOUT_S) -> None:
    """Wait until `condition()` holds; fail naming `what` after a generous timeout."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.05)


async def run_over(worker: Worker, run_id: str) -> None:
    def over() -> bool:
        run = worker.state.run(run_id)
        return run is not None and run.status not in OPEN_STATUSES

    await until(f"run {run_id} is over", over)


def kinds(history: list[dict]) -> list[str]:
    return [entry["kind"] for entry in history]


def test_a_purchase_during_the_first_wait_exits_the_run_without_a_send(tmp_path: Path) -> None:
    cart = journey({"id": "w", "wait": {"duration": "1d"}}, OFFER, SEND, exit_on=["purchase"])

    async def scenario() -> None:
        async with Worker(tmp_path, [cart], CompressedClock.starting(T0, SPEED)) as worker:
            await worker.dispatcher.dispatch(cart_event("e1", "c1"))
            await until("the run waits", lambda: worker.state.run("cart:c1:e1").step == "w")
            await worker.dispatcher.dispatch(cart_event("p1", "c1", "purchase"))
            await run_over(worker, "cart:c1:e1")
            run, history = worker.state.run("cart:c1:e1"), worker.state.history("cart:c1:e1")
        assert (run.status, run.exit_reason) == (EXITED, "purchase")
        assert kinds(history) == ["entered", "event", "exited"]
        assert history[1]["event"]["type"] == "purchase"

    asyncio.run(scenario())
    assert read_sends(tmp_path / "sends.db") == {"sends": {}, "calls": [], "decisions": []}


def test_a_decision_due_in_quiet_hours_waits_until_they_end(tmp_path: Path) -> None:
    quiet_end = dt.datetime(2026, 3, 2, 8, tzinfo=dt.UTC)
    cart = journey(
        {"id": "w", "wait": {"duration": "30m"}},
        OFFER,
        SEND,
        quiet_hours={"start": "22:00", "end": "08:00"},
    )
    clock = CompressedClock.starting(quiet_end - dt.timedelta(hours=1), SPEED)  # 07:00

    async def scenario() -> None:
        async with Worker(tmp_path, [cart], clock) as worker:
            await worker.dispatcher.dispatch(cart_event("e1", "c1"))
            await run_over(worker, "cart:c1:e1")
            return worker.state.history("cart:c1:e1")

    history = asyncio.run(scenario())
    assert kinds(history) == ["entered", "quiet_hours", "decision", "act", "completed"]
    assert dt.datetime.fromisoformat(history[1]["until"]) == quiet_end
    assert dt.datetime.fromisoformat(history[2]["at"]) >= quiet_end
    (send,) = read_sends(tmp_path / "sends.db")["sends"].values()
    assert send["at"] >= quiet_end


@pytest.mark.slow
def test_a_paused_journey_sends_nothing_until_it_is_resumed_then_once(tmp_path: Path) -> None:
    cart = journey(OFFER, {"id": "w", "wait": {"duration": "2h"}}, SEND)
    clock = CompressedClock.starting(T0, SPEED)

    async def scenario() -> None:
        async with Worker(tmp_path, [cart], clock) as worker:
            await worker.dispatcher.dispatch(cart_event("e1", "c1"))
            worker.state.set_status("cart", PAUSED, clock.now())  # the run is in its 2 h wait
            paused_at = clock.now()
            # the send was due within 2 h; a few hours later the run is still held at it
            await until("5 h have passed", lambda: clock.now() >= paused_at + dt.timedelta(hours=5))
            held = worker.state.run("cart:c1:e1")
            assert (held.status, held.step) == (RUNNING, "send")
            assert read_sends(tmp_path / "sends.db")["sends"] == {}
            worker.state.set_status("cart", ACTIVE, clock.now())
            await run_over(worker, "cart:c1:e1")
            return worker.state.run("cart:c1:e1")

    run = asyncio.run(scenario())
    assert (run.status, run.exit_reason) == (COMPLETED, "finished")
    kept = read_sends(tmp_path / "sends.db")
    assert list(kept["sends"]) == ["journey:cart:c1:e1:send"]
    assert len(kept["calls"]) == 1


@pytest.mark.slow
def test_a_redelivered_trigger_event_starts_one_run_and_sends_once(tmp_path: Path) -> None:
    cart = journey({"id": "w", "wait": {"duration": "1h"}}, OFFER, SEND)

    async def scenario() -> None:
        async with Worker(tmp_path, [cart], CompressedClock.starting(T0, SPEED)) as worker:
            await worker.dispatcher.dispatch(cart_event("e1", "c1"))
            await worker.dispatcher.dispatch(cart_event("e1", "c1"))  # while it runs
            await run_over(worker, "cart:c1:e1")
            await worker.dispatcher.dispatch(cart_event("e1", "c1"))  # once it is over
            await asyncio.sleep(1.0)  # an hour of journey time for a second run to show
            return worker.state.runs("cart"), worker.state.history("cart:c1:e1")

    runs, history = asyncio.run(scenario())
    assert [(r.run_id, r.status) for r in runs] == [("cart:c1:e1", COMPLETED)]
    assert kinds(history) == ["entered", "decision", "act", "completed"]
    kept = read_sends(tmp_path / "sends.db")
    assert list(kept["sends"]) == ["journey:cart:c1:e1:send"]
    assert len(kept["calls"]) == 1 and kept["decisions"] == ["cart:c1:e1"]


def test_a_customer_in_the_holdout_gets_no_decision_and_no_send(tmp_path: Path) -> None:
    cart = journey(
        OFFER,
        SEND,
        arms=[
            {"name": "journey", "weight": 0.5},
            {"name": "holdout", "weight": 0.5, "holdout": True},
        ],
    )
    held_out = next(c for c in (f"c{i}" for i in range(100)) if plan.arm_for(cart, c) == "holdout")

    async def scenario() -> None:
        async with Worker(tmp_path, [cart], CompressedClock.starting(T0, SPEED)) as worker:
            await worker.dispatcher.dispatch(cart_event("e1", held_out))
            await run_over(worker, f"cart:{held_out}:e1")
            return worker.state.run(f"cart:{held_out}:e1")

    run = asyncio.run(scenario())
    assert (run.arm, run.status, run.exit_reason) == ("holdout", COMPLETED, "holdout")
    assert read_sends(tmp_path / "sends.db") == {"sends": {}, "calls": [], "decisions": []}


@pytest.mark.slow
def test_consent_revoked_mid_journey_refuses_the_next_send(tmp_path: Path) -> None:
    cart = journey(
        OFFER, SEND, {"id": "w", "wait": {"duration": "2h"}}, {"id": "remind", "act": SEND["act"]}
    )
    # revoked an hour in: after the first send, before the reminder
    revoked = {"c1": T0 + dt.timedelta(hours=1)}

    async def scenario() -> None:
        clock = CompressedClock.starting(T0, SPEED)
        async with Worker(tmp_path, [cart], clock, revoked=revoked) as worker:
            await worker.dispatcher.dispatch(cart_event("e1", "c1"))
            await run_over(worker, "cart:c1:e1")
            return worker.state.history("cart:c1:e1")

    history = asyncio.run(scenario())
    acts = [(e["step"], e["status"], e["check"]) for e in history if e["kind"] == "act"]
    assert acts == [("send", "queued", None), ("remind", "refused", "consent")]
    assert list(read_sends(tmp_path / "sends.db")["sends"]) == ["journey:cart:c1:e1:send"]


# --- SIGKILL ---------------------------------------------------------------------------------

CRASH_RUNS = 30
PROCESS = Path(__file__).with_name("journey_process.py")


def start_worker(root: Path) -> subprocess.Popen:
    with (root / "worker.log").open("a") as log:  # the child keeps its own copy
        return subprocess.Popen(
            [sys.executable, str(PROCESS), str(root)],
            cwd=PROCESS.parent,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


def wait_for(what: str, condition: Callable[[], bool], process: subprocess.Popen) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the worker exited ({process.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.02)


@pytest.mark.slow
def test_sigkill_during_waits_and_sends_loses_no_run_and_sends_each_step_once(
    tmp_path: Path,
) -> None:
    clock = CompressedClock.starting(T0, CRASH_SPEED)
    write_clock(Home(tmp_path), clock)  # the clock the worker process reads
    with EventInbox(tmp_path / "events.db") as inbox:
        for i in range(CRASH_RUNS):
            inbox.add(cart_event(f"e{i}", f"c{i}"))
    state = JourneyState(tmp_path / "journeys.db")
    sends = tmp_path / "sends.db"
    CannedPorts(sends, clock.now).close()  # its tables exist before the worker writes

    def unanswered_sends() -> bool:
        return any(not answered for *_, answered in read_sends(sends)["calls"])

    def some_waiting() -> bool:
        return any(r.step in ("w1", "w2") for r in state.runs("cart", statuses=(RUNNING,)))

    first = start_worker(tmp_path)
    try:
        wait_for(
            "a send is in progress while runs wait",
            lambda: unanswered_sends() and some_waiting(),
            first,
        )
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    finally:
        first.kill()
    killed_at = clock.now()
    before = read_sends(sends)
    open_at_kill = {r.run_id for r in state.runs("cart", statuses=OPEN_STATUSES)}

    second = start_worker(tmp_path)
    try:
        wait_for(
            "every run is over",
            lambda: (
                len(state.runs("cart")) == CRASH_RUNS
                and not state.runs("cart", statuses=OPEN_STATUSES)
            ),
            second,
        )
    finally:
        second.kill()
        second.wait()

    runs = state.runs("cart")
    assert {(r.status, r.exit_reason) for r in runs} == {(COMPLETED, "finished")}
    expected = {f"journey:{r.run_id}:{step}" for r in runs for step in ("send", "remind")}
    after = read_sends(sends)
    assert set(after["sends"]) == expected  # one row per (run, act step): 2 × 30
    called = {key for key, *_ in after["calls"]}
    assert called == expected  # no key outside the expected ones was ever committed
    # a send killed after its effect ran again under the new process, with the same key
    killed_in_send = {key for key, pid, answered in before["calls"] if not answered}
    assert killed_in_send and all(
        any(k == key and pid == second.pid for k, pid, _ in after["calls"])
        for key in killed_in_send
    )
    # runs that were open when the worker died went on after the restart
    assert open_at_kill
    for run_id in open_at_kill:
        history = state.history(run_id)
        assert kinds(history)[-1] == COMPLETED
        assert dt.datetime.fromisoformat(history[-1]["at"]) > killed_at
        assert len({e["seq"] for e in history}) == len(history)
    state.close()
