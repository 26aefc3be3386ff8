"""The records of the decision, outcome, action and event logs, and the Arrow schemas derived
from them.

A :class:`DecisionRecord` is one ``POST /v1/decide`` answer, an :class:`OutcomeRecord` one
reported outcome, an :class:`ActionRecord` one commit or delivery attempt of an action, an
:class:`EventRecord` one customer event taken by ``POST /v1/events``.
Their dataclass fields are the one definition of the log columns: :func:`arrow_schema`
turns each field's name and type into an Arrow field (``str`` → string, ``float`` →
float64, ``int`` → int64, ``bool`` → bool, ``datetime`` → UTC timestamp in µs,
``Sequence[T]`` → list of ``T``; ``T | None`` is nullable, anything else required), in
field order. :func:`to_table` and :func:`from_table` convert between records
and Arrow tables of that schema.

>>> import datetime as dt
>>> outcome = OutcomeRecord(
...     outcome_id="o1", decision_id="d1", ts=dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC),
...     event=REVENUE_EVENT, value=19.5, received_ts=dt.datetime(2024, 5, 1, 13, tzinfo=dt.UTC),
...     known_decision=True,
... )
>>> OUTCOME_SCHEMA.field("ts").type, OUTCOME_SCHEMA.field("value").nullable
(TimestampType(timestamp[us, tz=UTC]), False)
>>> table = to_table(OutcomeRecord, [outcome])
>>> table.schema == OUTCOME_SCHEMA, from_table(OutcomeRecord, table) == [outcome]
(True, True)
"""

from __future__ import annotations

import datetime as dt
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from functools import cache
from operator import attrgetter
from typing import Any, Final, TypeVar, get_args, get_origin, get_type_hints

import pyarrow as pa

TIMESTAMP = pa.timestamp("us", tz="UTC")
#: The column both logs are partitioned on (by its UTC date, hive style ``date=…``).
TIME_COLUMN = "ts"
PARTITION_COLUMN = "date"
CONVERSION_EVENT = "conversion"
REVENUE_EVENT = "revenue"

Record = TypeVar("Record")

_SCALARS: dict[Any, pa.DataType] = {
    str: pa.string(),
    float: pa.float64(),
    int: pa.int64(),
    bool: pa.bool_(),
    dt.datetime: TIMESTAMP,
}
# Raised by pa.array for a value that does not fit the column's type.
_MISFITS = (pa.ArrowException, TypeError, ValueError, OverflowError)


@dataclass(frozen=True, slots=True, kw_only=True)
class DecisionRecord:
    """One decision as logged: what was asked, what the model said, what was chosen.

    ``actions`` are the eligible candidates in ranked order; ``scores`` (expected values)
    and ``probabilities`` (conversion) are aligned with them, NaN when no model scored
    (a fallback). ``propensity`` is the probability that ``chosen`` was drawn with.
    """

    decision_id: str
    ts: dt.datetime
    customer_id: str
    features: Sequence[float]
    contract_version: str
    actions: Sequence[str]
    scores: Sequence[float]
    probabilities: Sequence[float]
    chosen: str
    propensity: float
    policy: str
    model_name: str
    model_version: str
    model_alias: str
    experiment: str | None = None
    arm: str | None = None
    fallback: bool
    fallback_reason: str | None = None
    cold_start: bool
    latency_ms: float
    trace_id: str
    request_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OutcomeRecord:
    """One reported outcome of a decision: ``ts`` is when it happened (the app's clock),
    ``received_ts`` when the service logged it; ``known_decision`` says whether the
    service had issued ``decision_id``."""

    outcome_id: str
    decision_id: str
    ts: dt.datetime
    event: str
    value: float
    received_ts: dt.datetime
    known_decision: bool


