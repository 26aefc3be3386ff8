"""The reconcile plan (liftgate/guard/reconcile.py) and the transition that follows it, over
any observed state and any point a process dies at: the next run finishes the intent, and a
rollback ends at weight 0 without ever serving the canary again."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rollout_helpers import Crash, Killed

from liftgate.guard.reconcile import plan, rollback_of
from liftgate.guard.state import ABORTED, PROMOTE, PROMOTED, ROLLED_BACK, STEP, Intent
from liftgate.guard.transition import apply_transition

ALIASES = ("champion", "previous", "challenger")
versions = st.sampled_from(["1", "2", "3"])
weights = st.sampled_from([0.0, 0.05, 0.25, 0.5])
registries = st.dictionaries(st.sampled_from(ALIASES), versions)
intents = st.builds(
    Intent,
    action=st.sampled_from([STEP, PROMOTE, "rollback"]),
    weight=weights,
    aliases=st.dictionaries(st.sampled_from(ALIASES), st.none() | versions),
)


class Weights:
    """The weights file of one rollout; `readable=False`: corrupt until written."""

    def __init__(self, weight: float, crash: Crash, readable: bool = True):
        self.weight, self.crash, self.readable = weight, crash, readable
        self.written: list[float] = []

    def get(self) -> float | None:
        return self.weight if self.readable else None

    def set(self, weight: float) -> None:
        self.crash.step()
        self.weight, self.readable = weight, True
        self.written.append(weight)


class Aliases:
    """The registry's aliases; each one moved is a change of state."""

    def __init__(self, state: dict[str, str], crash: Crash):
        self.state, self.crash = dict(state), crash

    def get(self, names: list[str]) -> dict[str, str | None]:
        return {name: self.state.get(name) for name in names}

    def apply(self, target: dict[str, str | None]) -> None:
        for alias, version in target.items():
            self.crash.step()
            if version is None:
                self.state.pop(alias, None)
            else:
                self.state[alias] = version


def run(weights: Weights, aliases: Aliases, intent: Intent) -> None:
    """One process carrying `intent` out; it may be killed on the way."""
    with contextlib.suppress(Killed):
        apply_transition(weights, aliases, intent, pause_s=0)


@given(intents, st.none() | weights, st.none() | registries)
def test_the_planned_steps_only_lead_to_the_intent_and_leave_nothing_to_do(
    intent, weight, aliases
) -> None:
    steps = plan(intent, weight, aliases)
    assert steps.weight in (None, intent.weight)
    assert steps.aliases.items() <= intent.aliases.items()

    served = weight if steps.weight is None else steps.weight
    moved = {**(aliases or {}), **steps.aliases}
    assert plan(intent, served, {a: v for a, v in moved.items() if v is not None}).done


@given(intents, weights, st.booleans(), registries, st.integers(0, 5))
def test_killed_at_any_change_the_next_run_finishes_the_intent(
    intent, weight, readable, aliases, at
) -> None:
    crash = Crash(at)
    files, registry = Weights(weight, crash, readable), Aliases(aliases, crash)
    run(files, registry, intent)  # killed before change `at` (if it makes that many)
    run(files, registry, intent)  # the next tick

    assert plan(intent, files.get(), registry.state).done
    assert files.written.count(intent.weight) <= 1  # a step already taken is not taken again


@given(weights, st.none() | versions, st.integers(0, 6), st.integers(0, 6))
def test_a_rollback_replacing_a_half_done_promotion_ends_at_weight_0_and_not_promoted(
    weight, previous, promotion_killed_at, rollback_killed_at
) -> None:
    before = {"champion": "1", "challenger": "2"} | ({"previous": previous} if previous else {})
    promotion = Intent(
        action=PROMOTE,
        weight=0.0,
        aliases={"champion": "2", "previous": "1", "challenger": None},
        status=PROMOTED,
        restore={alias: before.get(alias) for alias in ALIASES},
    )
    crash = Crash(promotion_killed_at)
    files, registry = Weights(weight, crash), Aliases(before, crash)
    run(files, registry, promotion)

    rollback = rollback_of(promotion, status=ABORTED, who="alice", why="abort", at="t")
    served_before = len(files.written)
    files.crash = registry.crash = Crash(rollback_killed_at)
    run(files, registry, rollback)
    run(files, registry, rollback)

    assert (rollback.status, files.weight) == (ABORTED, 0.0)
    assert files.written[served_before:] in ([], [0.0])  # the canary never came back
    assert registry.state == {alias: v for alias, v in before.items() if alias != "challenger"}


@pytest.mark.parametrize("pending", [None, Intent(action=STEP, weight=0.5, step=1)])
def test_a_rollback_of_anything_but_a_promotion_only_removes_the_challenger(pending) -> None:
    rollback = rollback_of(pending, status=ROLLED_BACK, who="guard", why="conversion", at="t")
    assert (rollback.weight, rollback.aliases, rollback.status) == (
        0.0,
        {"challenger": None},
        ROLLED_BACK,
    )
    assert rollback.tags == {
        "liftgate.rolled_back_at": "t",
        "liftgate.rolled_back_why": "conversion",
    }
