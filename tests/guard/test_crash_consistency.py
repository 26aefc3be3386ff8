"""Crash consistency of the rollout controller (registry in memory, real state files): a
process killed before any change of state of a transition, or a registry that fails for a
while or for good, ends — after the next tick — with record, weights and aliases agreeing;
a rollback ends at weight 0 and an aborted rollout is never promoted."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from rollout_helpers import (
    NAME,
    Crash,
    Killed,
    MemoryRegistry,
    assert_agree,
    crash_on_file_writes,
    write_config,
)

from configs.loader import LiftgateConfig, load_config
from experiments.canary_state import read_split, write_split
from liftgate.app.cli.rollout import format_record
from liftgate.core.home import Home
from liftgate.guard.controller import RolloutController, RolloutError
from liftgate.guard.state import ABORTED, PROMOTED, RUNNING

BEFORE = {"champion": "1", "previous": "0", "challenger": "2"}


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> LiftgateConfig:
    return load_config(write_config(tmp_path_factory.mktemp("guard") / "configs"))


def controller(config: LiftgateConfig, home: Home, registry: MemoryRegistry) -> RolloutController:
    return RolloutController(config, home, registry=registry, drift_check=lambda rollout: None)


def alerts(home: Home) -> list[str]:
    """The alerts raised, oldest first (alerts.jsonl also holds their deliveries)."""
    lines = home.alerts_log.read_text().splitlines() if home.alerts_log.exists() else []
    return [line["alert"] for line in map(json.loads, lines) if "alert" in line]


def started(config: LiftgateConfig, home: Home, registry: MemoryRegistry) -> RolloutController:
    guard = controller(config, home, registry)
    start(guard)
    return guard


def killed_runs(config, tmp_path: Path, monkeypatch, prepare, command) -> Iterator[tuple]:
    """`command` killed just before each change of state it makes in turn (and once run
    whole), each time in a new home where `prepare(guard)` ran first: yields (the change
    it died before, the home, the registry)."""
    changes = None  # how many changes `command` makes, counted on a first, whole run
    at = 0
    while changes is None or at <= changes:
        home = Home(tmp_path / f"{'count' if changes is None else at}").ensure()
        registry = MemoryRegistry(BEFORE)
        prepare(controller(config, home, registry))
        registry.crash = crash = Crash(None if changes is None else at)
        with monkeypatch.context() as patch:
            crash_on_file_writes(patch, crash)
            with contextlib.suppress(Killed):
                command(controller(config, home, registry))
        if changes is None:
            changes = crash.count
            continue
        yield at, home, registry
        at += 1


def start(guard: RolloutController) -> None:
    guard.start(NAME)


#: command → (how to run it on a started rollout, (status, step, weight) once it is done)
COMMANDS: dict[str, tuple[Callable[[RolloutController], object], tuple]] = {
    "step": (lambda guard: guard.promote(NAME), (RUNNING, 1, 0.3)),
    "promote": (lambda guard: guard.promote(NAME, full=True), (PROMOTED, 0, 0.0)),
    "abort": (lambda guard: guard.abort(NAME), (ABORTED, 0, 0.0)),
}


@pytest.mark.parametrize("command", COMMANDS)
def test_a_process_killed_anywhere_in_a_transition_converges_at_the_next_tick(
    config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    run, done = COMMANDS[command]
    for at, home, registry in killed_runs(config, tmp_path, monkeypatch, start, run):
        controller(config, home, registry).tick(NAME)  # a new process: the guard's tick

        record = assert_agree(home, registry.state)
        # Killed before its intent was written, the command never happened; after, it did.
        expected = (RUNNING, 0, 0.1) if at == 0 else done
        assert (record.status, record.step, record.weight) == expected, f"killed at {at}"
    assert at >= 3  # the intent, the weights, the record (and aliases, tags)


def test_an_abort_during_a_half_done_promotion_puts_the_champion_back(
    config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def half_promote(guard: RolloutController) -> None:
        guard.start(NAME)
        guard.registry.crash = Crash(1)  # the champion moved; killed before `previous`
        with pytest.raises(Killed):
            guard.promote(NAME, full=True)
        assert guard.registry.state["champion"] == "2"

    abort = COMMANDS["abort"][0]
    for at, home, registry in killed_runs(config, tmp_path, monkeypatch, half_promote, abort):
        controller(config, home, registry).tick(NAME)

        record = assert_agree(home, registry.state)
        if at == 0:  # the abort died before its intent was written: the promotion finishes
            assert record.status == PROMOTED
            continue
        assert record.status == ABORTED, f"killed at {at}"
        assert registry.state == {"champion": "1", "previous": "0"}
        assert "liftgate.rolled_back_at" in registry.tags["2"]
    assert at >= 3


def test_a_transient_registry_failure_is_retried_within_the_rollback(config, tmp_path) -> None:
    home = Home(tmp_path).ensure()
    registry = MemoryRegistry(BEFORE)
    guard = started(config, home, registry)
    registry.failures = 2
    record = guard.abort(NAME)
    assert record.status == ABORTED and record.pending is None
    assert_agree(home, registry.state)


def test_a_lasting_registry_outage_leaves_the_rollback_at_weight_0_until_it_ends(
    config, tmp_path: Path
) -> None:
    home = Home(tmp_path).ensure()
    registry = MemoryRegistry(BEFORE)
    guard = started(config, home, registry)
    registry.failures = 1_000
    record = guard.abort(NAME)

    assert read_split(home)[0] is None  # the canary is out, and stays out
    assert registry.state["challenger"] == "2"  # the registry could not be changed
    assert record.status == RUNNING and record.pending.action == "rollback"
    shown = guard.status(NAME)  # the on-call's view, registry down
    assert shown.aliases is None and "pending rollback" in format_record(shown.record)
    assert alerts(home)[-1] == "rollout_rollback_failed"
    result = guard.tick(NAME)  # still down: the guard only retries, it never judges
    assert result["verdict"] is None and result["action"]["action"] == "rollback_failed"
    assert read_split(home)[0] is None
    with pytest.raises(RolloutError, match="rollback under way"):
        guard.promote(NAME)

    registry.failures = 0
    assert guard.tick(NAME)["action"]["reconciled"] is True
    assert assert_agree(home, registry.state).status == ABORTED
    assert alerts(home)[-1] == "rollout_rolled_back"


def test_a_promotion_that_cannot_read_the_registry_changes_nothing(config, tmp_path) -> None:
    home = Home(tmp_path).ensure()
    registry = MemoryRegistry(BEFORE)
    guard = started(config, home, registry)
    registry.failures = 1
    guard.promote(NAME, full=True)
    record = assert_agree(home, registry.state)  # the champion was not touched
    assert (record.status, record.weight, record.history[-2]["event"]) == (
        RUNNING,
        0.1,
        "promote_failed",
    )


def test_without_an_intent_the_tick_lowers_the_weights_to_the_record_never_raises_them(
    config, tmp_path: Path
) -> None:
    home = Home(tmp_path).ensure()
    registry = MemoryRegistry(BEFORE)
    guard = started(config, home, registry)
    split = read_split(home)[0]

    home.serving_weights.write_text('{"revision": 7, "spl')  # unreadable: rewritten
    assert guard.tick(NAME)["action"] == {"action": "reconciled", "weight": 0.1, "found": None}
    assert read_split(home)[0].weight == 0.1
    write_split(home, type(split)(**{**split.to_dict(), "weight": 0.5}))  # above: lowered
    assert guard.tick(NAME)["action"]["found"] == 0.5
    assert_agree(home, registry.state)
    write_split(home, None)  # below (stopped by hand): left as it is
    assert guard.tick(NAME)["verdict"]["kind"] == "HOLD"
    assert read_split(home)[0] is None
