"""Request and response bodies of the HTTP API (they also make the OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

ContextValue = str | bool | int | float


class DecideRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: Annotated[str, Field(min_length=1, max_length=128)]
    context: dict[str, ContextValue] | None = Field(
        None, description="Attributes known at request time (contract features), e.g. device."
    )
    candidates: Annotated[list[str] | None, Field(min_length=1)] = Field(
        None, description="Action ids to choose among (default: the whole catalogue)."
    )
    request_id: Annotated[str | None, Field(max_length=128)] = None


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
    event: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")] = Field(
        description="conversion, revenue, or another event name"
    )
    value: Annotated[float, Field(allow_inf_nan=False)] = 1.0
    ts: datetime | None = Field(None, description="When it happened (default: now); with zone.")


class OutcomeResponse(BaseModel):
    outcome_id: str
    decision_id: str
    known_decision: bool
