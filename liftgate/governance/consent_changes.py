"""One consent change, applied and audited: what `liftgate consent grant|revoke` and
`PUT /v1/consent/{customer_id}` both do.

The change goes to the consent store (latest `ts` wins: an older change is not applied);
an applied one is audit-logged with who made it and the customer's pseudonym only, since
the hash-chained audit log is never rewritten (erasure leaves it as it is).

>>> import tempfile
>>> from liftgate.core import audit
>>> from liftgate.governance.consent import ConsentStore
>>> from liftgate.governance.pseudonyms import Pseudonyms
>>> with tempfile.TemporaryDirectory() as tmp:
...     with ConsentStore(Path(tmp) / "consent.db") as store:
...         log = Path(tmp) / "audit.jsonl"
...         change = change_consent(store, log, Pseudonyms(b"k"), "c1", "email", True,
...                                 source="form", who="key:0123")
...         [record] = audit.read(log)
>>> change.applied, change.current["granted"], record["action"], record["customer"] != "c1"
(True, True, 'consent_granted', True)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from liftgate.core import audit
from liftgate.governance.consent import ConsentStore
from liftgate.governance.pseudonyms import Pseudonyms


@dataclass(frozen=True)
class ConsentChange:
    """Whether the change was applied (False: the store holds a later one), and the
    channel's consent as stored afterwards."""

    applied: bool
    current: dict[str, Any]


def change_consent(
    store: ConsentStore,
    audit_log: Path,
    pseudonyms: Pseudonyms,
    customer_id: str,
    channel: str,
    granted: bool,
    *,
    source: str,
    who: str | None = None,
    ts: datetime | None = None,
) -> ConsentChange:
    """Apply the change (an InputError naming the field if it is not a valid one) and, if
    applied, audit it."""
    applied = store.set(customer_id, channel, granted, ts=ts, source=source)
    [current] = [c for c in store.current(customer_id) if c["channel"] == channel]
    if applied:
        audit.append(
            audit_log,
            "consent_granted" if granted else "consent_revoked",
            who=who,
            customer=pseudonyms.of(customer_id),
            channel=channel,
            source=source,
        )
    return ConsentChange(applied, current)
