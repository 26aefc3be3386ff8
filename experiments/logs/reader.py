"""Reading the logs, and attributing outcomes to decisions (Arrow compute, no Python loops).

:func:`read_decisions` / :func:`read_outcomes` / :func:`read_actions` / :func:`read_events`
read a log's dataset, optionally a time range of it, as an Arrow table of its schema (events
once per id); :func:`join_outcomes` attributes outcomes to decisions,
:func:`orphan_outcomes` returns the outcomes whose decision is not in the log, and
:func:`find_decision` looks one decision up as a record
(:func:`decision_ids_of`, the ids of one customer's).

>>> import datetime as dt
>>> from experiments.logs.schema import DECISION_SCHEMA, OUTCOME_SCHEMA, OutcomeRecord, to_table
>>> noon = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
>>> decisions = DECISION_SCHEMA.empty_table()  # no decision: every outcome is an orphan
>>> outcomes = to_table(OutcomeRecord, [OutcomeRecord(
...     outcome_id="o1", decision_id="d1", ts=noon, event="conversion", value=1.0,
...     received_ts=noon, known_decision=False)])
>>> orphan_outcomes(decisions, outcomes)["outcome_id"].to_pylist()
['o1']
>>> join_outcomes(decisions, outcomes).column_names[-4:]
['converted', 'revenue', 'n_outcomes', 'first_outcome_ts']
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from experiments.logs.schema import (
    ACTION_SCHEMA,
    CONVERSION_EVENT,
    DECISION_SCHEMA,
    EVENT_SCHEMA,
    OUTCOME_SCHEMA,
    PARTITION_COLUMN,
    REVENUE_EVENT,
    TIME_COLUMN,
    TIMESTAMP,
    DecisionRecord,
    from_table,
)
from liftgate.core.home import Home

# Hive partitioning with a typed date, so start/end filters prune whole directories.
_PARTITIONING = ds.partitioning(pa.schema([(PARTITION_COLUMN, pa.date32())]), flavor="hive")


def read_decisions(
    directory: Path, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> pa.Table:
    """Decisions in ``directory`` (``home.decision_log``) with ``start <= ts < end``."""
    return _read_log(directory, DECISION_SCHEMA, start, end)


def read_outcomes(
    directory: Path, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> pa.Table:
    """Outcomes in ``directory`` (``home.outcome_log``) with ``start <= ts < end``."""
    return _read_log(directory, OUTCOME_SCHEMA, start, end)


def read_actions(
    directory: Path, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> pa.Table:
    """Action commits and delivery attempts in ``directory`` (``home.action_log``) with
    ``start <= ts < end``: what was actually sent, for reports and OPE."""
    return _read_log(directory, ACTION_SCHEMA, start, end)


def read_events(
    directory: Path, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> pa.Table:
    """Customer events in ``directory`` (``home.event_log``) with ``start <= ts < end``, once
    per ``event_id``: the first received (two requests racing with a new id may both log it,
    serving/events.py), in the order received."""
    events = _read_log(directory, EVENT_SCHEMA, start, end)
    if events.num_rows == 0:
        return events
    ordered = events.sort_by([("received_ts", "ascending"), ("event_id", "ascending")])
    numbered = ordered.append_column("__row__", pa.array(range(ordered.num_rows), pa.int64()))
    first = numbered.group_by("event_id").aggregate([("__row__", "min")])["__row___min"]
    return ordered.take(pc.take(first, pc.sort_indices(first)))


def find_decision(directory: Path, decision_id: str) -> DecisionRecord | None:
    """The logged decision with this id, or None (a filtered scan of the dataset)."""
    if not Path(directory).is_dir():
        return None
    table = _dataset(Path(directory), DECISION_SCHEMA).to_table(
        filter=ds.field("decision_id") == decision_id
    )
    return from_table(DecisionRecord, table.slice(0, 1))[0] if table.num_rows else None


def decision_ids_of(directory: Path, customer_id: str) -> set[str]:
    """The ids of the customer's decisions in ``directory`` (a filtered scan of two
    columns)."""
    if not Path(directory).is_dir():
        return set()
    table = _dataset(Path(directory), DECISION_SCHEMA).to_table(
        columns=["decision_id"], filter=ds.field("customer_id") == customer_id
    )
    return set(table["decision_id"].to_pylist())


def _dataset(directory: Path, schema: pa.Schema) -> ds.Dataset:
    return ds.dataset(
        directory,
        schema=schema.append(pa.field(PARTITION_COLUMN, pa.date32())),
        format="parquet",
        partitioning=_PARTITIONING,
        ignore_prefixes=[".", "_"],  # in-flight temp files
    )


def _read_log(
    directory: Path, schema: pa.Schema, start: dt.datetime | None, end: dt.datetime | None
) -> pa.Table:
    directory = Path(directory)
    if not directory.is_dir():
        return schema.empty_table()
    dataset = _dataset(directory, schema)
    table = dataset.to_table(columns=schema.names, filter=_time_filter(start, end))
    return table.cast(schema)


def scan_log(
    directory: Path,
    schema: pa.Schema,
    columns: list[str],
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    where: ds.Expression | None = None,
    batch_rows: int = 1 << 18,
) -> Iterator[pa.Table]:
    """`columns` of a log's rows with ``start <= ts < end`` (and `where`), a batch at a
    time: memory holds one batch, not the log. Nothing when the log does not exist."""
    directory = Path(directory)
    if not directory.is_dir():
        return
    row_filter = _time_filter(start, end)
    if where is not None:
        row_filter = where if row_filter is None else row_filter & where
    target = pa.schema([schema.field(c) for c in columns])
    scanner = _dataset(directory, schema).scanner(
        columns=columns, filter=row_filter, batch_size=batch_rows
    )
    for batch in scanner.to_batches():
        if batch.num_rows:
            yield pa.Table.from_batches([batch]).cast(target)


def _time_filter(start: dt.datetime | None, end: dt.datetime | None) -> ds.Expression | None:
    # The date conditions are redundant with the ts ones but let the scan skip directories.
    conditions = []
    if start is not None:
        start = _as_utc(start)
        conditions += [
            ds.field(TIME_COLUMN) >= pa.scalar(start, TIMESTAMP),
            ds.field(PARTITION_COLUMN) >= pa.scalar(start.date(), pa.date32()),
        ]
    if end is not None:
        end = _as_utc(end)
        conditions += [
            ds.field(TIME_COLUMN) < pa.scalar(end, TIMESTAMP),
            ds.field(PARTITION_COLUMN) <= pa.scalar(end.date(), pa.date32()),
        ]
    row_filter = None
    for condition in conditions:
        row_filter = condition if row_filter is None else row_filter & condition
    return row_filter


def _as_utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} must be timezone-aware")
    return moment.astimezone(dt.UTC)


def join_outcomes(
    decisions: pa.Table, outcomes: pa.Table, window_s: float | None = None
) -> pa.Table:
    """One row per decision (in order) with its outcomes attributed.

    Added columns: ``converted`` (a ``"conversion"`` event), ``revenue`` (the ``"revenue"``
    event's value, 0 if none), ``n_outcomes`` and ``first_outcome_ts``. A decision has one
    outcome per event: of several rows with the same (decision_id, event) — a retry logged
    again after a crash, two replicas taking it at once, or a log written before the API
    kept one — the first received counts. A value that is not finite (NaN, ±inf) never
    counts. With ``window_s``, only outcomes with ``ts <= decision ts + window_s`` count,
    for all four columns. The API accepts outcomes timestamped at most its clock skew
    allowance before their decision (serving.yaml ``outcomes``); those count too: they
    carry the decision's id, so they followed it, and the app's clock is not ours.
    ``decision_id`` is assumed unique; outcomes go to its first row.
    """
    outcomes = one_per_event(outcomes)
    decision_index = pc.index_in(outcomes["decision_id"], value_set=decisions["decision_id"])
    attributed = pc.is_valid(decision_index)
    if window_s is not None:
        decision_ts = decisions[TIME_COLUMN].take(decision_index)
        deadline = pc.add(decision_ts, pa.scalar(dt.timedelta(seconds=window_s), pa.duration("us")))
        attributed = pc.and_kleene(attributed, pc.less_equal(outcomes[TIME_COLUMN], deadline))
    counted = outcomes.filter(attributed, null_selection_behavior="drop")
    event = counted["event"]
    per_decision = (
        pa.table(
            {
                "decision_id": counted["decision_id"],
                "is_conversion": pc.equal(event, CONVERSION_EVENT),
                "revenue": pc.if_else(pc.equal(event, REVENUE_EVENT), counted["value"], 0.0),
                "ts": counted[TIME_COLUMN],
            }
        )
        .group_by("decision_id")
        .aggregate([("is_conversion", "any"), ("revenue", "sum"), ([], "count_all"), ("ts", "min")])
    )
    # index_in + take instead of a hash join: it keeps the decisions' order, and Acero
    # joins reject the list columns (features, actions, ...) as payload.
    row_of_decision = pc.index_in(decisions["decision_id"], value_set=per_decision["decision_id"])

    def per_decision_column(name: str) -> pa.ChunkedArray:
        return per_decision[name].take(row_of_decision)

    return (
        decisions.append_column(
            "converted", pc.fill_null(per_decision_column("is_conversion_any"), False)
        )
        .append_column("revenue", pc.fill_null(per_decision_column("revenue_sum"), 0.0))
        .append_column("n_outcomes", pc.fill_null(per_decision_column("count_all"), 0))
        .append_column("first_outcome_ts", per_decision_column("ts_min"))
    )


def one_per_event(outcomes: pa.Table) -> pa.Table:
    """The outcomes with a finite value, the first received of each (decision_id, event).

    >>> import datetime as dt
    >>> from experiments.logs.schema import OutcomeRecord, to_table
    >>> t = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
    >>> def outcome(outcome_id, value, seconds):
    ...     received = t + dt.timedelta(seconds=seconds)
    ...     return OutcomeRecord(outcome_id=outcome_id, decision_id="d1", ts=t, event="revenue",
    ...                          value=value, received_ts=received, known_decision=True)
    >>> table = to_table(OutcomeRecord, [outcome("retry", 9.0, 2), outcome("first", 5.0, 1),
    ...                                  outcome("poison", float("nan"), 0)])
    >>> one_per_event(table)["outcome_id"].to_pylist()
    ['first']
    """
    finite = outcomes.filter(pc.is_finite(outcomes["value"]), null_selection_behavior="drop")
    if finite.num_rows == 0:
        return finite
    ordered = finite.sort_by([("received_ts", "ascending"), ("outcome_id", "ascending")])
    numbered = ordered.append_column("__row__", pa.array(range(ordered.num_rows), pa.int64()))
    rows = numbered.group_by(["decision_id", "event"]).aggregate([("__row__", "min")])
    first = rows["__row___min"]
    return ordered.take(pc.take(first, pc.sort_indices(first)))  # in the order received


def orphan_outcomes(decisions: pa.Table, outcomes: pa.Table) -> pa.Table:
    """Outcomes whose ``decision_id`` matches no decision in ``decisions``."""
    known = pc.is_in(outcomes["decision_id"], value_set=decisions["decision_id"])
    return outcomes.filter(pc.invert(known))


def decisions_with_outcomes(home: Home, window_s: float | None = None) -> pa.Table:
    """Read both logs under ``home`` and :func:`join_outcomes` them."""
    return join_outcomes(
        read_decisions(home.decision_log), read_outcomes(home.outcome_log), window_s
    )
