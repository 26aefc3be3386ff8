"""Access control on the HTTP API (serving/access.py, serving/access_http.py): API keys with
roles, per-key rate limits, what the open endpoints show, what the OpenAPI documents."""

from __future__ import annotations

import logging

import pytest
from clocks import ManualClock  # tests/, beside conftest.py
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from configs.loader import load_config
from configs.schema import AuthSettings
from experiments.canary import CanarySplit
from liftgate.app.cli.main import app as cli
from liftgate.core.errors import InputError
from liftgate.core.home import HOME_ENV, Home
from serving.access import AUTH_ENV, OFF_WARNING, Access, auth_enabled
from serving.api_keys import ADMIN, ANALYST, APP, OPERATOR, ROLES, KeyRing, KeyStore
from serving.http import create_api
from serving.local import create_local_app
from serving.rate_limit import TokenBuckets

SPLIT = CanarySplit(
    rollout="secret-rollout", salt="s3cret-salt", weight=0.25, baseline=True, challenger="7"
)
#: Every protected request a caller can make, and the roles that may make it (written out
#: here, not read from serving.access, so that a wrong table there fails these tests).
REQUESTS = {
    ("POST", "/v1/decide", (APP,)): {"customer_id": "c0000003"},
    ("POST", "/v1/outcomes", (APP,)): {"decision_id": "d", "event": "conversion"},
    ("GET", "/v1/canary", (OPERATOR, ADMIN)): None,
    ("GET", "/metrics", (ADMIN,)): None,
    ("GET", "/openapi.json", ROLES): None,
    ("GET", "/docs", ROLES): None,
}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def keys(tmp_path) -> KeyStore:
    return KeyStore.for_home(Home(tmp_path))


@pytest.fixture
def api(make_service, keys: KeyStore, clock: ManualClock):
    """The API behind keys read from `keys`, its key ring and buckets on `clock`: 3 requests
    per key at once, then one a second."""
    api = create_api()
    api.state.service = make_service(canary=lambda: SPLIT)
    ring = KeyRing(keys.path, recheck_s=1.0, clock=clock)
    api.state.access = Access(ring.verify, TokenBuckets(per_s=1.0, burst=3, clock=clock))
    return api


@pytest.fixture
def client(api) -> TestClient:
    with TestClient(api) as client:
        yield client


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def call(client: TestClient, method: str, path: str, body, headers: dict[str, str]):
    return client.request(method, path, json=body, headers=headers)


def field_error(response) -> dict:
    (error,) = response.json()["detail"]
    return error