# An action's statuses, as the action store keeps them and the action log records them.
QUEUED: Final = "queued"
DELIVERED: Final = "delivered"
FAILED: Final = "failed"
REFUSED: Final = "refused"
DRY_RUN: Final = "dry_run"
ACTION_STATUSES: Final = (QUEUED, DELIVERED, FAILED, REFUSED, DRY_RUN)
#: A failed attempt that will be retried (the action stays queued).
ATTEMPT_FAILED: Final = "attempt_failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionRecord:
    """One step of a governed action (``POST /v1/actions``): its commit — ``status``
    ``queued``, ``refused`` (``check`` names the check that refused it) or ``dry_run`` —,
    and each delivery attempt (``attempt`` 1, 2, …; 0 for the commit) with what became of
    it. ``customer_id`` is None when the decision was unknown; ``detail`` says why, in
    words."""

    action_id: str
    ts: dt.datetime
    decision_id: str
    customer_id: str | None = None
    action: str
    channel: str
    campaign_id: str
    creative_id: str | None = None
    status: str
    check: str | None = None
    detail: str
    dry_run: bool
    attempt: int
    idempotency_key: str


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRecord:
    """One customer event (``POST /v1/events``): ``ts`` is when it happened (the app's
    clock), ``received_ts`` when the service logged it; ``properties`` is the event's
    scalar properties as a JSON object (a column type that fits any set of keys)."""

    event_id: str
    ts: dt.datetime
    customer_id: str
    type: str
    properties: str
    received_ts: dt.datetime


@cache
def arrow_schema(record_type: type) -> pa.Schema:
    """The Arrow schema of a record dataclass: one field per dataclass field, in order."""
    hints = get_type_hints(record_type)
    return pa.schema([_arrow_field(field.name, hints[field.name]) for field in fields(record_type)])


def _arrow_field(name: str, hint: Any) -> pa.Field:
    members = get_args(hint) if get_origin(hint) is types.UnionType else (hint,)
    nullable = type(None) in members
    (hint,) = [member for member in members if member is not type(None)]
    try:
        if get_origin(hint) is Sequence:
            (item,) = get_args(hint)
            return pa.field(name, pa.list_(_SCALARS[item]), nullable=nullable)
        return pa.field(name, _SCALARS[hint], nullable=nullable)
    except KeyError:
        raise TypeError(f"log record field {name!r}: no Arrow type for {hint}") from None


DECISION_SCHEMA = arrow_schema(DecisionRecord)
OUTCOME_SCHEMA = arrow_schema(OutcomeRecord)
ACTION_SCHEMA = arrow_schema(ActionRecord)
EVENT_SCHEMA = arrow_schema(EventRecord)


def to_table(record_type: type[Record], records: Iterable[Record]) -> pa.Table:
    """The records as an Arrow table of ``arrow_schema(record_type)``.

    A ``ValueError`` names the first field whose value does not fit its column: of
    another type, None in a required field, or a datetime without a timezone.
    """
    schema = arrow_schema(record_type)
    rows = list(map(attrgetter(*schema.names), records))
    if not rows:
        return schema.empty_table()
    columns = zip(*rows, strict=True)
    return pa.Table.from_arrays(
        [_column(field, values) for field, values in zip(schema, columns, strict=True)],
        schema=schema,
    )


def _column(field: pa.Field, values: Sequence[Any]) -> pa.Array:
    try:
        array = pa.array(values, type=field.type)
    except _MISFITS as error:
        raise ValueError(f"log record field {field.name!r} does not fit: {error}") from error
    if array.null_count and not field.nullable:
        raise ValueError(f"log record field {field.name!r} is required, got None")
    if field.type == TIMESTAMP and any(m is not None and m.tzinfo is None for m in values):
        # Arrow would silently take a naive datetime as UTC: make the caller say so.
        raise ValueError(f"log record field {field.name!r} must be timezone-aware")
    return array


def from_table(record_type: type[Record], table: pa.Table) -> list[Record]:
    """The rows of a table with the record's columns (others are ignored) as records."""
    return [record_type(**row) for row in table.select(arrow_schema(record_type).names).to_pylist()]
