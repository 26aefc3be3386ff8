"""`POST /v1/events`: apps send what customers did (cart abandoned, purchase, unsubscribe).

Translation only; what is taken, logged and kept is `serving.events.EventService`'s.

| answer | when | body |
| --- | --- | --- |
| 202 | taken: new, or a repeat of an id taken before (`duplicate`) | `EventAccepted` |
| 422 | a bad body, naming the field (`type`, a property, `ts` out of bounds) | error shape |
| 503 | the event log cannot be written, or this host takes no events | ``{"detail": …}`` |
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from serving.api_models import ErrorAnswer, EventAccepted, EventRequest
from serving.bodies import LOG_UNAVAILABLE, json_body, parse_body
from serving.events import EventService
from serving.service import InvalidRequest

ServiceOf = Callable[[Request], EventService | None]
NOT_SERVED = "events are not taken by this host"


def add_event_routes(api: FastAPI, service_of: ServiceOf) -> None:
    """Add the route to `api`; `service_of(request)` is the process's `EventService` (None:
    503)."""

    @api.post(
        "/v1/events",
        status_code=202,
        responses={
            202: {"model": EventAccepted, "description": "Taken (or taken before)."},
            422: {"model": ErrorAnswer},
            503: LOG_UNAVAILABLE,
        },
        openapi_extra=json_body(EventRequest),
    )
    async def post_event(request: Request) -> JSONResponse:
        """Log a customer event and keep it for the journeys, once per `event_id`."""
        # Parsed like /v1/outcomes: FastAPI's own 422 echoes the input (a NaN: a 500).
        body = parse_body(EventRequest, await request.body())
        service = service_of(request)
        if service is None:
            return JSONResponse(
                {"detail": NOT_SERVED}, status_code=503, headers={"Retry-After": "1"}
            )
        try:
            answer = await service.accept(body)
        except InvalidRequest:
            service.metrics.requests.labels("events", "422").inc()
            raise
        service.metrics.requests.labels("events", "202").inc()
        return JSONResponse(answer, status_code=202)
