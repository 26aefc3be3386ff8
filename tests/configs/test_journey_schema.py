"""Tests for the journey schema (configs/journey_schema.py): every validator, read through the
loader's error lines (configs/loader.py `load_file`), so each failure names its key once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from configs.journey_schema import CampaignConfig, JourneyConfig, parse_duration
from configs.loader import ConfigError, load_file


def journey(*steps: dict, **fields: Any) -> dict:
    """A valid journey around `steps` (default: one decide and its act), with `fields` set."""
    steps = steps or (
        {"id": "offer", "decide": {"candidates": ["email_10", "no_action"]}},
        {"id": "send", "act": {"decision": "offer"}},
    )
    return {"name": "welcome", "trigger": {"event": "signup"}, "steps": list(steps), **fields}


def problems_of(raw: dict, tmp_path: Path) -> list[str]:
    """The loader's error lines for `raw` written as a journey file, without the file name."""
    path = tmp_path / "journey.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(ConfigError) as caught:
        load_file(path, JourneyConfig)
    prefix = f"{path}: "
    assert all(p.startswith(prefix) for p in caught.value.problems), caught.value.problems
    return [p.removeprefix(prefix) for p in caught.value.problems]


def only_problem(raw: dict, tmp_path: Path) -> str:
    [problem] = problems_of(raw, tmp_path)
    return problem


def test_a_minimal_journey_takes_the_defaults() -> None:
    config = JourneyConfig.model_validate(journey())
    assert [s.kind for s in config.steps] == ["decide", "act"]
    assert [(a.name, a.weight) for a in config.arms] == [("journey", 1.0)]
    assert config.max_duration == dt.timedelta(days=7)
    assert config.holdout_arms == frozenset()
    assert config.step("send").act is not None


# --- durations --------------------------------------------------------------------------------


@given(st.integers(min_value=1, max_value=10**6), st.sampled_from(["s", "m", "h", "d"]))
def test_a_duration_reads_back_its_number_of_units(n: int, unit: str) -> None:
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    assert parse_duration(f"{n}{unit}") == dt.timedelta(seconds=n * seconds)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90s", 90), ("15m", 900), (" 1.5h ", 5400), ("7d", 604800), (30, 30), (2.5, 2.5)],
)
def test_durations_in_their_forms(text: Any, expected: float) -> None:
    assert parse_duration(text).total_seconds() == pytest.approx(expected)


@pytest.mark.parametrize("bad", ["1w", "h", "", "-1h", True, None, [1]])
def test_a_duration_not_in_the_forms_is_refused(bad: Any) -> None:
    with pytest.raises(ValueError, match="expected a duration such as 90s"):
        parse_duration(bad)


@pytest.mark.parametrize("bad", ["0s", 0, -5])
def test_a_duration_must_be_positive(bad: Any) -> None:
    with pytest.raises(ValueError, match="expected a positive duration"):
        parse_duration(bad)


def test_a_bad_duration_names_its_key_and_what_was_found_once(tmp_path: Path) -> None:
    problem = only_problem(journey({"id": "pause", "wait": {"duration": "1x"}}), tmp_path)
    assert problem.startswith("steps.0.wait.duration: expected a duration such as 90s")
    assert problem.count("found '1x'") == 1


# --- steps ------------------------------------------------------------------------------------


def test_a_step_has_exactly_one_kind(tmp_path: Path) -> None:
    both = {"id": "a", "wait": {"duration": "1h"}, "exit": {}}
    assert only_problem(journey(both), tmp_path) == (
        "steps.0: expected exactly one of wait, decide, act, handoff, branch, exit; "
        "found ['wait', 'exit']"
    )
    assert "found []" in only_problem(journey({"id": "a"}), tmp_path)


def test_an_unknown_key_is_named(tmp_path: Path) -> None:
    problem = only_problem(journey({"id": "a", "wiat": {"duration": "1h"}}), tmp_path)
    assert problem.startswith("steps.0.wiat: unknown key")
    problem = only_problem(journey(colour="red"), tmp_path)
    assert problem == "colour: unknown key (not in the schema); found 'red'"


def test_a_step_id_is_a_lower_case_word(tmp_path: Path) -> None:
    problem = only_problem(journey({"id": "Wait 1", "wait": {"duration": "1h"}}), tmp_path)
    assert problem.startswith("steps.0.id: ")
    assert "'Wait 1'" in problem


