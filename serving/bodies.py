"""Request bodies on the HTTP API: parsed once into their model, documented in the OpenAPI.

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

from typing import TypeVar

from pydantic import BaseModel, ValidationError

from serving.service import InvalidRequest

M = TypeVar("M", bound=BaseModel)

#: The OpenAPI answer of a request whose record cannot be logged (`log_unavailable`).
LOG_UNAVAILABLE = {
    "description": "The log cannot be written now (a failing disk): not acknowledged; retry "
    "after Retry-After seconds.",
    "headers": {"Retry-After": {"schema": {"type": "integer"}}},
}


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
