"""The guard's loop (liftgate/guard/loop.py) in a thread, as `liftgate serve` runs it: its
first iteration finishes what a crash or an outage left pending, and nothing in the files
stops it — a corrupt rollout record is alerted once and skipped."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from rollout_helpers import NAME, MemoryRegistry, assert_agree, write_config

from configs.loader import load_config
from liftgate.core.home import Home
from liftgate.guard import loop
from liftgate.guard.controller import RolloutController
from liftgate.guard.state import ABORTED


@pytest.fixture
def guarding(monkeypatch: pytest.MonkeyPatch):
    """Run `guard_loop` in a thread (polling fast when idle); yields `start(controller)`
    → the list of what each iteration reported; stops the thread after the test."""
    monkeypatch.setattr(loop, "IDLE_POLL_S", 0.01)
    monkeypatch.delenv("LIFTGATE_ALERT_WEBHOOK", raising=False)
    stop, threads = threading.Event(), []

    def start(controller) -> tuple[threading.Thread, list]:
        reports: list[list[dict]] = []
        thread = threading.Thread(target=loop.guard_loop, args=(controller, stop, reports.append))
        thread.start()
        threads.append(thread)
        return thread, reports

    yield start
    stop.set()
    for thread in threads:
        thread.join(timeout=10)


def test_the_guard_finishes_a_pending_rollback_and_survives_a_corrupt_record(
    tmp_path: Path, guarding, wait_until
) -> None:
    home = Home(tmp_path / "home").ensure()
    registry = MemoryRegistry({"champion": "1", "challenger": "2"})
    guard = RolloutController(load_config(write_config(tmp_path / "configs")), home, registry)
    guard.start(NAME)
    registry.failures = 1_000  # an outage: the abort stays pending at weight 0
    assert guard.abort(NAME).pending is not None
    registry.failures = 0
    home.rollout_record("broken").write_text('{"name": "broken", "status": "runn')

    thread, reports = guarding(guard)
    assert wait_until(lambda: len(reports) >= 3)

    assert thread.is_alive()
    assert assert_agree(home, registry.state).status == ABORTED  # at the guard's start
    assert all({"rollout": "broken", "error": reports[0][0]["error"]} in r for r in reports)
    alerts = [json.loads(line) for line in home.alerts_log.read_text().splitlines()]
    unreadable = [a for a in alerts if a.get("alert") == "rollout_record_unreadable"]
    assert len(unreadable) == 1 and "broken.json: not a JSON document" in unreadable[0]["summary"]


class FailingOnce:
    """A controller whose first iteration fails in every call (as when the rollouts
    directory cannot be read for a moment), and whose next ones find nothing to do."""

    def __init__(self) -> None:
        self.iterations = 0

    def guard_once(self) -> list:
        self.iterations += 1
        return self.active()

    def active(self) -> list:
        if self.iterations == 1:
            raise OSError("rollouts: input/output error")
        return []


def test_an_iteration_that_fails_anywhere_does_not_end_the_loop(guarding, wait_until) -> None:
    controller = FailingOnce()
    thread, _ = guarding(controller)
    assert wait_until(lambda: controller.iterations >= 3)
    assert thread.is_alive()
