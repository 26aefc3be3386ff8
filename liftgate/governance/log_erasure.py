"""Erasing a customer from the decision, outcome, action and event logs, write-ahead
segments too.

A logged row is in a Parquet file, or still in a write-ahead segment (``_wal/``,
:mod:`experiments.logs.wal`) until its writer writes it as Parquet, within the writer's
``max_age_s`` when it is healthy. A writer never rewrites a Parquet file, so erasing a
file's rows (:mod:`liftgate.governance.erasure`) is safe beside running writers; the rows
in segments are not in any file yet. Hence two steps:

1. :func:`settle` waits until no segment holds a row of the customer. Segments of crashed
   writers are converted to Parquet at once (:func:`~experiments.logs.wal.recover`, as the
   next writer would do: otherwise a later recovery would bring their rows back); live
   writers' segments are read, and the wait lasts while one holds a row of the customer,
   until its writer has written it as Parquet and deleted the segment, or ``settle_s``
   passes. It also collects the ids of the customer's decisions: the outcome log has no
   customer column, its rows belong to the customer through their ``decision_id``.
2. :func:`erase_logs` rewrites the Parquet files: outcomes by those decision ids, actions
   by ``customer_id`` or decision id (an action on a decision that had left the offers
   index was logged without its customer), customer events by ``customer_id``, and then,
   last, decisions by ``customer_id``.
   Decisions go last so that an erasure interrupted before them still finds the ids when
   run again.

So every row logged before the erasure began is gone when both return — unless a writer
kept a segment past ``settle_s`` (its disk failing): :func:`settle` names those segments
(``unsettled``), and the erasure has to be run again once they are written (it is
idempotent). Nothing remembers the customer id to finish the job later on its own: a list
of pending erasures would be one more copy of the very ids being erased. A row logged
while the erasure runs (the customer is back) is new data.

>>> import datetime as dt, tempfile
>>> from experiments.logs.writer import LogWriter
>>> from liftgate.core.home import Home
>>> with tempfile.TemporaryDirectory() as tmp:
...     home = Home(Path(tmp))
...     with LogWriter(home.decision_log, DecisionRecord) as log:
...         for decision_id, customer in (("d1", "c1"), ("d2", "c2")):
...             log.append(DecisionRecord(
...                 decision_id=decision_id, ts=dt.datetime(2024, 5, 1, tzinfo=dt.UTC),
...                 customer_id=customer, features=[], contract_version="v1", actions=[],
...                 scores=[], probabilities=[], chosen="none", propensity=1.0,
...                 policy="greedy", model_name="m", model_version="1",
...                 model_alias="champion", fallback=False, cold_start=False,
...                 latency_ms=1.0, trace_id="t"))
...     settled = settle(home, "c1", settle_s=0)
...     erased = erase_logs(home, "c1", settled.decision_ids)
...     left = decision_ids_of(home.decision_log, "c1") | decision_ids_of(home.decision_log, "c2")
>>> sorted(settled.decision_ids), settled.unsettled, erased.decisions.rows, sorted(left)
(['d1'], (), 1, ['d2'])
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from experiments.logs.reader import decision_ids_of
from experiments.logs.schema import ActionRecord, DecisionRecord, EventRecord, OutcomeRecord
from experiments.logs.wal import recover, segment_records
from liftgate.core.home import Home
from liftgate.governance.erasure import FileRewrite, Match, erase_from_dataset

CUSTOMER_COLUMN = "customer_id"
DECISION_COLUMN = "decision_id"


def logs_of(home: Home) -> tuple[tuple[Path, type], ...]:
    """Each log that names customers: its directory and record type."""
    return (
        (home.decision_log, DecisionRecord),
        (home.outcome_log, OutcomeRecord),
        (home.action_log, ActionRecord),
        (home.event_log, EventRecord),
    )


@dataclass(frozen=True)
class Settled:
    """The ids of the customer's logged decisions, and the segments that still held rows
    of the customer when the wait ended (none: every row is in Parquet)."""

    decision_ids: frozenset[str]
    unsettled: tuple[Path, ...]


@dataclass(frozen=True)
class LogErasure:
    """What :func:`erase_logs` removed from each log."""

    decisions: FileRewrite
    outcomes: FileRewrite
    actions: FileRewrite
    events: FileRewrite

    def to_json(self) -> dict:
        return {
            "decisions": self.decisions.to_json(),
            "outcomes": self.outcomes.to_json(),
            "actions": self.actions.to_json(),
            "events": self.events.to_json(),
        }


def settle(
    home: Home,
    customer_id: str,
    *,
    settle_s: float,
    poll_s: float = 0.1,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Settled:
    """Wait until no segment of the logs holds a row of the customer, at most
    ``settle_s`` (see the module)."""
    deadline = clock() + settle_s
    decision_ids: set[str] = set()
    first_look = True
    customer = {CUSTOMER_COLUMN: {customer_id}}
    while True:
        for directory, record_type in logs_of(home):
            recover(directory, record_type)
        held = _holding(home.decision_log, DecisionRecord, customer)
        decision_ids.update(record.decision_id for rows in held.values() for record in rows)
        if first_look:
            # After the first read of the segments: a decision written as Parquet since
            # then was in a segment then, so every one logged before now is counted.
            decision_ids |= decision_ids_of(home.decision_log, customer_id)
            first_look = False
        decisions = {DECISION_COLUMN: decision_ids}
        held |= _holding(home.outcome_log, OutcomeRecord, decisions)
        held |= _holding(home.action_log, ActionRecord, customer | decisions)
        held |= _holding(home.event_log, EventRecord, customer)
        if not held or clock() >= deadline:
            return Settled(frozenset(decision_ids), tuple(sorted(held)))
        sleep(poll_s)


def erase_logs(home: Home, customer_id: str, decision_ids: Collection[str]) -> LogErasure:
    """Rewrite the logs' Parquet files without the customer's rows; decisions last (see
    the module)."""
    customer, decisions = {CUSTOMER_COLUMN: {customer_id}}, {DECISION_COLUMN: decision_ids}
    outcome_rows = erase_from_dataset(home.outcome_log, decisions)
    action_rows = erase_from_dataset(home.action_log, customer | decisions)
    event_rows = erase_from_dataset(home.event_log, customer)
    decision_rows = erase_from_dataset(home.decision_log, customer)
    return LogErasure(
        decisions=decision_rows, outcomes=outcome_rows, actions=action_rows, events=event_rows
    )


def _holding(directory: Path, record_type: type, match: Match) -> dict[Path, list]:
    """The segments of the log holding rows that ``match``, with those rows."""
    held = {}
    for path, records in segment_records(directory, record_type):
        matching = [
            record
            for record in records
            if any(getattr(record, column) in values for column, values in match.items())
        ]
        if matching:
            held[path] = matching
    return held
