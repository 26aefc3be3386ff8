"""Request and response bodies of the HTTP API (they also make the OpenAPI schema)."""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    WithJsonSchema,
)

from configs.loader import LiftgateConfig
from configs.schema import EVENT_NAME_PATTERN, ChannelName, FeatureSpec

ContextValue = str | bool | int | float
# An RFC 3339 date-time; a missing zone is left to the outcome rules, which name it.
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?")


def _date_time(value: Any) -> Any:
    """What the schema's `date-time` promises, and nothing else pydantic would take from
    JSON (epoch seconds as a number or a string). Python callers may pass a datetime."""
    if isinstance(value, datetime) or (isinstance(value, str) and _DATE_TIME.fullmatch(value)):
        return value
    raise ValueError("expected an RFC 3339 date-time string, e.g. 2026-05-01T12:00:00Z")


#: A time as the OpenAPI document says it (a string of format date-time), and only that.
Timestamp = Annotated[datetime, BeforeValidator(_date_time)]


class DecideRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: Annotated[str, Field(min_length=1, max_length=128)]
    context: dict[str, ContextValue] | None = Field(
        None,
        description=(
            "Features known only at request time: those of the feature contract with "
            "`source: request` (configs/features.yaml). Any other key is a 422 naming it and "
            "the allowed keys; what the store knows of the customer cannot be overridden."
        ),
    )
    candidates: Annotated[list[str] | None, Field(min_length=1)] = Field(
        None, description="Action ids to choose among (default: the whole catalogue)."
    )
    request_id: Annotated[str | None, Field(max_length=128)] = None


def decide_request_schema(config: LiftgateConfig) -> dict[str, Any]:
    """DecideRequest's JSON schema as `config` narrows it, so that what the schema allows the
    service takes: `candidates` are action ids of the catalogue (at most `max_candidates`);
    `context` keys are the contract's features with ``source: request``, each with its type,
    range or categories."""
    schema = DecideRequest.model_json_schema()
    for option in schema["properties"]["candidates"]["anyOf"]:
        if option.get("type") == "array":
            option["items"]["enum"] = [action.id for action in config.actions.actions]
            option["maxItems"] = config.serving.max_candidates
    for option in schema["properties"]["context"]["anyOf"]:
        if option.get("type") == "object":
            option["properties"] = {
                spec.name: _context_value(spec)
                for spec in config.features.features
                if spec.source == "request"
            }
            option["additionalProperties"] = False
    return schema


def _context_value(spec: FeatureSpec) -> dict[str, Any]:
    """The values `FeatureContract.context_errors` takes for a feature."""
    if spec.dtype == "category":
        return {"type": "string", "enum": list(spec.categories or ())}
    if spec.dtype == "bool":
        return {"type": "boolean"}
    if spec.range is None:
        return {"type": "number"}
    return {"type": "number", "minimum": spec.range[0], "maximum": spec.range[1]}


class Confidence(BaseModel):
    low: float
    high: float
    level: float
    method: str


class RankedAction(BaseModel):
    action: str
    expected_value: float | None
    conversion_probability: float | None
    order_value: float | None
    confidence: Confidence | None


class ModelRef(BaseModel):
    name: str
    version: str | None
    alias: str


class DecideResponse(BaseModel):
    decision_id: str
    customer_id: str
    ranked: list[RankedAction]
    chosen: str
    propensity: float
    policy: str
    model: ModelRef
    experiment: str | None
    arm: str | None
    fallback: bool
    fallback_reason: str | None
    cold_start: bool
    trace_id: str
    request_id: str | None
    latency_ms: float


class OutcomeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision_id: Annotated[str, Field(min_length=1, max_length=128)]
    event: Annotated[str, Field(pattern=EVENT_NAME_PATTERN)] = Field(
        description=(
            "An event of serving.yaml `outcomes.events` (conversion, revenue); one outcome "
            "per decision and event: a repeat gets the first answer and is not logged again."
        )
    )
    value: Annotated[float, Field(allow_inf_nan=False)] = Field(
        1.0, description="Within the event's bounds (serving.yaml `outcomes.events`)."
    )
    ts: Timestamp | None = Field(
        None,
        description=(
            "When it happened (default: now), with zone: between the decision and now, give "
            "or take the allowed clock skew (serving.yaml `outcomes`)."
        ),
    )


class OutcomeResponse(BaseModel):
    outcome_id: str
    decision_id: str
    known_decision: bool


class ActionRequest(BaseModel):
    """`POST /v1/actions`: commit the action a decision offered to a channel."""

    model_config = ConfigDict(extra="forbid")

    decision_id: Annotated[str, Field(min_length=1, max_length=128)] = Field(
        description="The decision that offered the action (its `decision_id`)."
    )
    action: Annotated[str, Field(min_length=1, max_length=128)] = Field(
        description="An action the decision offered as eligible (in its `ranked`)."
    )
    channel: ChannelName = Field(description="The action's channel (actions.yaml).")
    campaign_id: Annotated[str, Field(min_length=1, max_length=128)]
    idempotency_key: Annotated[str, Field(min_length=1, max_length=200)] = Field(
        description=(
            "The same key with the same request gets the first answer again (`replayed`) and "
            "is delivered at most once; with a different request, a 409 (`idempotency`)."
        )
    )
    ttl_seconds: Annotated[float | None, Field(gt=0, allow_inf_nan=False)] = Field(
        None,
        description=(
            "How long after the decision the action may be sent (default "
            "serving.actions.default_ttl_s, at most max_ttl_s)."
        ),
    )
    dry_run: bool = Field(False, description="Every check, logged; nothing is delivered.")
    creative_id: Annotated[str | None, Field(min_length=1, max_length=128)] = Field(
        None, description="An approved creative (liftgate creative review)."
    )
    send_at: Timestamp | None = Field(
        None,
        description="When to send (default: now), with zone: not in the past, within the TTL.",
    )


