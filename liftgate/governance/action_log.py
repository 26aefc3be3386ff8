"""The action log's records (`experiments.logs.schema.ActionRecord`, at ``Home.action_log``):
one per commit — queued, refused or dry run — written by the action service, and one per
delivery attempt written by the outbox worker, so that experiment reports and off-policy
evaluation see what was actually sent (`experiments.logs.reader.read_actions`).

>>> import datetime as dt
>>> from liftgate.governance.action_store import Commit, Delivery
>>> noon = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)
>>> request = ActionRequestData(decision_id="d1", action="email_10", channel="email",
...     campaign_id="spring", idempotency_key="k1", ttl_seconds=3600)
>>> commit = Commit("a1", "refused", "k1", False, ("decision",), "action", "not offered")
>>> record = commit_record(request, commit, customer_id="c1", ts=noon)
>>> record.status, record.check, record.attempt
('refused', 'action', 0)
>>> delivery = Delivery("a1", "k1", "d1", "c1", "email_10", "email", "spring", None, None,
...     noon, attempts=2)
>>> attempt_record(delivery, status="delivered", detail="200", ts=noon).attempt
3
"""

from __future__ import annotations

import datetime as dt

from experiments.logs.schema import ActionRecord
from liftgate.governance.action_request import ActionRequestData
from liftgate.governance.action_store import Commit, Delivery


def commit_record(
    request: ActionRequestData, commit: Commit, *, customer_id: str | None, ts: dt.datetime
) -> ActionRecord:
    """The record of a commit's answer (attempt 0); `customer_id` None when the decision
    was unknown."""
    return ActionRecord(
        action_id=commit.action_id,
        ts=ts,
        decision_id=request.decision_id,
        customer_id=customer_id,
        action=request.action,
        channel=request.channel,
        campaign_id=request.campaign_id,
        creative_id=request.creative_id,
        status=commit.status,
        check=commit.check,
        detail=commit.detail or "every check passed",
        dry_run=commit.dry_run,
        attempt=0,
        idempotency_key=commit.idempotency_key,
    )


def attempt_record(
    delivery: Delivery, *, status: str, detail: str, ts: dt.datetime
) -> ActionRecord:
    """The record of a delivery attempt (its number: the attempts before it, plus one)
    with what became of it: ``status`` as the worker names it (delivered, attempt_failed,
    failed, …)."""
    return ActionRecord(
        action_id=delivery.action_id,
        ts=ts,
        decision_id=delivery.decision_id,
        customer_id=delivery.customer_id,
        action=delivery.action,
        channel=delivery.channel,
        campaign_id=delivery.campaign_id,
        creative_id=delivery.creative_id,
        status=status,
        detail=detail,
        dry_run=False,
        attempt=delivery.attempts + 1,
        idempotency_key=delivery.idempotency_key,
    )
