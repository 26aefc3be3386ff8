"""What was actually sent: the fate of every action and every decision, from the action log.

The action log (:func:`experiments.logs.reader.read_actions`) holds one row per commit of an
action (attempt 0: ``queued``, ``refused`` with the check that refused it, or ``dry_run``)
and one per delivery attempt (``delivered``, ``attempt_failed`` — to be retried — or
``failed``). An action's *fate* is what finally became of it: ``delivered`` if any attempt
delivered (delivery is at least once: a crash may record two), else ``failed`` once the
worker gave up, else ``pending`` while it is queued or retried, else ``refused`` or
``dry_run`` as committed. A dry run is a dry run whatever its checks said: nothing is sent.

A decision's fate is the furthest any of its actions got towards the customer —
``delivered``, ``pending``, ``failed``, ``refused``, ``dry_run`` — and ``no_action`` when
the log holds none of its actions (several actions of one decision: a retry under a new key,
another channel). :func:`sent_by_arm` counts both per arm; every figure is a count, so the
counts of disjoint sets of decisions (and their actions) add up.

>>> import datetime as dt
>>> from experiments.logs.schema import ActionRecord, to_table
>>> noon = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)
>>> def step(action_id, decision_id, status, attempt=0, check=None):
...     return ActionRecord(action_id=action_id, ts=noon, decision_id=decision_id,
...         action="email_10", channel="email", campaign_id="spring", status=status,
...         check=check, detail="", dry_run=False, attempt=attempt, idempotency_key=action_id)
>>> actions = to_table(ActionRecord, [
...     step("a1", "d1", "queued"), step("a1", "d1", "attempt_failed", 1),
...     step("a1", "d1", "delivered", 2), step("a2", "d2", "refused", check="consent"),
...     step("a3", "d2", "queued")])
>>> action_fates(actions).select(["action_id", "fate", "check"]).to_pylist()
... # doctest: +NORMALIZE_WHITESPACE
[{'action_id': 'a1', 'fate': 'delivered', 'check': None},
 {'action_id': 'a2', 'fate': 'refused', 'check': 'consent'},
 {'action_id': 'a3', 'fate': 'pending', 'check': None}]
>>> decision_fates(pa.array(["d1", "d2", "d3"]), actions).to_pylist()
['delivered', 'pending', 'no_action']
>>> decisions = pa.table({"decision_id": ["d1", "d2", "d3"], "arm": ["a", "b", "b"]})
>>> sent = sent_by_arm(decisions, actions)
>>> sent["b"]["decisions"], sent["b"]["actions"], sent["b"]["refused_by_check"]
(2, 2, {'consent': 1})
"""

from __future__ import annotations

from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

from experiments.logs.schema import ATTEMPT_FAILED, DELIVERED, DRY_RUN, FAILED, QUEUED, REFUSED

#: The fates that are not statuses: an action still on its way, a decision without action.
PENDING: Final = "pending"
NO_ACTION: Final = "no_action"

#: The fate each logged status stands for.
FATE_OF_STATUS: Final = {
    QUEUED: PENDING,
    ATTEMPT_FAILED: PENDING,
    DELIVERED: DELIVERED,
    FAILED: FAILED,
    REFUSED: REFUSED,
    DRY_RUN: DRY_RUN,
}
_STATUSES = pa.array(list(FATE_OF_STATUS))
_STATUS_FATES = pa.array(list(FATE_OF_STATUS.values()))
# Of an action's rows, the first of these wins: a delivery attempt's end outranks the
# commit that queued it, and a success outranks a failure (at-least-once delivery).
_ACTION_PRECEDENCE = pa.array([DELIVERED, FAILED, PENDING, REFUSED, DRY_RUN])
#: A decision's fates, furthest towards the customer first: its fate is the first of its
#: actions' fates in this order.
DECISION_FATES: Final = (DELIVERED, PENDING, FAILED, REFUSED, DRY_RUN, NO_ACTION)


