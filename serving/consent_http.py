"""`PUT /v1/consent/{customer_id}`: apps record a customer's consent per channel.

Each channel's change goes through `liftgate.governance.consent_changes.change_consent`
(the store: latest `ts` wins; the audit log: who — the API key — and the customer's
pseudonym). The decision path reads the same store on every decision, so a revocation
applies to the customer's next decision on every replica.

| answer | when |
| --- | --- |
| 200 | every channel's change was taken; `applied: false` where the store holds a later one |
| 422 | a bad body or customer id, naming the field (a `ts` in the future, say) |
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from liftgate.core.errors import InputError
from liftgate.core.home import Home
from liftgate.governance.consent import MAX_ID_LENGTH, ConsentStore
from liftgate.governance.consent_changes import change_consent
from liftgate.governance.pseudonyms import Pseudonyms
from serving.api_models import ConsentRequest, ConsentResponse, ErrorAnswer
from serving.bodies import json_body, parse_body
from serving.service import InvalidRequest, field_error


@dataclass(frozen=True)
class ConsentUpdates:
    """What a replica needs to take consent changes: the store (opened once, shared by the
    requests), the audit log and the pseudonyms of customers in it."""

    store: ConsentStore
    audit_log: Path
    pseudonyms: Pseudonyms

    @classmethod
    def for_home(cls, home: Home) -> ConsentUpdates:
        return cls(ConsentStore(home.consent), home.audit_log, Pseudonyms.for_home(home))

    def apply(self, customer_id: str, body: ConsentRequest, who: str) -> dict:
        """Every channel's change, in one call; an `InvalidRequest` naming the field."""
        answer = {}
        for channel, granted in sorted(body.channels.items()):
            try:
                change = change_consent(
                    self.store,
                    self.audit_log,
                    self.pseudonyms,
                    customer_id,
                    channel,
                    granted,
                    source=body.source,
                    who=who,
                    ts=body.ts,
                )
            except InputError as exc:
                where = "path" if exc.parameter == "customer_id" else "body"
                raise InvalidRequest([field_error([where, exc.parameter], str(exc))]) from None
            stored = change.current
            answer[channel] = {
                "granted": stored["granted"],
                "ts": stored["ts"],
                "source": stored["source"],
                "applied": change.applied,
            }
        return {"customer_id": customer_id, "channels": answer}

    def close(self) -> None:
        self.store.close()


UpdatesOf = Callable[[Request], ConsentUpdates | None]
CallerOf = Callable[[Request], str]


def add_consent_routes(api: FastAPI, updates_of: UpdatesOf, caller_of: CallerOf) -> None:
    @api.put(
        "/v1/consent/{customer_id}",
        responses={
            200: {"model": ConsentResponse},
            422: {"model": ErrorAnswer},
            503: {"description": "This host takes no consent changes."},
        },
        openapi_extra=json_body(ConsentRequest),
    )
    async def put_consent(customer_id: str, request: Request) -> JSONResponse:
        """Record the customer's consent per channel (the decision path reads it)."""
        if not 0 < len(customer_id) <= MAX_ID_LENGTH:
            raise InvalidRequest(
                [field_error(["path", "customer_id"], f"expected 1 to {MAX_ID_LENGTH} characters")]
            )
        body = parse_body(ConsentRequest, await request.body())
        updates = updates_of(request)
        if updates is None:
            return JSONResponse({"detail": "consent is not served by this host"}, status_code=503)
        # SQLite and an fsynced audit append: off the event loop, which serves decisions.
        answer = await asyncio.to_thread(updates.apply, customer_id, body, caller_of(request))
        return JSONResponse(answer)