@pytest.mark.parametrize(
    ("wait", "expected"),
    [
        ({"duration": "1h", "event": "buy", "timeout": "1d"}, "expected exactly one of duration"),
        ({}, "expected exactly one of duration"),
        ({"event": "buy"}, "a wait for an event needs a timeout"),
        ({"duration": "1h", "timeout": "1d"}, "timeout is only for a wait for an event"),
    ],
)
def test_a_wait_has_one_form(wait: dict, expected: str, tmp_path: Path) -> None:
    problem = only_problem(journey({"id": "w", "wait": wait}), tmp_path)
    assert problem.startswith(f"steps.0.wait: {expected}")


def test_the_wait_forms_load() -> None:
    config = JourneyConfig.model_validate(
        journey(
            {"id": "slot", "decide": {"slots": ["09:00", "18:30"]}},
            {"id": "until_slot", "wait": {"slot": "slot"}},
            {"id": "until_buy", "wait": {"event": "buy", "timeout": "2d"}},
        )
    )
    assert config.step("until_buy").wait.timeout == dt.timedelta(days=2)
    assert config.step("until_slot").wait.slot == "slot"


@pytest.mark.parametrize(
    ("decide", "expected"),
    [
        ({}, "steps.0.decide: expected exactly one of candidates, slots"),
        (
            {"candidates": ["email_10"], "slots": ["09:00"]},
            "steps.0.decide: expected exactly one of candidates, slots",
        ),
        ({"candidates": []}, "steps.0.decide: expected at least one candidate or slot"),
    ],
)
def test_a_decide_has_one_form(decide: dict, expected: str, tmp_path: Path) -> None:
    assert only_problem(journey({"id": "d", "decide": decide}), tmp_path) == expected


def test_a_slot_is_a_time_of_day(tmp_path: Path) -> None:
    problem = only_problem(journey({"id": "d", "decide": {"slots": ["25:00"]}}), tmp_path)
    assert problem.startswith("steps.0.decide.slots.0: ")
    assert "'25:00'" in problem


# --- branch conditions ------------------------------------------------------------------------


def branching(condition: dict) -> dict:
    return journey(
        {"id": "offer", "decide": {"candidates": ["email_10", "no_action"]}},
        {"id": "send", "act": {"decision": "offer"}},
        {"id": "route", "branch": [{"if": condition, "goto": "offer"}]},
    )


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({}, "expected event, decision or act"),
        (
            {"event": "buy", "chosen": ["email_10"]},
            "chosen, expected_value_min, interval_width_min",
        ),
        (
            {"event": "buy", "expected_value_min": 3},
            "chosen, expected_value_min, interval_width_min",
        ),
        ({"act": "send"}, "act and status go together"),
        ({"event": "buy", "status": ["queued"]}, "act and status go together"),
    ],
)
def test_a_condition_is_coherent(condition: dict, expected: str, tmp_path: Path) -> None:
    problem = only_problem(branching(condition), tmp_path)
    assert problem.startswith(f"steps.2.branch.0.if: {expected}")


def test_an_act_status_is_one_of_the_outcomes(tmp_path: Path) -> None:
    problem = only_problem(branching({"act": "send", "status": ["sent"]}), tmp_path)
    assert problem.startswith("steps.2.branch.0.if.status.0: ")
    assert "'queued'" in problem


def test_coherent_conditions_load() -> None:
    for condition in (
        {"event": "buy"},
        {"decision": "offer", "chosen": ["no_action"]},
        {"decision": "offer", "expected_value_min": 40, "interval_width_min": 30},
        {"act": "send", "status": ["refused", "skipped"]},
    ):
        JourneyConfig.model_validate(branching(condition))


def test_a_branch_has_at_least_one_case(tmp_path: Path) -> None:
    problem = only_problem(journey({"id": "route", "branch": []}), tmp_path)
    assert problem.startswith("steps.0.branch: ")


# --- references between steps -----------------------------------------------------------------


def test_a_goto_names_a_step_of_the_journey(tmp_path: Path) -> None:
    raw = journey({"id": "a", "branch": [{"if": {"event": "buy"}, "goto": "nowhere"}]})
    assert only_problem(raw, tmp_path) == (
        "steps.0.branch.0.goto: expected a step id of this journey ['a']; found 'nowhere'"
    )


def test_every_reference_problem_is_a_line_of_its_own(tmp_path: Path) -> None:
    raw = journey(
        {"id": "a", "branch": [{"if": {"event": "buy"}, "goto": "nowhere"}]},
        {"id": "b", "act": {"decision": "a"}},
        {"id": "b", "exit": {}},
    )
    assert problems_of(raw, tmp_path) == [
        "steps: step id 'b' is used twice",
        "steps.0.branch.0.goto: expected a step id of this journey ['a', 'b', 'b']; "
        "found 'nowhere'",
        "steps.1.act.decision: expected a decide step; 'a' is a branch step",
    ]


