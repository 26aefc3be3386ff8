"""PUT /v1/consent/{customer_id} through the FastAPI app, in-process, against the real
consent store that the decision path reads: a revocation applies to the next decision."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from configs.loader import load_config
from configs.schema import AuthSettings
from liftgate.core import audit
from liftgate.core.home import Home
from liftgate.governance.consent import ConsentStore
from serving.access import Access
from serving.api_keys import OPERATOR
from serving.consent_http import ConsentUpdates
from serving.http import api_for

CONFIG = load_config()
CUSTOMER = "c0000003"
CHANNEL_OF = {a.id: a.channel for a in CONFIG.actions.actions}


@pytest.fixture
def client(make_service, tmp_path, key_headers):
    home = Home(tmp_path)
    reader = ConsentStore.reader(home.consent)
    api = api_for(CONFIG)
    api.state.service = make_service(consent=reader.granted_channels)
    api.state.consent = ConsentUpdates.for_home(home)
    api.state.access = Access.for_home(AuthSettings(), home, environ={})
    with TestClient(api, headers=key_headers(home)) as client:
        client.home = home
        yield client
    api.state.consent.close()
    reader.close()


def offered_channels(client: TestClient) -> set[str]:
    answer = client.post("/v1/decide", json={"customer_id": CUSTOMER}).json()
    actions = {entry["action"] for entry in answer["ranked"]} | {answer["chosen"]}
    return {CHANNEL_OF[action] for action in actions}


def test_a_grant_then_a_revocation_reach_the_next_decision(client) -> None:
    assert offered_channels(client) == {"none"}  # no consent yet: only the control
    granted = client.put(f"/v1/consent/{CUSTOMER}", json={"channels": {"email": True}})
    assert granted.status_code == 200, granted.text
    email = granted.json()["channels"]["email"]
    assert email["granted"] and email["applied"] and email["source"] == "api"
    assert "email" in offered_channels(client)
    revoked = client.put(f"/v1/consent/{CUSTOMER}", json={"channels": {"email": False}})
    assert revoked.json()["channels"]["email"]["granted"] is False
    assert offered_channels(client) == {"none"}


def test_each_change_is_audited_with_the_key_and_a_pseudonym(client) -> None:
    client.put(f"/v1/consent/{CUSTOMER}", json={"channels": {"email": True, "push": False}})
    records = audit.read(client.home.audit_log)
    changes = [r for r in records if r["action"].startswith("consent_")]
    assert [(r["action"], r["channel"]) for r in changes] == [
        ("consent_granted", "email"),
        ("consent_revoked", "push"),
    ]
    assert all(r["who"].startswith("key:") for r in changes)
    assert CUSTOMER not in client.home.audit_log.read_text()
    assert audit.verify(client.home.audit_log).ok


def test_an_older_change_is_not_applied(client) -> None:
    url = f"/v1/consent/{CUSTOMER}"
    client.put(url, json={"channels": {"email": True}, "ts": "2026-03-01T00:00:00Z"})
    older = client.put(url, json={"channels": {"email": False}, "ts": "2026-02-01T00:00:00Z"})
    assert older.status_code == 200
    assert older.json()["channels"]["email"] == {
        "granted": True,
        "ts": older.json()["channels"]["email"]["ts"],
        "source": "api",
        "applied": False,
    }


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"channels": {"fax": True}}, ["body", "channels", "fax", "[key]"]),
        ({"channels": {}}, ["body", "channels"]),
        ({"channels": {"email": "yes"}}, ["body", "channels", "email"]),
        ({"channels": {"email": True}, "ts": "3026-01-01T00:00:00Z"}, ["body", "ts"]),
        ({"channels": {"email": True}, "ts": 1700000000}, ["body", "ts"]),
        ({"channels": {"email": True}, "extra": 1}, ["body", "extra"]),
    ],
)
def test_bad_input_is_a_422_naming_the_field(client, body, loc) -> None:
    answer = client.put(f"/v1/consent/{CUSTOMER}", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"] == loc
    assert ConsentStore.reader(client.home.consent).granted_channels(CUSTOMER) == frozenset()


def test_only_app_keys_may_change_consent(client, key_headers) -> None:
    operator = key_headers(client.home, OPERATOR)
    answer = client.put(
        f"/v1/consent/{CUSTOMER}", json={"channels": {"email": True}}, headers=operator
    )
    assert answer.status_code == 403


@pytest.mark.parametrize("customer_id", ["%20", "c" * 300])
def test_a_bad_customer_id_is_a_422_naming_the_path(client, customer_id) -> None:
    answer = client.put(f"/v1/consent/{customer_id}", json={"channels": {"email": True}})
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"] == ["path", "customer_id"]
