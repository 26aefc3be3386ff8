"""Connectors: how a committed action leaves the building, behind one small interface.

A `Connector` delivers one action (`deliver(delivery, payload)`) or raises `DeliveryFailed`
saying whether trying again may help. The outbox worker (`liftgate.governance.outbox`)
retries, so delivery is at least once: every payload carries the action's
``idempotency_key``, which the webhook also sends as the ``Idempotency-Key`` header, and
receivers drop a key they have seen. A payload is the same on every attempt (a receiver may
compare the body of a repeated key).

- `FileConnector` appends one JSON line per delivery to a file (by default
  ``LIFTGATE_HOME/deliveries/<channel>.jsonl``), under an exclusive `flock` and fsynced
  before it returns, so workers in several processes never interleave lines.
- `WebhookConnector` POSTs the payload as JSON: a 2xx is delivered; a timeout, a connection
  error, 408, 429 or a 5xx may pass later (retryable); any other answer will not.

`connector_for` builds a channel's connector from its configuration
(``channels.<channel>.connector`` in ``actions.yaml``).

>>> import tempfile
>>> from configs.schema import ChannelPolicy
>>> delivery = Delivery(
...     action_id="a1", idempotency_key="k1", decision_id="d1", customer_id="c1",
...     action="email_10", channel="email", campaign_id="spring", creative_id=None,
...     send_at=None, expires_at=datetime(2026, 5, 2), attempts=0)
>>> with tempfile.TemporaryDirectory() as root:
...     home = Home(Path(root))
...     connector_for("email", ChannelPolicy(), home).deliver(delivery, payload_of(delivery))
...     lines = (home.deliveries / "email.jsonl").read_text().splitlines()
>>> [json.loads(line)["idempotency_key"] for line in lines]
['k1']
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, get_args

import httpx

from configs import schema
from liftgate.core.home import Home
from liftgate.core.linefile import append_line
from liftgate.governance.action_store import Delivery

#: HTTP answers that say "not now" rather than "never".
RETRYABLE_STATUS = frozenset({408, 429})
#: How much of a refusing receiver's answer a failure's detail keeps.
DETAIL_BODY_CHARS = 200


class DeliveryFailed(Exception):
    """A delivery did not happen; `retryable` says whether another attempt may succeed."""

    def __init__(self, detail: str, *, retryable: bool):
        super().__init__(detail)
        self.detail = detail
        self.retryable = retryable


class Connector(Protocol):
    def deliver(self, delivery: Delivery, payload: dict[str, Any]) -> None:
        """Deliver, or raise `DeliveryFailed`."""


def payload_of(delivery: Delivery, creative_text: str | None = None) -> dict[str, Any]:
    """What a receiver gets: the action, who it is for, why (decision and campaign), its
    idempotency key, the creative's text if one is attached, and when to send it."""
    payload: dict[str, Any] = {
        "action_id": delivery.action_id,
        "idempotency_key": delivery.idempotency_key,
        "decision_id": delivery.decision_id,
        "customer_id": delivery.customer_id,
        "action": delivery.action,
        "channel": delivery.channel,
        "campaign_id": delivery.campaign_id,
        "send_at": _iso(delivery.send_at),
    }
    if delivery.creative_id is not None:
        payload["creative"] = {"id": delivery.creative_id, "text": creative_text}
    return payload


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


class FileConnector:
    """Appends one JSON line per delivery to `path`, locked and fsynced."""

    def __init__(self, path: Path):
        self.path = path

    def deliver(self, delivery: Delivery, payload: dict[str, Any]) -> None:
        line = (json.dumps(payload, sort_keys=True) + "\n").encode()
        try:
            append_line(self.path, lambda descriptor, size: line)
        except OSError as exc:  # a full or failing disk may recover
            raise DeliveryFailed(f"{self.path}: {exc.strerror or exc}", retryable=True) from exc


class WebhookConnector:
    """POSTs the payload as JSON to `url` with an ``Idempotency-Key`` header."""

    def __init__(self, url: str, timeout_s: float):
        self.url = url
        # One client per connector: connections are kept alive between deliveries.
        self._client = httpx.Client(timeout=timeout_s)

    def deliver(self, delivery: Delivery, payload: dict[str, Any]) -> None:
        try:
            response = self._client.post(
                self.url, json=payload, headers={"Idempotency-Key": delivery.idempotency_key}
            )
        except httpx.HTTPError as exc:  # timeouts and connection errors: the receiver may return
            raise DeliveryFailed(f"POST {self.url}: {exc!r}", retryable=True) from exc
        if response.is_success:
            return
        status = response.status_code
        raise DeliveryFailed(
            f"POST {self.url}: HTTP {status}: {response.text[:DETAIL_BODY_CHARS]}",
            retryable=status in RETRYABLE_STATUS or status >= 500,
        )


def connector_for(channel: str, policy: schema.ChannelPolicy, home: Home) -> Connector:
    """The connector `policy` configures for `channel`."""
    configured = policy.connector
    if isinstance(configured, schema.WebhookConnector):
        return WebhookConnector(configured.url, configured.timeout_s)
    if configured.path is None:
        return FileConnector(home.deliveries / f"{channel}.jsonl")
    return FileConnector(home.root / configured.path)


def connectors_for(actions: schema.ActionsConfig, home: Home) -> Mapping[str, Connector]:
    """A connector for every channel that contacts someone (a channel without a policy of
    its own has the default: a file)."""
    return {
        channel: connector_for(channel, actions.channel_policy(channel), home)
        for channel in get_args(schema.ChannelName)
        if channel != schema.NO_CHANNEL
    }
