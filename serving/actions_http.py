"""The governed actions on the HTTP API: ``POST /v1/actions`` and ``GET /v1/actions/{id}``.

Translation only; the checks and the store are `serving.actions.ActionService`'s.

| answer | when | body |
| --- | --- | --- |
| 202 | every check passed: queued, or a dry run | `ActionAccepted` |
| 409 | a check refused it, or its key was used with another request | `ActionRefused` |
| 422 | a body no state could accept (a TTL over the maximum, ``send_at`` past) | error shape |
| 503 | the action log cannot be written, or this host serves no actions | ``{"detail": …}`` |

A retry with the same idempotency key gets the same status and body, with ``replayed: true``.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from serving.actions import ActionService
from serving.api_models import (
    ActionAccepted,
    ActionRefused,
    ActionRequest,
    ActionState,
    ErrorAnswer,
)
from serving.bodies import LOG_UNAVAILABLE, json_body, parse_body, request_body
from serving.service import InvalidRequest

ServiceOf = Callable[[Request], ActionService | None]
#: Who sent a request, as the audit log names them.
CallerOf = Callable[[Request], str]
NOT_SERVED = "actions are not served by this host"
UNAVAILABLE = {
    **LOG_UNAVAILABLE,
    "description": "The action log cannot be written now (a failing disk), or this host "
    "serves no actions: nothing is committed; retry after Retry-After seconds.",
}


def _unavailable() -> JSONResponse:
    return JSONResponse({"detail": NOT_SERVED}, status_code=503, headers={"Retry-After": "1"})


def add_action_routes(
    api: FastAPI, service_of: ServiceOf, caller_of: CallerOf, request_schema: dict | None = None
) -> None:
    """Add the routes to `api`; `service_of(request)` is the process's `ActionService`
    (None: 503), `request_schema` documents the body (default: the model's own)."""

    @api.post(
        "/v1/actions",
        status_code=202,
        responses={
            202: {"model": ActionAccepted, "description": "Queued, or a dry run that passed."},
            409: {"model": ActionRefused, "description": "A check refused the action."},
            503: UNAVAILABLE,
        },
        openapi_extra=request_body(request_schema) if request_schema else json_body(ActionRequest),
    )
    async def commit_action(request: Request) -> JSONResponse:
        """Commit a decision's action to its channel, through every check (README: Governed
        actions)."""
        body = parse_body(ActionRequest, await request.body())
        service = service_of(request)
        if service is None:
            return _unavailable()
        try:
            answer = await service.commit(body, who=caller_of(request))
        except InvalidRequest:
            service.metrics.requests.labels("actions", "422").inc()
            raise
        if answer.refused:
            service.metrics.requests.labels("actions", "409").inc()
            refusal = {
                "status": answer.status,
                "check": answer.check,
                "detail": answer.detail,
                "action_id": answer.action_id,
                "replayed": answer.replayed,
                "dry_run": answer.dry_run,
            }
            return JSONResponse(refusal, status_code=409)
        service.metrics.requests.labels("actions", "202").inc()
        accepted = {
            "action_id": answer.action_id,
            "status": answer.status,
            "idempotency_key": answer.idempotency_key,
            "replayed": answer.replayed,
            "checks_passed": list(answer.checks_passed),
            "dry_run": answer.dry_run,
        }
        return JSONResponse(accepted, status_code=202)

    @api.get(
        "/v1/actions/{action_id}",
        responses={
            200: {"model": ActionState},
            404: {"model": ErrorAnswer, "description": "No action has this id."},
            503: UNAVAILABLE,
        },
    )
    async def action_state(action_id: str, request: Request) -> JSONResponse:
        """An action's status — queued, delivered, failed, refused or dry_run — and its
        history."""
        service = service_of(request)
        if service is None:
            return _unavailable()
        state = service.get(action_id)
        if state is None:
            missing = {"loc": ["path", "action_id"], "msg": "no action has this id"}
            return JSONResponse({"detail": [{**missing, "type": "not_found"}]}, status_code=404)
        return JSONResponse(state)
