"""The schema of a journey (`configs/journeys/*.yaml`) and of a bulk campaign file.

A journey is an event-triggered sequence of steps run once per (journey, customer, trigger
event): `wait` (a duration, or until an event with a timeout), `decide` (candidates through
the decision service, or send-time slots), `act` (a decision's action through the commit
checks of `/v1/actions`), `handoff` (the customer to a person's queue), `branch` (on an
event, a decision or an act's outcome) and `exit`. Steps run in order; a branch's first
matching case jumps to its `goto`; the end of the list is an exit.

Durations are written `90s`, `15m`, `1h`, `7d` (or a number of seconds).

>>> journey = JourneyConfig.model_validate({
...     "name": "welcome", "trigger": {"event": "signup"},
...     "steps": [{"id": "pause", "wait": {"duration": "1h"}},
...               {"id": "offer", "decide": {"candidates": ["email_10", "no_action"]}},
...               {"id": "send", "act": {"decision": "offer"}}]})
>>> journey.steps[0].wait.duration, journey.steps[2].kind
(datetime.timedelta(seconds=3600), 'act')
>>> from pydantic import ValidationError
>>> try:
...     JourneyConfig.model_validate({"name": "x", "trigger": {"event": "e"},
...         "steps": [{"id": "a", "branch": [{"if": {"event": "buy"}, "goto": "nowhere"}]}]})
... except ValidationError as error:
...     print(error.errors()[0]["msg"])
Value error, steps.0.branch.0.goto: expected a step id of this journey ['a']; found 'nowhere'
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)

from configs.schema import QuietHours

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> dt.timedelta:
    """`90s`, `15m`, `1h`, `7d`, or a number of seconds, as a positive timedelta.

    >>> parse_duration("36h"), parse_duration(90)
    (datetime.timedelta(days=1, seconds=43200), datetime.timedelta(seconds=90))
    """
    if isinstance(value, dt.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError(f"expected a duration such as 90s, 15m, 1h or 7d; found {value!r}")
    if seconds <= 0:
        raise ValueError(f"expected a positive duration; found {value!r}")
    return dt.timedelta(seconds=seconds)


#: In JSON (a run's kept configuration) a duration is its number of seconds, read back alike.
Duration = Annotated[
    dt.timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(lambda d: d.total_seconds(), return_type=float, when_used="json"),
]
StepId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$")]
Scalar = str | int | float | bool


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Comparison(Strict):
    """A comparison of one property; every given bound must hold."""

    eq: Scalar | None = None
    ne: Scalar | None = None
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None
    in_: Annotated[list[Scalar] | None, Field(alias="in")] = None


#: property name → a value it must equal, or a comparison.
Where = dict[str, Scalar | Comparison]


class Trigger(Strict):
    event: Name
    where: Where = {}


class Entry(Strict):
    """Who may enter: a channel the customer must have granted (checked at entry), and no
    re-entry into this journey within `cooldown` of the last entry."""

    consent: str | None = None
    cooldown: Duration | None = None


class Arm(Strict):
    name: Name
    weight: Annotated[float, Field(gt=0, le=1)]
    holdout: bool = False  # enters, is counted for the analysis, gets no step at all


class Goal(Strict):
    """The journey's goal metric: conversions are `event`s within `window` of entry; their
    revenue is the event's `value` property."""

    event: Name
    value: str | None = None
    window: Duration = dt.timedelta(days=3)


class Wait(Strict):
    duration: Duration | None = None
    event: Name | None = None  # wait for this event …
    timeout: Duration | None = None  # … at most this long
    slot: StepId | None = None  # until the send-time chosen by this `decide` step

    @model_validator(mode="after")
    def _one_form(self) -> Wait:
        forms = [self.duration is not None, self.event is not None, self.slot is not None]
        if sum(forms) != 1:
            raise ValueError("expected exactly one of duration, event (with a timeout), slot")
        if self.event is not None and self.timeout is None:
            raise ValueError("a wait for an event needs a timeout")
        if self.event is None and self.timeout is not None:
            raise ValueError("timeout is only for a wait for an event")
        return self