@pytest.mark.parametrize(
    ("step", "key", "expected"),
    [
        ({"act": {"decision": "send"}}, "act.decision", "expected a decide step; 'send' is a"),
        ({"handoff": {"decision": "wait"}}, "handoff.decision", "expected a decide step; 'wait'"),
        ({"wait": {"slot": "offer"}}, "wait.slot", "expected a decide step over slots"),
        ({"act": {"decision": "slot"}}, "act.decision", "expected a decide step over candidates"),
        ({"handoff": {"decision": "slot"}}, "handoff.decision", "expected a decide step over"),
        (
            {"branch": [{"if": {"decision": "send"}, "goto": "wait"}]},
            "branch.0.if.decision",
            "expected a decide step; 'send' is a act step",
        ),
        (
            {"branch": [{"if": {"act": "offer", "status": ["queued"]}, "goto": "wait"}]},
            "branch.0.if.act",
            "expected a act step; 'offer' is a decide step",
        ),
    ],
)
def test_a_reference_names_a_step_of_the_right_kind(
    step: dict, key: str, expected: str, tmp_path: Path
) -> None:
    raw = journey(
        {"id": "offer", "decide": {"candidates": ["email_10", "no_action"]}},
        {"id": "slot", "decide": {"slots": ["09:00"]}},
        {"id": "send", "act": {"decision": "offer"}},
        {"id": "wait", "wait": {"duration": "1h"}},
        {"id": "probe", **step},
    )
    assert only_problem(raw, tmp_path).startswith(f"steps.4.{key}: {expected}")


def test_a_branch_chooses_among_its_decisions_choices(tmp_path: Path) -> None:
    raw = branching({"decision": "offer", "chosen": ["email_10", "email_99"]})
    assert only_problem(raw, tmp_path) == (
        "steps.2.branch.0.if.chosen: expected choices of 'offer' ['email_10', 'no_action']; "
        "found ['email_99']"
    )
    slotted = journey(
        {"id": "when", "decide": {"slots": ["09:00", "18:00"]}},
        {
            "id": "route",
            "branch": [{"if": {"decision": "when", "chosen": ["18:00"]}, "goto": "when"}],
        },
    )
    JourneyConfig.model_validate(slotted)


# --- arms ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arms", "expected"),
    [
        ([{"name": "a", "weight": 0.5}, {"name": "b", "weight": 0.4}], "arms: expected weights"),
        ([{"name": "a", "weight": 0.5}, {"name": "a", "weight": 0.5}], "arms: arm names must be"),
        ([{"name": "a", "weight": 1.0, "holdout": True}], "arms: expected at least one arm"),
    ],
)
def test_arms_weigh_one_in_total_with_one_treated_arm(
    arms: list, expected: str, tmp_path: Path
) -> None:
    assert only_problem(journey(arms=arms), tmp_path).startswith(expected)


def test_an_arm_weight_is_a_share(tmp_path: Path) -> None:
    arms = [{"name": "a", "weight": 1.5}]
    assert only_problem(journey(arms=arms), tmp_path).startswith("arms.0.weight: ")


def test_a_holdout_split_loads() -> None:
    arms = [{"name": "journey", "weight": 0.9}, {"name": "holdout", "weight": 0.1, "holdout": True}]
    assert JourneyConfig.model_validate(journey(arms=arms)).holdout_arms == {"holdout"}


# --- the rest of a journey, and a campaign ------------------------------------------------------


def test_quiet_hours_and_goal_are_checked(tmp_path: Path) -> None:
    quiet = {"start": "21:00", "end": "21:00"}
    assert only_problem(journey(quiet_hours=quiet), tmp_path).startswith(
        "quiet_hours: start and end are equal"
    )
    goal = {"event": "purchase", "window": "soon"}
    assert only_problem(journey(goal=goal), tmp_path).startswith("goal.window: expected a duration")


def test_a_campaign_needs_candidates(tmp_path: Path) -> None:
    path = tmp_path / "campaign.yaml"
    path.write_text(yaml.safe_dump({"name": "spring", "candidates": []}))
    with pytest.raises(ConfigError, match="candidates"):
        load_file(path, CampaignConfig)
    path.write_text(yaml.safe_dump({"name": "spring", "candidates": ["email_10"], "ttl": "2d"}))
    assert load_file(path, CampaignConfig).ttl == dt.timedelta(days=2)
