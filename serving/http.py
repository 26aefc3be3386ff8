"""The HTTP layer: validation and translation only; decisions are `DecisionService`'s,
commits of actions `ActionService`'s (their routes: serving/actions_http.py), customer
events `EventService`'s (serving/events_http.py).

`api_for(config)` builds the FastAPI app (`create_api` with the configured body-size limit,
action ids and action TTL) that a Ray Serve ingress replica serves and that the plain
uvicorn baseline runs; the host attaches the services as `app.state.service`,
`app.state.actions` and `app.state.events` (uvicorn) or with `install` (a Ray Serve
replica). The app answers POST /v1/decide ahead of its middleware and router
(serving/decide_http.py); every other request passes the middleware — API keys outermost,
then the body-size limit — and the router.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from configs.loader import LiftgateConfig
from experiments.logs.wal import LogUnavailable
from serving.access import Access
from serving.access_http import protect
from serving.actions import ActionService
from serving.actions_http import add_action_routes
from serving.api_models import (
    DecideRequest,
    DecideResponse,
    OutcomeRequest,
    OutcomeResponse,
    action_request_schema,
    decide_request_schema,
)
from serving.bodies import LOG_UNAVAILABLE, BodySizeLimit, json_body, parse_body, request_body
from serving.consent_http import ConsentUpdates, add_consent_routes
from serving.decide_http import DecideFrontAPI, decide_answer
from serving.events import EventService
from serving.events_http import add_event_routes
from serving.service import DecisionService, InvalidRequest

METRICS_TYPE = "text/plain; version=0.0.4"  # Prometheus' text exposition format


_installed: DecisionService | None = None
_installed_access: Access | None = None
_installed_actions: ActionService | None = None
_installed_consent: ConsentUpdates | None = None
_installed_events: EventService | None = None


def install(
    service: DecisionService,
    access: Access,
    actions: ActionService | None = None,
    consent: ConsentUpdates | None = None,
    events: EventService | None = None,
) -> None:
    """Serve `service` (and `actions`, `consent` changes and customer `events`) from this
    process's API, behind `access`. Ray Serve hands the ingress a copy of the FastAPI app,
    so its `app.state` is not the replica's; these globals are."""
    global _installed, _installed_access, _installed_actions, _installed_consent
    global _installed_events
    _installed, _installed_access = service, access
    _installed_actions, _installed_consent, _installed_events = actions, consent, events


def _service(request: Request) -> DecisionService:
    return _service_of(request.scope)


def _service_of(scope: dict[str, Any]) -> DecisionService:
    """`app.state.service` (uvicorn) or `install`'s."""
    return getattr(scope["app"].state, "service", None) or _installed


def _actions(request: Request) -> ActionService | None:
    """`app.state.actions` (uvicorn) or `install`'s; None: actions are not served here."""
    return getattr(request.app.state, "actions", None) or _installed_actions


def _consent(request: Request) -> ConsentUpdates | None:
    """`app.state.consent` (uvicorn) or `install`'s; None: consent is not taken here."""
    return getattr(request.app.state, "consent", None) or _installed_consent


def _events(request: Request) -> EventService | None:
    """`app.state.events` (uvicorn) or `install`'s; None: events are not taken here."""
    return getattr(request.app.state, "events", None) or _installed_events


def _caller(request: Request) -> str:
    """Who sent the request, as the audit log names them: its API key's id."""
    return _access(request.scope).caller(request.headers.get("authorization"))


def _access(scope: dict) -> Access:
    """`app.state.access` (uvicorn) or `install`'s; until either is set, no key passes."""
    return getattr(scope["app"].state, "access", None) or _installed_access or Access.closed()


