"""POST /v1/decide's front (serving/decide_http.py): the same answers as the route behind
FastAPI's middleware and router, for every case the front handles itself, and every other
request left to FastAPI.

Requests are driven through the ASGI app directly (`exchange`): the test client cannot send
a body in chunks, drop the connection, or set a root path."""

from __future__ import annotations

import json
from typing import Any

import pytest
from clocks import ManualClock  # tests/, beside conftest.py
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from experiments.logs.wal import LogUnavailable
from liftgate.core.home import Home
from serving import http
from serving.access import Access
from serving.api_keys import ADMIN, ANALYST, APP, OPERATOR, KeyRing, KeyStore
from serving.http import create_api
from serving.rate_limit import TokenBuckets

MAX_BODY = 2_048
DECIDE = {"customer_id": "c0000003"}


@pytest.fixture
def keys(tmp_path) -> dict[str, str]:
    store = KeyStore.for_home(Home(tmp_path))
    return {role: store.create(role).key for role in (APP, OPERATOR, ADMIN, ANALYST)}


def access(home: Home, burst: int = 1_000, clock=None) -> Access:
    """The keys of `home`, `burst` requests per key at once, then one a second."""
    ring = KeyRing(KeyStore.for_home(home).path, recheck_s=3600.0)
    buckets = TokenBuckets(per_s=1.0, burst=burst, **({"clock": clock} if clock else {}))
    return Access(ring.verify, buckets)


@pytest.fixture
def api(make_service, tmp_path, keys):
    api = create_api(max_body_bytes=MAX_BODY)
    api.state.service = make_service()
    api.state.access = access(Home(tmp_path))
    return api


@pytest.fixture
def client(api):
    with TestClient(api) as client:
        yield client


def scope(
    method: str = "POST",
    path: str = "/v1/decide",
    headers: dict[str, str] | None = None,
    root_path: str = "",
) -> dict[str, Any]:
    raw = [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 50000),
        "root_path": root_path,
        "path": root_path + path,
        "raw_path": (root_path + path).encode(),
        "query_string": b"",
        "headers": [(b"host", b"testserver"), *raw],
    }


class Answer:
    def __init__(self, sent: list[dict[str, Any]], received: int):
        start = next((m for m in sent if m["type"] == "http.response.start"), None)
        self.status = start["status"] if start else None
        self.headers = {k.decode(): v.decode() for k, v in start["headers"]} if start else {}
        self.body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        self.received = received  # how many messages the app took from `receive`

    def json(self) -> Any:
        return json.loads(self.body)


def exchange(client: TestClient, app, request: dict[str, Any], chunks: list[bytes]) -> Answer:
    """`request` (a scope) with its body in `chunks`, sent to the ASGI callable `app` on the
    test client's event loop; after the last chunk, the client is gone."""

    async def run() -> Answer:
        sent: list[dict[str, Any]] = []
        received = 0

        async def receive() -> dict[str, Any]:
            nonlocal received
            received += 1
            if received > len(chunks):
                return {"type": "http.disconnect"}
            more = received < len(chunks)
            return {"type": "http.request", "body": chunks[received - 1], "more_body": more}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(request, receive, send)
        return Answer(sent, received)

    return client.portal.call(run)


def both(client: TestClient, api, request: dict[str, Any], chunks: list[bytes]):
    """The answer of the front, and of the route through FastAPI's stack (as before it)."""

    def stack(scope, receive, send):
        return FastAPI.__call__(api, scope, receive, send)

    return exchange(client, api, dict(request), chunks), exchange(client, stack, request, chunks)


def bearer(key: str, **headers: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}", **headers}


def body(document: Any) -> list[bytes]:
    return [json.dumps(document).encode()]