class Decide(Strict):
    """Through the decision service (`candidates`: action ids), or a choice of send-time
    (`slots`: HH:MM in the journey's quiet-hours zone, learned by a Thompson-sampling bandit
    on the goal)."""

    candidates: list[str] | None = None
    slots: list[Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Decide:
        if (self.candidates is None) == (self.slots is None):
            raise ValueError("expected exactly one of candidates, slots")
        if len(self.candidates or self.slots or ()) < 1:
            raise ValueError("expected at least one candidate or slot")
        return self


class Act(Strict):
    """Commit the chosen action of the `decide` step `decision` to its channel, through
    every check of `/v1/actions`; the idempotency key is the run and this step."""

    decision: StepId
    campaign: str | None = None  # default: the journey's name
    ttl: Duration | None = None


class Handoff(Strict):
    """Put the customer and the decision on a person's queue instead of sending."""

    decision: StepId
    queue: Name = "agent"


class Condition(Strict):
    """What a branch case tests; every given part must hold.

    - `event`: an event of this type arrived for the customer during the run;
    - `decision` (a decide step) with `chosen` (its action or slot is one of these),
      `expected_value_min` and/or `interval_width_min` (of the chosen action's score);
    - `act` (an act step) with `status` (queued, dry_run, refused, skipped).
    """

    event: Name | None = None
    decision: StepId | None = None
    chosen: list[str] | None = None
    expected_value_min: float | None = None
    interval_width_min: float | None = None
    act: StepId | None = None
    status: list[Literal["queued", "dry_run", "refused", "skipped"]] | None = None

    @model_validator(mode="after")
    def _coherent(self) -> Condition:
        if self.event is None and self.decision is None and self.act is None:
            raise ValueError("expected event, decision or act")
        on_decision = (self.chosen, self.expected_value_min, self.interval_width_min)
        if self.decision is None and any(v is not None for v in on_decision):
            raise ValueError("chosen, expected_value_min, interval_width_min need a decision")
        if (self.act is None) != (self.status is None):
            raise ValueError("act and status go together")
        return self


class Case(Strict):
    if_: Annotated[Condition, Field(alias="if")]
    goto: StepId


class Exit(Strict):
    reason: Name = "finished"


StepKind = Literal["wait", "decide", "act", "handoff", "branch", "exit"]
STEP_KINDS: tuple[str, ...] = ("wait", "decide", "act", "handoff", "branch", "exit")


class Step(Strict):
    id: StepId
    wait: Wait | None = None
    decide: Decide | None = None
    act: Act | None = None
    handoff: Handoff | None = None
    branch: Annotated[list[Case], Field(min_length=1)] | None = None
    exit: Exit | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Step:
        given = [kind for kind in STEP_KINDS if getattr(self, kind) is not None]
        if len(given) != 1:
            raise ValueError(f"expected exactly one of {', '.join(STEP_KINDS)}; found {given}")
        return self

    @property
    def kind(self) -> StepKind:
        return next(kind for kind in STEP_KINDS if getattr(self, kind) is not None)  # type: ignore[return-value]


class JourneyConfig(Strict):
    name: Name
    description: str = ""
    group: Name | None = None  # one active run per customer across the journeys of a group
    trigger: Trigger
    entry: Entry = Entry()
    exit_on: list[Name] = []  # events that end a run at once (conversion, unsubscribe)
    quiet_hours: QuietHours | None = None  # sends due inside wait until they end
    max_duration: Duration = dt.timedelta(days=7)
    goal: Goal | None = None
    arms: list[Arm] = [Arm(name="journey", weight=1.0)]
    steps: Annotated[list[Step], Field(min_length=1)]

    @model_validator(mode="after")
    def _references(self) -> JourneyConfig:
        problems = _reference_problems(self)
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def step(self, step_id: str) -> Step:
        return next(step for step in self.steps if step.id == step_id)

    @property
    def holdout_arms(self) -> frozenset[str]:
        return frozenset(arm.name for arm in self.arms if arm.holdout)


def _reference_problems(journey: JourneyConfig) -> list[str]:
    """Step ids unique; every goto, decision and act a step of the right kind (an act or a
    handoff a decide over candidates, a wait's slot a decide over slots); a branch's `chosen`
    among its decision's candidates or slots; arm weights summing to 1."""
    ids = [step.id for step in journey.steps]
    steps = {step.id: step for step in journey.steps}
    problems = [
        f"steps: step id {i!r} is used twice" for i in sorted({i for i in ids if ids.count(i) > 1})
    ]

    def refer(key: str, target: str | None, kind: str | None = None, form: str = "") -> Step | None:
        """The step `target` if it exists and is of `kind` (a decide over `form`), else None
        with the problem noted."""
        if target is None:
            return None
        step = steps.get(target)
        if step is None:
            problems.append(f"{key}: expected a step id of this journey {ids}; found {target!r}")
        elif kind is not None and step.kind != kind:
            problems.append(f"{key}: expected a {kind} step; {target!r} is a {step.kind} step")
        elif form and step.decide is not None and getattr(step.decide, form) is None:
            problems.append(f"{key}: expected a decide step over {form}; {target!r} is not")
        else:
            return step
        return None

    for i, step in enumerate(journey.steps):
        key = f"steps.{i}"
        if step.act is not None:
            refer(f"{key}.act.decision", step.act.decision, "decide", "candidates")
        if step.handoff is not None:
            refer(f"{key}.handoff.decision", step.handoff.decision, "decide", "candidates")
        if step.wait is not None:
            refer(f"{key}.wait.slot", step.wait.slot, "decide", "slots")
        for j, case in enumerate(step.branch or ()):
            refer(f"{key}.branch.{j}.goto", case.goto)
            refer(f"{key}.branch.{j}.if.act", case.if_.act, "act")
            decision = refer(f"{key}.branch.{j}.if.decision", case.if_.decision, "decide")
            if decision is not None and decision.decide is not None and case.if_.chosen:
                offered = decision.decide.candidates or decision.decide.slots or []
                unknown = [c for c in case.if_.chosen if c not in offered]
                if unknown:
                    problems.append(
                        f"{key}.branch.{j}.if.chosen: expected choices of {decision.id!r} "
                        f"{offered}; found {unknown}"
                    )
    names = [arm.name for arm in journey.arms]
    if len(set(names)) != len(names):
        problems.append(f"arms: arm names must be unique; found {names}")
    total = sum(arm.weight for arm in journey.arms)
    if abs(total - 1.0) > 1e-9:
        problems.append(f"arms: expected weights summing to 1; found {total:g}")
    if all(arm.holdout for arm in journey.arms):
        problems.append("arms: expected at least one arm that is not a holdout")
    return problems


class Segment(Strict):
    """Which customers of the online store's table a campaign reaches."""

    where: Where = {}
    limit: Annotated[int | None, Field(gt=0)] = None


class CampaignConfig(Strict):
    """A bulk campaign (`liftgate campaign run FILE`): a segment scored in batch with the
    online contract and models, its decisions logged as served ones, its actions committed
    through the checks and queued to the outbox at `rate_per_s`."""

    name: Name
    description: str = ""
    segment: Segment = Segment()
    candidates: Annotated[list[str], Field(min_length=1)]
    rate_per_s: Annotated[float, Field(gt=0)] = 50.0
    ttl: Duration = dt.timedelta(hours=24)
