"""The HTTP layer: validation and translation only; decisions are `DecisionService`'s.

`create_api()` builds the FastAPI app that the Ray Serve ingress wraps and that the plain
uvicorn baseline runs; the host attaches the service as `app.state.service` (uvicorn) or
with `install` (a Ray Serve replica).
"""

from __future__ import annotations

import re
import secrets
from typing import TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError
from pydantic_core import to_json

from serving.api_models import DecideRequest, DecideResponse, OutcomeRequest, OutcomeResponse
from serving.service import DecisionService, InvalidRequest

M = TypeVar("M", bound=BaseModel)
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


class BodySizeLimit:
    """Pure ASGI middleware: 413 for bodies over `max_bytes`, checked before parsing."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                return await self._reject(send)
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise _TooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await self._reject(send)

    async def _reject(self, send) -> None:
        body = (
            b'{"detail":[{"loc":["body"],"msg":"request body larger than %d bytes",'
            b'"type":"too_large"}]}' % self.max_bytes
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


def trace_context(header: str | None) -> tuple[str, str]:
    """W3C trace context: keep the caller's trace id, start a new span; or start a trace."""
    match = TRACEPARENT.match(header or "")
    trace_id = match.group(1) if match and match.group(1) != "0" * 32 else secrets.token_hex(16)
    span_id = secrets.token_hex(8)
    return trace_id, f"00-{trace_id}-{span_id}-01"


_installed: DecisionService | None = None


def install(service: DecisionService) -> None:
    """Serve `service` from this process's API. Ray Serve hands the ingress a copy of the
    FastAPI app, so its `app.state` is not the replica's; this module global is."""
    global _installed
    _installed = service


def _service(request: Request) -> DecisionService:
    return getattr(request.app.state, "service", None) or _installed


class RustJSONResponse(JSONResponse):
    """JSON rendered by pydantic-core (Rust): several times faster than `json.dumps`."""

    def render(self, content: object) -> bytes:
        return to_json(content)


def _json_body(model: type[BaseModel]) -> dict:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _parse(model: type[M], body: bytes) -> M:
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = [
            {"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False)
        ]
        raise InvalidRequest(errors) from None


def create_api(max_body_bytes: int = 16_384) -> FastAPI:
    api = FastAPI(
        title="liftgate",
        description="Marketing decisions: decide, report outcomes, observe.",
        version="0.1.0",
    )
    api.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)

    @api.exception_handler(InvalidRequest)
    async def invalid(_: Request, exc: InvalidRequest) -> JSONResponse:
        return JSONResponse({"detail": exc.errors}, status_code=422)

    @api.post(
        "/v1/decide",
        responses={200: {"model": DecideResponse}, 413: {}, 422: {}},
        openapi_extra=_json_body(DecideRequest),
    )
    async def decide(request: Request) -> JSONResponse:
        # Parsed here rather than by FastAPI's dependency machinery: on this path that
        # machinery costs more than the decision itself (load_tests/bench_decide.py).
        body = _parse(DecideRequest, await request.body())
        service = _service(request)
        trace_id, traceparent = trace_context(request.headers.get("traceparent"))
        try:
            answer = await service.decide(body, trace_id)
        except InvalidRequest:
            service.metrics.requests.labels("decide", "422").inc()
            raise
        service.metrics.requests.labels("decide", "200").inc()
        return RustJSONResponse(answer, headers={"traceparent": traceparent})

    @api.post("/v1/outcomes", responses={200: {"model": OutcomeResponse}, 422: {}})
    async def outcomes(body: OutcomeRequest, request: Request) -> JSONResponse:
        service = _service(request)
        answer = service.record_outcome(body)
        service.metrics.requests.labels("outcomes", "200").inc()
        return JSONResponse(answer)

    @api.get("/healthz")
    async def healthz(request: Request) -> dict:
        split = _service(request).canary()
        return {"status": "ok", "canary": split.to_dict() if split else None}

    @api.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        parts = await _service(request).readiness()
        ready = all(parts.values())
        return JSONResponse({"ready": ready, **parts}, status_code=200 if ready else 503)

    @api.get("/metrics")
    async def metrics(request: Request) -> Response:
        return Response(
            _service(request).metrics.exposition(), media_type="text/plain; version=0.0.4"
        )

    return api
