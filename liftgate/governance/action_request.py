"""A request to commit a decision's action to a channel, as the checks and the store see it.

The HTTP body (`serving.api_models.ActionRequest`) becomes an `ActionRequestData` with its
TTL resolved (the configured default when the body has none). `request_hash` is what makes
an idempotency key's retry "the same request": every field but the key, in a canonical form.

>>> import datetime as dt
>>> request = ActionRequestData(
...     decision_id="d1", action="email_10", channel="email", campaign_id="spring",
...     idempotency_key="k1", ttl_seconds=3600.0)
>>> request.request_hash() == request.__class__(**{**vars(request), "idempotency_key": "k2"}
... ).request_hash()
True
>>> request.request_hash() == ActionRequestData(**{**vars(request), "dry_run": True}).request_hash()
False
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ActionRequestData:
    decision_id: str
    action: str
    channel: str
    campaign_id: str
    idempotency_key: str
    ttl_seconds: float
    dry_run: bool = False
    creative_id: str | None = None
    send_at: dt.datetime | None = None

    def request_hash(self) -> str:
        """SHA-256 of every field but the idempotency key (times as UTC RFC 3339)."""
        fields = asdict(self)
        del fields["idempotency_key"]
        fields["ttl_seconds"] = float(self.ttl_seconds)  # 3600 and 3600.0 are one request
        if self.send_at is not None:
            fields["send_at"] = self.send_at.astimezone(dt.UTC).isoformat()
        canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()
