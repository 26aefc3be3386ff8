"""What a journey does next: entry rules, arms, branches, quiet hours and send-time slots.

Pure functions of the journey's configuration and what a run knows (`Facts`); the workflow
(`liftgate.journeys.runs`) calls them and the engine makes their inputs durable.

>>> import datetime as dt
>>> from configs.journey_schema import JourneyConfig
>>> journey = JourneyConfig.model_validate({
...     "name": "welcome", "trigger": {"event": "signup"},
...     "quiet_hours": {"start": "21:00", "end": "08:00"},
...     "steps": [{"id": "offer", "decide": {"candidates": ["email_10", "no_action"]}},
...               {"id": "skip", "branch": [{"if": {"decision": "offer", "chosen": ["no_action"]},
...                                          "goto": "done"}]},
...               {"id": "send", "act": {"decision": "offer"}},
...               {"id": "done", "exit": {}}]})
>>> facts = Facts(decisions={"offer": {"chosen": "no_action"}})
>>> journey.steps[next_index(journey, 1, facts)].id
'done'
>>> late = dt.datetime(2026, 3, 1, 22, 30, tzinfo=dt.UTC)
>>> quiet_until(late, journey.quiet_hours).isoformat()
'2026-03-02T08:00:00+00:00'
>>> quiet_until(late.replace(hour=12), journey.quiet_hours) is None
True
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from configs.journey_schema import Condition, JourneyConfig
from configs.schema import QuietHours
from experiments.assignment import arm_of, initial_ranges, unit_point
from liftgate.governance.checks import in_quiet_hours

#: Why a trigger event did not start a run.
NO_CONSENT, COOLDOWN, IN_GROUP, PAUSED_JOURNEY = "consent", "cooldown", "group", "paused"


@dataclass
class Facts:
    """What a run has learned so far: the events it received (by type), its decisions (the
    decide steps' results) and its acts' statuses."""

    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    decisions: dict[str, dict[str, Any]] = field(default_factory=dict)
    acts: dict[str, str] = field(default_factory=dict)


def holds(condition: Condition, facts: Facts) -> bool:
    """Whether a branch case's condition holds; every given part must."""
    if condition.event is not None and condition.event not in facts.events:
        return False
    if condition.decision is not None:
        decision = facts.decisions.get(condition.decision)
        if decision is None:
            return False
        if condition.chosen is not None and decision.get("chosen") not in condition.chosen:
            return False
        for key, bound in (
            ("expected_value", condition.expected_value_min),
            ("interval_width", condition.interval_width_min),
        ):
            if bound is not None and not (decision.get(key) is not None and decision[key] >= bound):
                return False
    if condition.act is not None:
        status = facts.acts.get(condition.act)
        if status is None or status not in (condition.status or ()):
            return False
    return True


def next_index(journey: JourneyConfig, index: int, facts: Facts) -> int:
    """The index of the step after step `index`: a branch's first matching case's `goto`,
    else the next in order (len(steps): the run is over)."""
    step = journey.steps[index]
    for case in step.branch or ():
        if holds(case.if_, facts):
            return next(i for i, s in enumerate(journey.steps) if s.id == case.goto)
    return index + 1


def arm_for(journey: JourneyConfig, customer_id: str) -> str:
    """The customer's arm of the journey: sticky (a hash of the journey's name and the
    customer, as experiments assign units: `experiments.assignment`)."""
    ranges = initial_ranges({arm.name: arm.weight for arm in journey.arms})
    return (
        arm_of(ranges, unit_point(f"journey:{journey.name}", customer_id)) or journey.arms[-1].name
    )


def entry_refusal(
    journey: JourneyConfig,
    *,
    at: dt.datetime,
    consent_granted: bool,
    last_entry: dt.datetime | None,
    in_group: bool,
    paused: bool,
) -> str | None:
    """Why the customer may not enter now (None: they may)."""
    if paused:
        return PAUSED_JOURNEY
    if journey.entry.consent is not None and not consent_granted:
        return NO_CONSENT
    cooldown = journey.entry.cooldown
    if cooldown is not None and last_entry is not None and at - last_entry < cooldown:
        return COOLDOWN
    if journey.group is not None and in_group:
        return IN_GROUP
    return None


def quiet_until(now: dt.datetime, quiet: QuietHours | None) -> dt.datetime | None:
    """When the quiet hours `now` is in end (None: not in them)."""
    if quiet is None or not in_quiet_hours(now, quiet):
        return None
    return next_time_of_day(now, quiet.end, quiet.timezone)


def next_time_of_day(now: dt.datetime, hh_mm: str, timezone: str = "UTC") -> dt.datetime:
    """The first moment at or after `now` whose local time in `timezone` is `hh_mm` (UTC)."""
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    hour, minute = (int(part) for part in hh_mm.split(":"))
    candidate = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if candidate < local:
        candidate = (candidate + dt.timedelta(days=1)).replace(hour=hour, minute=minute)
    return candidate.astimezone(dt.UTC)


def decision_facts(answer: Mapping[str, Any]) -> dict[str, Any]:
    """What a run keeps of a decision service answer: the id, the chosen action, its
    propensity and arm, and the chosen action's expected value and interval width."""
    chosen = next((r for r in answer["ranked"] if r["action"] == answer["chosen"]), {})
    confidence = chosen.get("confidence") or {}
    low, high = confidence.get("low"), confidence.get("high")
    return {
        "decision_id": answer["decision_id"],
        "chosen": answer["chosen"],
        "propensity": answer["propensity"],
        "policy": answer["policy"],
        "experiment": answer.get("experiment"),
        "arm": answer.get("arm"),
        "expected_value": chosen.get("expected_value"),
        "interval_width": None if low is None or high is None else high - low,
        "fallback": answer.get("fallback", False),
    }
