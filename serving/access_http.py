"""Access control on the HTTP API: the middleware that asks every request for its key, what
the OpenAPI document says about it, and /docs behind a key.

`protect(api, access_of)` wraps a FastAPI app: a pure ASGI middleware checks each request
with `serving.access.Access.check` before routing (so /openapi.json and /docs are covered
too) and answers a denial itself (`deny`), as JSON in the API's error shape: 401 with
``WWW-Authenticate: Bearer``, 403, or 429 with ``Retry-After``. POST /v1/decide's front
(serving/decide_http.py), which runs ahead of the middleware, checks and answers the same
way. `access_of(scope)` gives the `Access` of the process serving the request (it is set
up after the app is built). A path's roles are those of its route (`route_path`): below a
root path (uvicorn's --root-path), /api/metrics is /metrics.

The OpenAPI document gets the bearer scheme and, on every operation, the answers it can
give: 401, 403 (when not every role may call it) and 429 behind a key; 413 and 422 when it
takes a body. /docs is Swagger UI with the document inline: a browser sends no key when the
page fetches /openapi.json, so the page must not need to.

>>> paths = {"/metrics": {"get": {}}, "/healthz": {"get": {}}}
>>> operations = document_access({"paths": paths})["paths"]
>>> sorted(operations["/metrics"]["get"]["responses"]), operations["/metrics"]["get"]["security"]
(['401', '403', '429'], [{'apiKey': []}])
>>> operations["/healthz"]["get"]["responses"], operations["/healthz"]["get"]["security"]
({}, [])
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from serving.access import ANY_ROLE, Access, Denial, roles_for
from serving.api_keys import ROLES
from serving.api_models import ErrorAnswer

AccessOf = Callable[[dict[str, Any]], Access]
SCHEME = "apiKey"


class AccessMiddleware:
    """Pure ASGI middleware: a request `Access.check` refuses is answered here."""

    def __init__(self, app, access_of: AccessOf):
        self.app = app
        self.access_of = access_of

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        authorization = first_header(scope["headers"], b"authorization")
        denial = self.access_of(scope).check(route_path(scope), authorization)
        if denial is None:
            return await self.app(scope, receive, send)
        await deny(send, denial)


def route_path(scope: dict[str, Any]) -> str:
    """The request's path below the app's root path (uvicorn's --root-path, a Serve route
    prefix), as the router matches it: the path whose roles apply."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root + "/") else path


def first_header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    """The value of a request's first header `name` (lower case, as ASGI has it), if any."""
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return None


def _denial_headers(denial: Denial) -> list[tuple[bytes, bytes]]:
    headers = [(b"content-type", b"application/json")]
    if denial.status == 401:
        error = b"" if denial.kind == "missing_credentials" else b' error="invalid_token"'
        headers.append((b"www-authenticate", b'Bearer realm="liftgate"' + error))
    if denial.retry_after_s is not None:
        headers.append((b"retry-after", str(denial.retry_after_s).encode()))
    return headers


async def deny(send, denial: Denial) -> None:
    """Answer a refused request: the denial's status, headers and message."""
    detail = [{"loc": ["header", "authorization"], "msg": denial.message, "type": denial.kind}]
    body = json.dumps({"detail": detail}).encode()
    headers = _denial_headers(denial)
    await send({"type": "http.response.start", "status": denial.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# --- the OpenAPI document ------------------------------------------------------------------------

_ERROR_SCHEMA = {"$ref": "#/components/schemas/ErrorAnswer"}
_ERROR_REF = {"content": {"application/json": {"schema": _ERROR_SCHEMA}}}


def _error(description: str, **extra: Any) -> dict[str, Any]:
    return {"description": description, **_ERROR_REF, **extra}


def _needs(roles: frozenset[str]) -> str:
    if roles == ANY_ROLE:
        return "any API key"
    return "an API key of role " + " or ".join(role for role in ROLES if role in roles)


def document_access(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the bearer scheme and each operation's error answers to an OpenAPI document."""
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})[SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key from `liftgate keys create --role ROLE`.",
    }
    answer = ErrorAnswer.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas = components.setdefault("schemas", {})
    schemas.update(answer.pop("$defs"))
    schemas["ErrorAnswer"] = answer
    for path, operations in schema.get("paths", {}).items():
        roles = roles_for(path)
        for operation in operations.values():
            answers = operation.setdefault("responses", {})
            if "requestBody" in operation:
                answers["413"] = _error("The body is larger than serving.max_body_bytes.")
                answers["422"] = _error("The request is not what this operation takes.")
            if roles is None:
                operation["security"] = []
                continue
            operation["security"] = [{SCHEME: []}]
            needs = _needs(roles)
            described = operation.get("description", "")
            operation["description"] = f"{described}\n\nNeeds {needs}.".lstrip()
            answers["401"] = _error(
                "No API key, a malformed Authorization header, or an unknown or revoked key."
            )
            if roles != ANY_ROLE:
                answers["403"] = _error(f"The key's role may not call this: it needs {needs}.")
            answers["429"] = _error(
                "The key's rate limit on this replica is spent.",
                headers={
                    "Retry-After": {
                        "description": "Seconds until the key may send again.",
                        "schema": {"type": "integer"},
                    }
                },
            )
    return schema


def protect(api: FastAPI, access_of: AccessOf) -> None:
    """Put `api` behind API keys: the middleware (outside those added before it), the
    documented answers, and /docs. Build `api` with ``docs_url=None``."""
    api.add_middleware(AccessMiddleware, access_of=access_of)
    build = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            api.openapi_schema = document_access(build())
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]

    @api.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=api.openapi_url or "",
            title=f"{api.title} API",
            swagger_ui_parameters={"spec": api.openapi()},
        )
