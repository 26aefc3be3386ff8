"""What the delivery tests share: a sample delivery, overridable field by field, and an
action queued in a real action store, as `POST /v1/actions` leaves it."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from configs.schema import DeliverySettings
from liftgate.governance.action_request import ActionRequestData
from liftgate.governance.action_store import ActionStore, Delivery

NOON = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
TTL = dt.timedelta(days=1)
SETTINGS = DeliverySettings(backoff_s=1, max_backoff_s=60, max_attempts=5, lease_s=30)


def make_delivery(action_id: str = "a1", **overrides: Any) -> Delivery:
    delivery = Delivery(
        action_id=action_id,
        idempotency_key=f"key-{action_id}",
        decision_id=f"decision-{action_id}",
        customer_id="c0000042",
        action="email_10",
        channel="email",
        campaign_id="spring",
        creative_id=None,
        send_at=NOON,
        expires_at=NOON + TTL,
        attempts=0,
    )
    return replace(delivery, **overrides)


def queue_action(
    store: ActionStore,
    key: str = "k1",
    *,
    now: dt.datetime = NOON,
    expires_at: dt.datetime | None = None,
    **request: Any,
) -> str:
    """Commit an action that passed its checks at `now`, expiring a day later unless said;
    its action id."""
    fields = {"decision_id": f"d-{key}", "action": "email_10", "channel": "email"}
    fields |= {"campaign_id": "spring", "idempotency_key": key, "ttl_seconds": 86_400.0}
    commit = store.commit(
        ActionRequestData(**(fields | request)),
        customer_id="c0000042",
        expires_at=now + TTL if expires_at is None else expires_at,
        refusal=None,
        caps=(),
        now=now,
    )
    assert commit.status == "queued", commit
    return commit.action_id