def refusals(keys: dict[str, str]) -> list[tuple[dict[str, str], list[bytes], int]]:
    """Requests the front refuses, each with its body and expected status."""
    json_type = {"content-type": "application/json"}
    return [
        ({}, body(DECIDE), 401),  # no key
        ({"authorization": f"Basic {keys[APP]}"}, body(DECIDE), 401),  # not Bearer
        (bearer("lg_nothing"), body(DECIDE), 401),  # unknown key
        (bearer(keys[OPERATOR]), body(DECIDE), 403),
        (bearer(keys[ADMIN]), body(DECIDE), 403),
        (bearer(keys[ANALYST]), body(DECIDE), 403),
        # A key check comes before the body's size: no key and too large is a 401.
        ({"content-length": str(MAX_BODY + 1)}, [b"{}"], 401),
        (bearer(keys[APP], **{"content-length": str(MAX_BODY + 1)}), [b"{}"], 413),
        (bearer(keys[APP]), [b'{"customer_id": "', b"x" * MAX_BODY, b'"}'], 413),  # chunked
        (bearer(keys[APP]), [b"{not json"], 422),
        (bearer(keys[APP], **json_type), [b"[]"], 422),  # not an object
        (bearer(keys[APP]), [b'"c0000003"'], 422),
        (bearer(keys[APP]), [b"null"], 422),
        (bearer(keys[APP]), [b""], 422),
        (bearer(keys[APP]), [b'{"customer_id": NaN}'], 422),  # a NaN is never a 500
        (bearer(keys[APP]), [b'{"customer_id": "c1", "context": {"x": NaN}}'], 422),
        (bearer(keys[APP]), body({"customer_id": "c1", "colour": "red"}), 422),
        (bearer(keys[APP]), body({"customer_id": "c1", "candidates": ["nope"]}), 422),  # service's
    ]


def test_refusals_are_the_routes_status_headers_and_body(client, api, keys) -> None:
    for headers, chunks, status in refusals(keys):
        front, stack = both(client, api, scope(headers=headers), chunks)
        assert front.status == stack.status == status, (headers, chunks, front.body)
        assert front.headers == stack.headers and front.body == stack.body, (headers, chunks)


def test_a_decision_is_the_routes(client, api, keys) -> None:
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    request = scope(headers=bearer(keys[APP], traceparent=f"00-{trace}-00f067aa0ba902b7-01"))
    front, stack = both(client, api, request, body({**DECIDE, "request_id": "r1"}))
    assert front.status == stack.status == 200
    assert (
        front.headers.keys()
        == stack.headers.keys()
        == {
            "content-type",
            "content-length",
            "traceparent",
        }
    )
    assert front.headers["content-type"] == stack.headers["content-type"] == "application/json"
    assert int(front.headers["content-length"]) == len(front.body)
    assert front.json().keys() == stack.json().keys()
    assert front.json()["trace_id"] == stack.json()["trace_id"] == trace
    assert front.json()["request_id"] == "r1" and front.json()["customer_id"] == "c0000003"
    assert front.headers["traceparent"].split("-")[1] == trace


def test_any_content_type_is_taken_as_before(client, api, keys) -> None:
    """The route never looked at Content-Type: a JSON body is a JSON body."""
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        request = scope(headers=bearer(keys[APP], **{"content-type": content_type}))
        front, stack = both(client, api, request, body(DECIDE))
        assert front.status == stack.status == 200


def test_a_body_in_chunks_is_read_whole(client, api, keys) -> None:
    chunks = [b'{"customer_id"', b': "c0000003",', b' "request_id": "r2"}']
    answer = exchange(client, api, scope(headers=bearer(keys[APP])), chunks)
    assert answer.status == 200 and answer.json()["request_id"] == "r2"


def test_a_chunked_body_over_the_limit_is_refused_before_the_rest_is_read(
    client, api, keys
) -> None:
    chunks = [b"{" + b" " * MAX_BODY, b"}", b" " * 10]
    answer = exchange(client, api, scope(headers=bearer(keys[APP])), chunks)
    assert answer.status == 413 and answer.received == 1


def test_a_client_gone_before_its_body_gets_no_answer_and_no_decision(client, api, keys) -> None:
    answer = exchange(client, api, scope(headers=bearer(keys[APP])), [])  # a disconnect
    assert answer.status is None and answer.body == b""
    assert counted(api.state.service) == {}


def counted(service) -> dict[tuple[str, str], float]:
    """liftgate_requests by (endpoint, status)."""
    return {
        (s.labels["endpoint"], s.labels["status"]): s.value
        for family in service.metrics.registry.collect()
        if family.name == "liftgate_requests"
        for s in family.samples
        if s.name == "liftgate_requests_total"
    }


def test_a_key_over_its_rate_gets_429_from_the_front(client, api, keys, tmp_path) -> None:
    clock = ManualClock()
    api.state.access = access(Home(tmp_path), burst=3, clock=clock)
    request = scope(headers=bearer(keys[APP]))
    statuses = [exchange(client, api, dict(request), body(DECIDE)).status for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    refused = exchange(client, api, dict(request), body(DECIDE))
    assert refused.headers["retry-after"] == "1"
    assert refused.json()["detail"][0]["type"] == "rate_limited"
    clock.now += 1.0
    assert exchange(client, api, dict(request), body(DECIDE)).status == 200


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "OPTIONS"])
def test_other_methods_go_to_fastapi_a_405_behind_the_key_check(client, api, keys, method):
    assert exchange(client, api, scope(method=method), []).status == 401
    answer = exchange(client, api, scope(method=method, headers=bearer(keys[APP])), [])
    assert answer.status == 405 and answer.headers["allow"] == "POST"


