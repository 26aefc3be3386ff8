"""POST /v1/events through the FastAPI app, in-process, against the real event log and inbox:
taken once per id, 422 naming the field, app keys only, 503 when the log cannot be written."""

from __future__ import annotations

import datetime as dt
import errno
import json

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from configs.loader import load_config
from configs.schema import AuthSettings
from experiments.logs.reader import read_events
from experiments.logs.schema import EventRecord, to_table
from experiments.logs.wal import Segment
from experiments.logs.writer import LogWriter
from liftgate.core.home import Home
from liftgate.governance.events import EventInbox
from serving.access import Access
from serving.api_keys import ADMIN, OPERATOR
from serving.components import build_event_service
from serving.http import api_for

CONFIG = load_config()
CART = {
    "event_id": "evt-1",
    "customer_id": "c0000042",
    "type": "cart_abandoned",
    "properties": {"cart_value": 35.5, "items": 2, "coupon": "SPRING", "member": True},
    "ts": "2026-05-01T12:00:00Z",
}


def enospc(*args: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.fixture
def client(make_service, tmp_path, key_headers):
    home = Home(tmp_path)
    api = api_for(CONFIG)
    api.state.service = make_service()
    api.state.events = build_event_service(CONFIG, home, api.state.service.metrics)
    # Every key before the app starts: a replica reads the key store when it starts.
    keys = {role: key_headers(home, role) for role in (ADMIN, OPERATOR)}
    api.state.access = Access.for_home(AuthSettings(), home, environ={})
    with TestClient(api, headers=key_headers(home)) as client:
        client.home, client.keys = home, keys
        client.events = api.state.events
        yield client
    api.state.events.close()


def cart(**changes) -> dict:
    """The cart event with `ts` a minute ago (within the bounds), and `changes`."""
    ts = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat()
    return {**CART, "ts": ts, **changes}


def kept(client: TestClient) -> list[str]:
    with EventInbox.for_home(client.home) as inbox:
        return [event.event_id for _, event in inbox.after(0)]


def logged(client: TestClient) -> list[dict]:
    client.events.log.flush()
    return read_events(client.home.event_log).to_pylist()


def test_an_event_is_logged_and_kept_before_the_answer(client) -> None:
    body = cart()
    answer = client.post("/v1/events", json=body)
    assert answer.status_code == 202
    assert answer.json() == {
        "event_id": "evt-1",
        "accepted": True,
        "duplicate": False,
        "ts": dt.datetime.fromisoformat(body["ts"]).isoformat(),
    }
    with EventInbox.for_home(client.home) as inbox:
        event = inbox.get("evt-1")
    assert event.type == "cart_abandoned" and event.properties == CART["properties"]
    (row,) = logged(client)
    assert row["customer_id"] == "c0000042" and json.loads(row["properties"]) == event.properties


def test_ts_defaults_to_now(client) -> None:
    before = dt.datetime.now(dt.UTC)
    body = {key: value for key, value in cart().items() if key != "ts"}
    answer = client.post("/v1/events", json=body)
    assert answer.status_code == 202
    ts = dt.datetime.fromisoformat(answer.json()["ts"])
    assert before <= ts <= dt.datetime.now(dt.UTC)


def test_a_repeated_id_is_taken_once_with_the_first_events_time(client) -> None:
    first = cart()
    client.post("/v1/events", json=first)
    later = (dt.datetime.fromisoformat(first["ts"]) + dt.timedelta(seconds=30)).isoformat()
    repeat = client.post("/v1/events", json=cart(ts=later, type="purchase"))
    assert repeat.status_code == 202
    assert repeat.json()["duplicate"] is True and repeat.json()["accepted"] is True
    assert repeat.json()["ts"] == dt.datetime.fromisoformat(first["ts"]).isoformat()
    assert kept(client) == ["evt-1"] and len(logged(client)) == 1
    metrics = client.get("/metrics", headers=client.keys[ADMIN]).text
    counted = {
        s.labels["result"]: s.value
        for family in text_string_to_metric_families(metrics)
        for s in family.samples
        if s.name == "liftgate_events_total"
    }
    assert counted == {"new": 1.0, "duplicate": 1.0}


def test_the_event_reader_counts_an_id_logged_twice_once(tmp_path) -> None:
    """Two requests racing with a new id may both log it: the reader keeps the first."""
    noon = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)

    def record(value: int, seconds: int) -> EventRecord:
        return EventRecord(
            event_id="evt-1",
            ts=noon,
            customer_id="c1",
            type="purchase",
            properties=json.dumps({"value": value}),
            received_ts=noon + dt.timedelta(seconds=seconds),
        )

    with LogWriter(tmp_path, EventRecord) as log:
        for value, seconds in ((2, 5), (1, 3)):
            log.append(record(value, seconds))
    events = read_events(tmp_path)
    assert events.num_rows == 1 and events["properties"].to_pylist() == ['{"value": 1}']
    assert to_table(EventRecord, []).schema == events.schema


