import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from configs.schema import AuthSettings
from experiments.logs.reader import read_decisions
from liftgate.core.home import Home
from serving.access import Access
from serving.api_keys import ADMIN
from serving.http import create_api


@pytest.fixture
def client(make_service, tmp_path, key_headers):
    api = create_api(max_body_bytes=2_048)
    api.state.service = make_service()
    api.state.access = Access.for_home(AuthSettings(), Home(tmp_path), environ={})
    with TestClient(api, headers=key_headers(Home(tmp_path))) as client:
        yield client


def test_decide_returns_the_documented_shape(client) -> None:
    response = client.post("/v1/decide", json={"customer_id": "c0000003", "request_id": "r1"})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "decision_id",
        "customer_id",
        "ranked",
        "chosen",
        "propensity",
        "policy",
        "model",
        "experiment",
        "arm",
        "fallback",
        "fallback_reason",
        "cold_start",
        "trace_id",
        "request_id",
        "latency_ms",
    }
    assert body["request_id"] == "r1" and body["arm"] is None
    assert response.headers["traceparent"].split("-")[1] == body["trace_id"]


def test_a_callers_trace_id_is_kept(client) -> None:
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    response = client.post(
        "/v1/decide",
        json={"customer_id": "c1"},
        headers={"traceparent": f"00-{trace}-00f067aa0ba902b7-01"},
    )
    assert response.json()["trace_id"] == trace


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, ["body", "customer_id"]),
        ({"customer_id": ""}, ["body", "customer_id"]),
        ({"customer_id": "c1", "colour": "red"}, ["body", "colour"]),
        ({"customer_id": "c1", "candidates": ["nope"]}, ["body", "candidates", 0]),
        (
            {"customer_id": "c1", "context": {"recency_days": -5}},
            ["body", "context", "recency_days"],
        ),
        ({"customer_id": "c1", "candidates": []}, ["body", "candidates"]),
    ],
)
def test_bad_bodies_get_422_naming_the_field(client, body, field) -> None:
    response = client.post("/v1/decide", json=body)
    assert response.status_code == 422
    assert field in [e["loc"] for e in response.json()["detail"]]


def test_malformed_json_is_422_not_500(client) -> None:
    response = client.post(
        "/v1/decide", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


def test_oversized_bodies_get_413(client) -> None:
    big = {"customer_id": "c1", "request_id": "x" * 100, "context": {"device": "ios" * 1000}}
    assert client.post("/v1/decide", json=big).status_code == 413


def test_outcome_validation(client) -> None:
    assert (
        client.post("/v1/outcomes", json={"decision_id": "d", "event": "Bad Event"}).status_code
        == 422
    )
    assert (
        client.post(
            "/v1/outcomes",
            json={"decision_id": "d", "event": "conversion", "ts": "2026-01-01T00:00:00"},
        ).status_code
        == 422
    )
    ok = client.post("/v1/outcomes", json={"decision_id": "d", "event": "revenue", "value": 3})
    assert ok.status_code == 200 and ok.json()["known_decision"] is False


def test_n_requests_give_n_log_rows(client, tmp_path) -> None:
    ids = [
        client.post("/v1/decide", json={"customer_id": f"c{i:07d}"}).json()["decision_id"]
        for i in range(40)
    ]
    client.app.state.service.close()
    logged = read_decisions(Home(tmp_path).decision_log).column("decision_id").to_pylist()
    assert sorted(logged) == sorted(ids)


def test_health_readiness_metrics_and_openapi(client, tmp_path, key_headers) -> None:
    admin = key_headers(Home(tmp_path), ADMIN)  # before the first request reads the keys
    assert client.get("/healthz").json() == {"status": "ok", "auth": "on"}
    assert client.get("/readyz").status_code == 200
    client.post("/v1/decide", json={"customer_id": "c1"})
    metrics = client.get("/metrics", headers=admin)
    samples = {
        (s.name, s.labels.get("stage")): s.value
        for family in text_string_to_metric_families(metrics.text)
        for s in family.samples
    }
    assert samples["liftgate_stage_seconds_count", "scoring"] == 1
    assert "/v1/decide" in client.get("/openapi.json").json()["paths"]
    assert client.get("/docs").status_code == 200
