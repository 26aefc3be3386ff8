"""Request bodies on the HTTP API: at most `serving.max_body_bytes`, parsed once into their
model, documented in the OpenAPI.

`BodySizeLimit` (an ASGI middleware) and `read_body` (POST /v1/decide's front,
serving/decide_http.py) answer a body over the limit with `too_large`'s 413 before it is
parsed: at once when its Content-Length says so, else once the bytes received pass it.
The routes (serving/http.py, serving/actions_http.py) read the body themselves rather than
through FastAPI's dependency machinery, which on the decision path costs more than the
decision, and which answers a bad body with a 422 that echoes the input (a NaN in it
cannot be written back as JSON: a 500). `parse_body` answers with `InvalidRequest`
instead (the API's 422, naming each field); `json_body` and `request_body` put the body's
schema in the OpenAPI document.

>>> from serving.api_models import OutcomeRequest
>>> parse_body(OutcomeRequest, b'{"decision_id": "d1", "event": "conversion"}').value
1.0
>>> try:
...     parse_body(OutcomeRequest, b'{"event": "conversion"}')
... except InvalidRequest as exc:
...     [error["loc"] for error in exc.errors]
[['body', 'decision_id']]
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from serving.service import InvalidRequest

M = TypeVar("M", bound=BaseModel)

#: The OpenAPI answer of a request whose record cannot be logged (`log_unavailable`).
LOG_UNAVAILABLE = {
    "description": "The log cannot be written now (a failing disk): not acknowledged; retry "
    "after Retry-After seconds.",
    "headers": {"Retry-After": {"schema": {"type": "integer"}}},
}


class BodyTooLarge(Exception):
    """The body received so far is larger than the limit."""


def declared_too_large(headers: Iterable[tuple[bytes, bytes]], max_bytes: int) -> bool:
    """Whether a Content-Length header announces more than `max_bytes`."""
    return any(
        name == b"content-length" and value.isdigit() and int(value) > max_bytes
        for name, value in headers
    )


async def read_body(
    receive: Callable[[], Awaitable[dict[str, Any]]], max_bytes: int
) -> bytes | None:
    """The whole body of a request; `BodyTooLarge` as soon as more than `max_bytes` have
    come, None if the client left before the end."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)  # one chunk, the usual case: that chunk, not a copy


async def too_large(send, max_bytes: int) -> None:
    """Answer 413 in the API's error shape."""
    body = (
        b'{"detail":[{"loc":["body"],"msg":"request body larger than %d bytes",'
        b'"type":"too_large"}]}' % max_bytes
    )
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    """Pure ASGI middleware: 413 for bodies over `max_bytes`, checked before parsing."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if declared_too_large(scope.get("headers", ()), self.max_bytes):
            return await too_large(send, self.max_bytes)
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise BodyTooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except BodyTooLarge:
            await too_large(send, self.max_bytes)


def json_body(model: type[BaseModel]) -> dict:
    """The OpenAPI request body of `model`."""
    return request_body(model.model_json_schema(ref_template="#/components/schemas/{model}"))


def request_body(schema: dict) -> dict:
    """The OpenAPI request body of a JSON schema."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def parse_body(model: type[M], body: bytes) -> M:
    """The body as a `model`, or `InvalidRequest` naming each field that is wrong."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = [
            {"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False)
        ]
        raise InvalidRequest(errors) from None