def test_other_paths_keep_the_middleware_order(client, keys) -> None:
    """Keys outermost, then the body-size limit: no key and too large is a 401."""
    big = {"decision_id": "d", "event": "conversion", "x": "y" * MAX_BODY}
    assert client.post("/v1/outcomes", json=big).status_code == 401
    assert client.post("/v1/outcomes", json=big, headers=bearer(keys[APP])).status_code == 413


def test_a_path_that_is_not_the_routes_goes_to_fastapi(client, api, keys) -> None:
    request = scope(path="/v1/decide/", headers=bearer(keys[APP]))
    assert exchange(client, api, request, body(DECIDE)).status == 307  # to /v1/decide


def test_a_log_that_cannot_be_written_is_a_503_counted(client, api, keys, monkeypatch) -> None:
    service = client.app.state.service

    async def unavailable(request, trace_id):
        raise LogUnavailable("disk full")

    monkeypatch.setattr(service, "decide", unavailable)
    front, stack = both(client, api, scope(headers=bearer(keys[APP])), body(DECIDE))
    assert front.status == stack.status == 503
    assert front.headers == stack.headers and front.headers["retry-after"] == "1"
    assert front.body == stack.body
    assert counted(service) == {("decide", "503"): 2.0}


def test_a_hosts_exception_handler_answers_its_errors(client, api, keys, monkeypatch) -> None:
    """Ray Serve adds handlers to the app (back-pressure: 503); the front uses them."""

    class BackPressure(RuntimeError):
        pass

    async def overloaded(request, trace_id):
        raise BackPressure

    api.add_exception_handler(BackPressure, lambda request, exc: JSONResponse({}, 503))
    monkeypatch.setattr(client.app.state.service, "decide", overloaded)
    answer = exchange(client, api, scope(headers=bearer(keys[APP])), body(DECIDE))
    assert answer.status == 503 and answer.json() == {}


def test_an_unhandled_error_reaches_the_host(client, api, keys, monkeypatch) -> None:
    async def broken(request, trace_id):
        raise ZeroDivisionError

    monkeypatch.setattr(client.app.state.service, "decide", broken)
    with pytest.raises(ZeroDivisionError):
        exchange(client, api, scope(headers=bearer(keys[APP])), body(DECIDE))


def test_counters_are_the_routes(client, api, keys) -> None:
    request = scope(headers=bearer(keys[APP]))
    for chunks in (body(DECIDE), body({"customer_id": "c1", "candidates": ["nope"]}), [b"[]"]):
        both(client, api, request, chunks)  # each twice: through the front and the route
    # A body that is no DecideRequest is refused before the service: not counted, as before.
    assert counted(api.state.service) == {("decide", "200"): 2.0, ("decide", "422"): 2.0}
    metrics = client.get("/metrics", headers=bearer(keys[ADMIN])).text
    assert 'liftgate_requests_total{endpoint="decide",status="200"} 2.0' in metrics


def test_under_a_root_path_the_front_and_the_key_check_see_the_route(client, api, keys) -> None:
    """uvicorn --root-path /api: the path is /api/v1/decide; its roles are /v1/decide's, and
    /api/metrics is an admin's, not any key's."""
    answer = exchange(client, api, scope(headers=bearer(keys[APP]), root_path="/api"), body(DECIDE))
    assert answer.status == 200
    refused = scope(headers=bearer(keys[ADMIN]), root_path="/api")
    assert exchange(client, api, refused, body(DECIDE)).status == 403
    metrics = scope(method="GET", path="/metrics", headers=bearer(keys[APP]), root_path="/api")
    assert exchange(client, api, metrics, []).status == 403


def test_a_ray_replica_serves_the_installed_service(make_service, tmp_path, keys) -> None:
    """Ray Serve's ingress has no `app.state` of the replica: `install`'s globals."""
    api = create_api(max_body_bytes=MAX_BODY)
    http.install(make_service(), access(Home(tmp_path)))
    try:
        with TestClient(api) as client:
            answer = client.post("/v1/decide", json=DECIDE, headers=bearer(keys[APP]))
            assert answer.status_code == 200 and answer.json()["customer_id"] == "c0000003"
            refused = client.post("/v1/decide", json=DECIDE, headers=bearer(keys[ADMIN]))
            assert refused.status_code == 403
    finally:
        http.install(None, None)  # type: ignore[arg-type]