@pytest.mark.parametrize(("method", "path", "roles"), list(REQUESTS))
def test_no_key_a_malformed_header_or_an_unknown_key_is_401(
    client, keys, method, path, roles
) -> None:
    real = keys.create(APP).key
    unknown = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")
    body = REQUESTS[method, path, roles]
    for headers, kind in [
        ({}, "missing_credentials"),
        ({"Authorization": f"Basic {real}"}, "invalid_credentials"),
        ({"Authorization": "Bearer"}, "invalid_credentials"),
        (bearer(unknown), "invalid_key"),
        (bearer("lg_nothing"), "invalid_key"),
    ]:
        response = call(client, method, path, body, headers)
        assert response.status_code == 401, (headers, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer")
        error = field_error(response)
        assert error["loc"] == ["header", "authorization"] and error["type"] == kind
        assert real not in response.text


@pytest.mark.parametrize(("method", "path", "roles"), list(REQUESTS))
def test_each_role_calls_only_its_endpoints(client, keys, method, path, roles) -> None:
    created = {role: keys.create(role).key for role in ROLES}
    for role, key in created.items():
        response = call(client, method, path, REQUESTS[method, path, roles], bearer(key))
        if role in roles:
            assert response.status_code == 200, (role, response.text)
        else:
            assert response.status_code == 403, (role, response.text)
            message = field_error(response)["msg"]
            assert f"has role {role}" in message and path in message


def test_a_revoked_key_is_refused_once_the_replica_rereads_the_store(client, keys, clock):
    new = keys.create(APP)
    decide = {"customer_id": "c0000003"}
    assert client.post("/v1/decide", json=decide, headers=bearer(new.key)).status_code == 200
    keys.revoke(new.record.key_id)
    clock.now += 1.0  # serving.auth.key_cache_s later
    response = client.post("/v1/decide", json=decide, headers=bearer(new.key))
    assert response.status_code == 401 and field_error(response)["type"] == "invalid_key"


def test_a_key_over_its_rate_gets_429_with_retry_after(client, keys, clock) -> None:
    first, second = keys.create(APP).key, keys.create(APP).key
    decide = {"customer_id": "c0000003"}
    statuses = [client.post("/v1/decide", json=decide, headers=bearer(first)) for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429]
    refused = statuses[-1]
    assert refused.headers["retry-after"] == "1"
    assert field_error(refused)["type"] == "rate_limited"
    assert "retry after 1 s" in field_error(refused)["msg"]
    # Another key has its own bucket; the first has a token again a second later.
    assert client.post("/v1/decide", json=decide, headers=bearer(second)).status_code == 200
    clock.now += 1.0
    assert client.post("/v1/decide", json=decide, headers=bearer(first)).status_code == 200
    assert client.post("/v1/decide", json=decide, headers=bearer(first)).status_code == 429


def test_health_and_readiness_are_open_and_name_no_salt_or_arm(client, keys) -> None:
    operator = keys.create(OPERATOR).key
    health, ready = client.get("/healthz"), client.get("/readyz")
    assert health.status_code == 200 and ready.status_code == 200
    assert health.json() == {"status": "ok", "auth": "on"}
    for answer in (health.text, ready.text):
        for secret in ("s3cret-salt", "secret-rollout", "canary", "baseline", "challenger"):
            assert secret not in answer
    # The split is an operator's to read.
    shown = client.get("/v1/canary", headers=bearer(operator)).json()["canary"]
    assert shown["salt"] == "s3cret-salt" and shown["weight"] == pytest.approx(0.25)


def test_the_openapi_documents_every_answer_of_access(client, keys) -> None:
    document = client.get("/openapi.json", headers=bearer(keys.create(ANALYST).key)).json()
    assert document["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    operations = {
        (method.upper(), path): operation
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }
    for method, path in [("POST", "/v1/decide"), ("POST", "/v1/outcomes")]:
        answers = operations[method, path]["responses"]
        assert {"200", "401", "403", "413", "422", "429"} <= set(answers), path
        assert "Retry-After" in answers["429"]["headers"]
        assert operations[method, path]["security"] == [{"apiKey": []}]
        assert "role app" in operations[method, path]["description"]
    for path in ("/v1/canary", "/metrics"):
        assert {"401", "403", "429"} <= set(operations["GET", path]["responses"])
    for path in ("/healthz", "/readyz"):
        assert operations["GET", path]["security"] == []
        assert "401" not in operations["GET", path]["responses"]
    error = document["components"]["schemas"]["ErrorAnswer"]
    assert error["properties"]["detail"]["items"]["$ref"] == "#/components/schemas/FieldError"


def test_docs_need_a_key_and_carry_the_document_inline(client, keys) -> None:
    assert client.get("/docs").status_code == 401
    page = client.get("/docs", headers=bearer(keys.create(ANALYST).key))
    # The page's own fetch of /openapi.json would carry no key: the document is in it.
    assert page.status_code == 200 and '"spec":' in page.text and "/v1/decide" in page.text


def test_auth_off_opens_every_endpoint_and_says_so(make_service) -> None:
    api = create_api()
    api.state.service = make_service()
    api.state.access = Access.off()
    with TestClient(api) as client:
        assert client.get("/healthz").json() == {"status": "ok", "auth": "off"}
        assert client.get("/metrics").status_code == 200
        assert client.post("/v1/decide", json={"customer_id": "c1"}).status_code == 200


def test_an_api_without_its_access_set_up_lets_no_key_in(make_service, keys) -> None:
    api = create_api()
    api.state.service = make_service()
    with TestClient(api) as client:
        response = client.get("/openapi.json", headers=bearer(keys.create(ADMIN).key))
        assert response.status_code == 401


def test_the_development_switch(tmp_path, monkeypatch, caplog) -> None:
    assert auth_enabled(AuthSettings(), {AUTH_ENV: "OFF"}) is False
    assert auth_enabled(AuthSettings(enabled=False), {AUTH_ENV: "on"}) is True
    assert auth_enabled(AuthSettings(enabled=False), {}) is False
    with pytest.raises(InputError, match=f"^{AUTH_ENV}: expected off or on; got 'nope'"):
        auth_enabled(AuthSettings(), {AUTH_ENV: "nope"})
    # The service says so when it starts.
    monkeypatch.setenv(AUTH_ENV, "off")
    with caplog.at_level(logging.WARNING, logger="serving.access"):
        api = create_local_app(load_config(), Home(tmp_path))
    assert not api.state.access.enabled
    assert OFF_WARNING in caplog.text


@pytest.mark.parametrize("detach", [[], ["--detach"]])
def test_serve_refuses_a_bad_development_switch_before_starting(
    tmp_path, monkeypatch, detach: list[str]
) -> None:
    monkeypatch.setenv(HOME_ENV, str(tmp_path))
    monkeypatch.setenv(AUTH_ENV, "maybe")
    result = CliRunner().invoke(cli, ["serve", *detach])
    assert result.exit_code == 2
    assert f"{AUTH_ENV}: expected off or on; got 'maybe'" in result.stderr