def action_request_schema(config: LiftgateConfig) -> dict[str, Any]:
    """ActionRequest's JSON schema with the configured TTL: its default and maximum."""
    schema = ActionRequest.model_json_schema()
    settings = config.serving.actions
    for option in schema["properties"]["ttl_seconds"]["anyOf"]:
        if option.get("type") == "number":
            option["maximum"] = settings.max_ttl_s
    schema["properties"]["ttl_seconds"]["default"] = settings.default_ttl_s
    return schema


class ActionAccepted(BaseModel):
    """202: the action passed every check and is queued for delivery (or, a dry run, would
    be)."""

    action_id: str = Field(description="The correlation id: GET /v1/actions/{action_id}.")
    status: Literal["queued", "dry_run"]
    idempotency_key: str
    replayed: bool = Field(description="True: the answer a request with this key got before.")
    checks_passed: list[str]
    dry_run: bool


class ActionRefused(BaseModel):
    """409: a check refused the action (stored under its idempotency key: a retry gets the
    same answer)."""

    status: Literal["refused"]
    check: str = Field(
        description=(
            "decision, action, ttl, consent, creative, quiet_hours, caps; or idempotency "
            "(the key was used with a different request)"
        )
    )
    detail: str = Field(description="Why, in words.")
    action_id: str
    replayed: bool
    dry_run: bool


class ActionEvent(BaseModel):
    ts: str
    status: str = Field(description="queued, refused, dry_run, attempt_failed, delivered or failed")
    detail: str


class ActionState(BaseModel):
    """An action's status and its history, oldest first."""

    action_id: str
    status: Literal["queued", "delivered", "failed", "refused", "dry_run"]
    idempotency_key: str
    decision_id: str
    action: str
    channel: str
    campaign_id: str
    creative_id: str | None
    send_at: str | None
    expires_at: str | None
    dry_run: bool
    check: str | None
    detail: str | None
    created_at: str
    history: list[ActionEvent]


#: A channel a customer can consent to (every contact channel; `none` contacts no one).
ConsentChannel = Literal["email", "push", "sms", "web"]


class ConsentRequest(BaseModel):
    """`PUT /v1/consent/{customer_id}`: the customer's consent per channel, as of `ts`."""

    model_config = ConfigDict(extra="forbid")

    channels: Annotated[
        dict[ConsentChannel, StrictBool],
        Field(min_length=1, description="Per channel: true grants consent, false revokes it."),
    ]
    ts: Timestamp | None = Field(
        None,
        description="When the customer gave or withdrew consent (default: now). A change "
        "older than the one stored for a channel is not applied (`applied: false`).",
    )
    source: Annotated[str, Field(min_length=1, max_length=64)] = "api"


class ChannelConsent(BaseModel):
    granted: bool
    ts: str
    source: str
    applied: bool


class ConsentResponse(BaseModel):
    customer_id: str
    channels: dict[str, ChannelConsent]


#: An event type, as journey triggers name them (configs/journey_schema.py).
EVENT_TYPE_PATTERN = r"^[a-z][a-z0-9_-]*$"
MAX_PROPERTY_TEXT = 1024


def _event_property(value: Any) -> str | int | float | bool:
    """A scalar, checked in one step: a bad value is one error naming the property, not
    one per type it could have been."""
    if isinstance(value, bool | int) or (isinstance(value, float) and math.isfinite(value)):
        return value
    if isinstance(value, str) and len(value) <= MAX_PROPERTY_TEXT:
        return value
    raise ValueError(
        f"expected text (at most {MAX_PROPERTY_TEXT} characters), a finite number or "
        f"true/false; got {type(value).__name__}"
    )


#: A property of a customer event: a scalar.
EventProperty = Annotated[
    str | int | float | bool,
    PlainValidator(_event_property),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "maxLength": MAX_PROPERTY_TEXT},
                {"type": "number"},
                {"type": "boolean"},
            ]
        }
    ),
]


class EventRequest(BaseModel):
    """`POST /v1/events`: something a customer did, kept once per `event_id`."""

    model_config = ConfigDict(extra="forbid")

    event_id: Annotated[str, Field(min_length=1, max_length=128)] = Field(
        description="The app's id of the event: a repeat is accepted once (`duplicate: true`)."
    )
    customer_id: Annotated[str, Field(min_length=1, max_length=128)]
    type: Annotated[str, Field(pattern=EVENT_TYPE_PATTERN, max_length=64)] = Field(
        description="What happened, e.g. cart_abandoned, purchase, unsubscribe."
    )
    properties: Annotated[
        dict[Annotated[str, Field(min_length=1, max_length=64)], EventProperty],
        Field(max_length=64),
    ] = Field(default_factory=dict, description="Scalars only: text, numbers, true/false.")
    ts: Timestamp | None = Field(
        None,
        description=(
            "When it happened (default: now), with zone: not after now by more than the "
            "allowed clock skew, nor older than the maximum age (serving.yaml `outcomes`)."
        ),
    )


class EventAccepted(BaseModel):
    event_id: str
    accepted: bool
    duplicate: bool = Field(description="True: an event with this id was taken before.")
    ts: str = Field(description="When the event kept under this id happened (the first one).")


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Where: body, header or path, then the field.")
    msg: str = Field(description="What was expected.")
    type: str


class ErrorAnswer(BaseModel):
    """Every 4xx answer: what is wrong, field by field."""

    detail: list[FieldError]