def create_api(
    max_body_bytes: int = 16_384,
    decide_schema: dict | None = None,
    action_schema: dict | None = None,
) -> FastAPI:
    """The API; its OpenAPI documents the decide and action bodies with `decide_schema` and
    `action_schema` (default: the models' own). `api_for` builds it as a configuration has
    it."""
    api = DecideFrontAPI(  # POST /v1/decide ahead of the middleware and router
        _service_of,
        _access,
        max_body_bytes,
        title="liftgate",
        description="Marketing decisions: decide, report outcomes, observe.",
        version="0.1.0",
        docs_url=None,  # /docs is protect's: behind a key, the document inline
        redoc_url=None,
    )
    api.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    protect(api, _access)  # API keys and rate limits (serving/access.py), outermost

    @api.exception_handler(InvalidRequest)
    async def invalid(_: Request, exc: InvalidRequest) -> JSONResponse:
        return JSONResponse({"detail": exc.errors}, status_code=422)

    @api.exception_handler(LogUnavailable)
    async def log_unavailable(request: Request, _: LogUnavailable) -> JSONResponse:
        """A decision, outcome or event that cannot be logged durably is not acknowledged."""
        endpoint = request.url.path.rsplit("/", 1)[-1]
        _service(request).metrics.requests.labels(endpoint, "503").inc()
        detail = "the log cannot be written now: not acknowledged, retry later"
        return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": "1"})

    @api.post(
        "/v1/decide",
        responses={200: {"model": DecideResponse}, 503: LOG_UNAVAILABLE},
        openapi_extra=request_body(decide_schema) if decide_schema else json_body(DecideRequest),
    )
    async def decide(request: Request) -> Response:
        """`DecideFrontAPI` answers POST /v1/decide before it gets here; behind the stack,
        this route answers the same, and documents the operation."""
        answer, traceparent = await decide_answer(
            _service(request), await request.body(), request.headers.get("traceparent")
        )
        headers = {"traceparent": traceparent}
        return Response(answer, media_type="application/json", headers=headers)

    @api.post(
        "/v1/outcomes",
        responses={200: {"model": OutcomeResponse}, 503: LOG_UNAVAILABLE},
        openapi_extra=json_body(OutcomeRequest),
    )
    async def outcomes(request: Request) -> JSONResponse:
        # Parsed like /v1/decide: FastAPI's own 422 echoes the input, and a NaN in the
        # body cannot be written back as JSON (a 500).
        body = parse_body(OutcomeRequest, await request.body())
        service = _service(request)
        try:
            answer = await service.record_outcome(body)
        except InvalidRequest:
            service.metrics.requests.labels("outcomes", "422").inc()
            raise
        service.metrics.requests.labels("outcomes", "200").inc()
        return JSONResponse(answer)

    add_action_routes(api, _actions, _caller, action_schema)  # POST, GET /v1/actions
    add_consent_routes(api, _consent, _caller)  # PUT /v1/consent/{customer_id}
    add_event_routes(api, _events)  # POST /v1/events

    @api.get("/healthz")
    async def healthz(request: Request) -> dict:
        """Liveness, open to all: nothing about rollouts (their salt would let a caller
        find who is in the canary); `auth` says whether keys are asked."""
        return {"status": "ok", "auth": "on" if _access(request.scope).enabled else "off"}

    @api.get("/v1/canary")
    async def canary(request: Request) -> dict:
        """The rollout split this replica serves (null: none), for operators."""
        split = _service(request).canary()
        return {"canary": split.to_dict() if split else None}

    @api.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        parts = await _service(request).readiness()
        ready = all(parts.values())
        return JSONResponse({"ready": ready, **parts}, status_code=200 if ready else 503)

    @api.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {METRICS_TYPE: {"schema": {"type": "string"}}}}},
    )
    async def metrics(request: Request) -> Response:
        """Prometheus text exposition format 0.0.4."""
        return Response(_service(request).metrics.exposition(), media_type=METRICS_TYPE)

    return api


def api_for(config: LiftgateConfig) -> FastAPI:
    """The API as a configuration has it: its body-size limit, and the bodies it takes in
    its OpenAPI (decide: the catalogue's action ids, the contract's request features;
    actions: the TTL's default and maximum)."""
    return create_api(
        config.serving.max_body_bytes, decide_request_schema(config), action_request_schema(config)
    )
