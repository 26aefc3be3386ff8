"""POST /v1/decide, the request apps send in a customer's session: its answer, and the front
that serves it ahead of FastAPI's middleware and router.

`decide_answer` is what the route does: parse the body (`parse_body`: a 422 naming each
field), keep the caller's trace or start one (`trace_context`), decide, count, render the
answer once (pydantic-core). `DecideFrontAPI` is a FastAPI app but for one thing: a POST
to /v1/decide skips its middleware stack, its router and FastAPI's request handling, and
gets the same checks from the same code instead — the API key, role and rate
(`Access.check`, answered by `deny`), then the body-size limit (`read_body`,
`too_large`) — then `decide_answer`. Its errors go to the app's exception handlers as the
route's would (InvalidRequest: 422; LogUnavailable: 503; whatever the host adds, such as
Ray Serve's back-pressure errors: 503); any other error reaches the host (a 500). Every
other request, other methods on /v1/decide included (405), goes through FastAPI as
before. The route stays in the router: it puts the operation in the OpenAPI document and,
reached through the stack, answers the same (tests/serving/test_decide_front.py holds the
two to each other). FastAPI's own OpenTelemetry middleware (on once an OTEL exporter is
configured) does not see these requests: their trace is the traceparent header's.

What the front bought, in CPU per request (`cd load_tests && ../.venv/bin/python -m
harness.shell --home HOME`, three runs): the shell alone 22–31 µs, against 77–132 µs through
FastAPI's stack and the floor's 63–88 µs (FastAPI with a pydantic body and a dict answer).
Under plain uvicorn the server's CPU per decision fell from 0.50–0.71 ms to 0.45–0.47 ms
(README: Serving).
"""

from __future__ import annotations

import inspect
import re
import secrets
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from pydantic_core import to_json
from starlette.requests import Request

from serving.access import Access
from serving.access_http import deny, first_header, route_path
from serving.api_models import DecideRequest
from serving.bodies import BodyTooLarge, declared_too_large, parse_body, read_body, too_large
from serving.service import DecisionService, InvalidRequest

DECIDE_PATH = "/v1/decide"
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_JSON = (b"content-type", b"application/json")

ServiceOf = Callable[[dict[str, Any]], DecisionService]
AccessOf = Callable[[dict[str, Any]], Access]


def trace_context(header: str | None) -> tuple[str, str]:
    """W3C trace context: keep the caller's trace id, start a new span; or start a trace."""
    match = TRACEPARENT.match(header or "")
    trace_id = match.group(1) if match and match.group(1) != "0" * 32 else secrets.token_hex(16)
    span_id = secrets.token_hex(8)
    return trace_id, f"00-{trace_id}-{span_id}-01"


async def decide_answer(
    service: DecisionService, body: bytes, traceparent: str | None
) -> tuple[bytes, str]:
    """The answer to a decide request's `body` as JSON, and its traceparent header.
    `InvalidRequest` for a body that is not a DecideRequest and for a request the service
    refuses (that one counted as a 422)."""
    request = parse_body(DecideRequest, body)
    trace_id, header = trace_context(traceparent)
    try:
        answer = await service.decide(request, trace_id)
    except InvalidRequest:
        service.metrics.requests.labels("decide", "422").inc()
        raise
    service.metrics.requests.labels("decide", "200").inc()
    return to_json(answer), header


class DecideFrontAPI(FastAPI):
    """A FastAPI app that answers POST /v1/decide ahead of its middleware and router, with
    the service and access `service_of(scope)` and `access_of(scope)` give and bodies of at
    most `max_body_bytes`."""

    def __init__(
        self, service_of: ServiceOf, access_of: AccessOf, max_body_bytes: int, **options: Any
    ) -> None:
        super().__init__(**options)
        self.service_of = service_of
        self.access_of = access_of
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope, receive, send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and route_path(scope) == DECIDE_PATH
        ):
            scope["app"] = self  # as Starlette sets it: the exception handlers read app.state
            await self._decide(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def _decide(self, scope, receive, send) -> None:
        headers = scope["headers"]
        denial = self.access_of(scope).check(DECIDE_PATH, first_header(headers, b"authorization"))
        if denial is not None:
            return await deny(send, denial)
        if declared_too_large(headers, self.max_body_bytes):
            return await too_large(send, self.max_body_bytes)
        try:
            body = await read_body(receive, self.max_body_bytes)
            if body is None:
                return  # the client left before its body was in: no one to answer
            answer, traceparent = await decide_answer(
                self.service_of(scope), body, first_header(headers, b"traceparent")
            )
        except BodyTooLarge:
            return await too_large(send, self.max_body_bytes)
        except Exception as exc:
            handler = self._handler_of(exc)
            if handler is None:
                raise
            response = handler(Request(scope, receive), exc)
            if inspect.isawaitable(response):
                response = await response
            return await response(scope, receive, send)
        length = (b"content-length", b"%d" % len(answer))
        answer_headers = [_JSON, length, (b"traceparent", traceparent.encode())]
        await send({"type": "http.response.start", "status": 200, "headers": answer_headers})
        await send({"type": "http.response.body", "body": answer})

    def _handler_of(self, exc: Exception) -> Callable | None:
        """The app's handler of `exc`'s class or the nearest base that has one, as
        Starlette's ExceptionMiddleware finds it; a handler of `Exception` itself is
        the server-error middleware's, which this front does not stand in for."""
        for cls in type(exc).__mro__:
            if cls is Exception:
                return None
            if cls in self.exception_handlers:
                return self.exception_handlers[cls]
        return None