@pytest.mark.parametrize(
    ("changes", "loc"),
    [
        ({"type": "Cart Abandoned"}, ["body", "type"]),
        ({"type": "1st_visit"}, ["body", "type"]),
        ({"properties": {"items": [1, 2]}}, ["body", "properties", "items"]),
        ({"properties": {"nested": {"a": 1}}}, ["body", "properties", "nested"]),
        ({"properties": {"gone": None}}, ["body", "properties", "gone"]),
        ({"customer_id": ""}, ["body", "customer_id"]),
        ({"ts": "2026-05-01T12:00:00"}, ["body", "ts"]),  # no zone
        ({"ts": "0001-01-01T00:00:00+05:00"}, ["body", "ts"]),
        ({"ts": "2999-01-01T00:00:00Z"}, ["body", "ts"]),  # in the future
        ({"ts": 1_777_000_000}, ["body", "ts"]),  # epoch seconds: not a date-time
        ({"channel": "email"}, ["body", "channel"]),  # an unknown key
    ],
)
def test_a_bad_field_is_a_422_naming_it_and_nothing_is_kept(client, changes, loc) -> None:
    answer = client.post("/v1/events", json=cart(**changes))
    assert answer.status_code == 422, answer.text
    assert loc in [error["loc"] for error in answer.json()["detail"]]
    assert kept(client) == [] and logged(client) == []


def test_a_missing_key_is_422_naming_it(client) -> None:
    body = {key: value for key, value in cart().items() if key != "event_id"}
    answer = client.post("/v1/events", json=body)
    assert answer.status_code == 422
    assert ["body", "event_id"] in [error["loc"] for error in answer.json()["detail"]]


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"1e309"])
def test_a_number_that_is_not_finite_is_422_naming_the_property(client, literal) -> None:
    raw = b'{"event_id": "e", "customer_id": "c", "type": "purchase", "properties": {"v": %s}}'
    answer = client.post(
        "/v1/events", content=raw % literal, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 422
    assert [error["loc"] for error in answer.json()["detail"]] == [["body", "properties", "v"]]


def test_only_app_keys_may_send_events(client) -> None:
    assert client.post("/v1/events", json=cart(), headers={"Authorization": ""}).status_code == 401
    assert client.post("/v1/events", json=cart(), headers=client.keys[OPERATOR]).status_code == 403
    assert kept(client) == []


def test_an_event_that_cannot_be_logged_is_503_and_not_kept(client, monkeypatch) -> None:
    with monkeypatch.context() as disk:
        disk.setattr(Segment, "write", enospc)  # a full disk: nothing can be written
        answer = client.post("/v1/events", json=cart())
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
    assert kept(client) == []
    # The disk is back: the app's retry is taken, as a new event.
    retry = client.post("/v1/events", json=cart())
    assert retry.status_code == 202 and retry.json()["duplicate"] is False
    assert kept(client) == ["evt-1"]


def test_a_host_that_takes_no_events_answers_503(make_service) -> None:
    api = api_for(CONFIG)
    api.state.service = make_service()
    api.state.access = Access.off()
    with TestClient(api) as client:
        assert client.post("/v1/events", json=cart()).status_code == 503


def test_the_openapi_document_describes_the_body() -> None:
    document = api_for(CONFIG).openapi()
    operation = document["paths"]["/v1/events"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert {"202", "422", "503"} <= set(operation["responses"])
    assert set(schema["properties"]) == {"event_id", "customer_id", "type", "properties", "ts"}
    assert schema["properties"]["type"]["pattern"] == "^[a-z][a-z0-9_-]*$"