def action_fates(actions: pa.Table) -> pa.Table:
    """One row per action (``action_id``, ``decision_id``, ``fate``, ``check`` — of a
    refusal, else null), ordered by action_id; ``actions`` has the action log's columns.

    Raises ``ValueError`` naming a status the action log does not use.
    """
    status = actions["status"]
    unknown = pc.unique(status.filter(pc.invert(pc.is_in(status, _STATUSES))))
    if len(unknown):
        raise ValueError(
            f"action log: unknown status {unknown.to_pylist()} "
            f"(expected one of {', '.join(FATE_OF_STATUS)})"
        )
    status_fate = pc.take(_STATUS_FATES, pc.index_in(status, _STATUSES))
    row_fate = pc.if_else(actions["dry_run"], DRY_RUN, status_fate)
    refused = pc.equal(row_fate, REFUSED)
    rows = pa.table(
        {
            "action_id": actions["action_id"],
            "decision_id": actions["decision_id"],
            "rank": pc.index_in(row_fate, _ACTION_PRECEDENCE),
            "check": pc.if_else(refused, actions["check"], pa.scalar(None, pa.string())),
        }
    )
    per_action = rows.group_by("action_id").aggregate(
        [("decision_id", "min"), ("rank", "min"), ("check", "max")]
    )
    return pa.table(
        {
            "action_id": per_action["action_id"],
            "decision_id": per_action["decision_id_min"],
            "fate": pc.take(_ACTION_PRECEDENCE, per_action["rank_min"]),
            "check": per_action["check_max"],
        }
    ).sort_by("action_id")


def decision_fates(
    decision_ids: pa.Array | pa.ChunkedArray, actions: pa.Table
) -> pa.Array | pa.ChunkedArray:
    """The fate of each decision (aligned with ``decision_ids``) from its actions in
    ``actions`` (the action log's columns): one of :data:`DECISION_FATES`."""
    return _decision_fates(decision_ids, action_fates(actions))


def _decision_fates(
    decision_ids: pa.Array | pa.ChunkedArray, fates: pa.Table
) -> pa.Array | pa.ChunkedArray:
    order = pa.array(DECISION_FATES)
    ranks = pa.table(
        {"decision_id": fates["decision_id"], "rank": pc.index_in(fates["fate"], order)}
    )
    per_decision = ranks.group_by("decision_id").aggregate([("rank", "min")])
    row = pc.index_in(decision_ids, value_set=per_decision["decision_id"])
    rank = pc.fill_null(per_decision["rank_min"].take(row), DECISION_FATES.index(NO_ACTION))
    return pc.take(order, rank)


def fate_counts(fates: pa.Array | pa.ChunkedArray) -> dict[str, int]:
    """How many decisions have each fate of :data:`DECISION_FATES` (zeros included)."""
    counts = {row["values"]: row["counts"] for row in pc.value_counts(fates).to_pylist()}
    return {fate: counts.get(fate, 0) for fate in DECISION_FATES}


def sent_by_arm(decisions: pa.Table, actions: pa.Table) -> dict[str, dict[str, Any]]:
    """Per arm of ``decisions`` (columns ``decision_id``, unique, and ``arm``), in arm order:
    ``decisions``, ``decisions_delivered`` (with at least one action delivered), and their
    actions in ``actions`` (the action log's columns; others are ignored) by fate —
    ``actions`` = ``committed`` + ``refused`` + ``dry_runs``, ``committed`` (passed every
    check) = ``delivered`` + ``pending`` + ``failed`` —, with ``refused_by_check``."""
    fates = action_fates(actions)
    fate_of_decision = _decision_fates(decisions["decision_id"], fates)
    per_decision = (
        pa.table({"arm": decisions["arm"], "delivered": pc.equal(fate_of_decision, DELIVERED)})
        .group_by("arm")
        .aggregate([([], "count_all"), ("delivered", "sum")])
    )
    # The actions of these decisions, each with its decision's arm.
    row = pc.index_in(fates["decision_id"], value_set=decisions["decision_id"])
    ours = pc.is_valid(row)
    mine = fates.filter(ours).append_column("arm", decisions["arm"].take(row.filter(ours)))
    by_fate = mine.group_by(["arm", "fate"]).aggregate([([], "count_all")]).to_pylist()
    refusals = mine.filter(pc.equal(mine["fate"], REFUSED))
    by_check = refusals.group_by(["arm", "check"]).aggregate([([], "count_all")]).to_pylist()

    count = {(r["arm"], r["fate"]): r["count_all"] for r in by_fate}
    sent: dict[str, dict[str, Any]] = {}
    for row in sorted(per_decision.to_pylist(), key=lambda r: r["arm"]):
        arm = row["arm"]
        delivered, pending, failed, refused, dry_runs = (
            count.get((arm, fate), 0) for fate in (DELIVERED, PENDING, FAILED, REFUSED, DRY_RUN)
        )
        committed = delivered + pending + failed
        sent[arm] = {
            "decisions": row["count_all"],
            "decisions_delivered": row["delivered_sum"] or 0,
            "actions": committed + refused + dry_runs,
            "committed": committed,
            "delivered": delivered,
            "pending": pending,
            "failed": failed,
            "refused": refused,
            "refused_by_check": {
                r["check"]: r["count_all"]
                for r in sorted(by_check, key=lambda r: r["check"] or "")
                if r["arm"] == arm
            },
            "dry_runs": dry_runs,
        }
    return sent
