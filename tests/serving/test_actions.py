"""POST /v1/actions and GET /v1/actions/{id} through the FastAPI app, in-process: every
refusal names its check, idempotent replays, dry runs, history, the action log and the
audit, and who may call what."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from configs.loader import load_config
from configs.schema import ActionsConfig, AuthSettings, ChannelPolicy, FrequencyCap, QuietHours
from experiments.logs.reader import read_actions
from experiments.logs.schema import ActionRecord
from experiments.logs.writer import LogWriter
from liftgate.core import audit
from liftgate.core.home import Home
from liftgate.governance.action_store import ActionStore
from liftgate.governance.checks import CHECKS
from liftgate.governance.consent import ConsentStore
from liftgate.governance.creatives import CreativeStore
from liftgate.governance.offers import OfferIndex
from liftgate.governance.pseudonyms import Pseudonyms
from serving.access import Access
from serving.actions import ActionService
from serving.api_keys import ADMIN, ANALYST, APP, OPERATOR
from serving.decision_ids import DecisionIds
from serving.http import api_for

CONFIG = load_config()
CUSTOMER = "c0000003"
#: The default channels without quiet hours, so that no test depends on the time of day
#: (quiet hours have a test of their own, around the test's own clock).
CHANNELS = {
    "email": ChannelPolicy(caps=[FrequencyCap(max=2, window_hours=24)]),
    "push": ChannelPolicy(),
}


@dataclass
class Clock:
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def __call__(self) -> dt.datetime:
        return self.now


@dataclass
class App:
    """The app, its stores and a way to make decisions."""

    client: TestClient
    home: Home
    clock: Clock
    consent: ConsentStore
    creatives: CreativeStore

    def decide(self, customer_id: str = CUSTOMER, candidates=("email_10", "no_action")) -> str:
        body = {"customer_id": customer_id, "candidates": list(candidates)}
        answer = self.client.post("/v1/decide", json=body)
        assert answer.status_code == 200, answer.text
        return answer.json()["decision_id"]

    def commit(self, decision_id: str, key: str = "k1", **fields):
        body = {
            "decision_id": decision_id,
            "action": "email_10",
            "channel": "email",
            "campaign_id": "spring",
            "idempotency_key": key,
            **fields,
        }
        return self.client.post("/v1/actions", json=body)


def make_app(make_service, tmp_path, key_headers, channels=CHANNELS) -> App:
    home = Home(tmp_path)
    clock = Clock()
    service = make_service(offers=OfferIndex.writer(home.offers))
    consent = ConsentStore(home.consent)
    consent.set(CUSTOMER, "email", True)
    creatives = CreativeStore(home.creatives)
    actions = ActionService(
        actions=ActionsConfig(actions=CONFIG.actions.actions, channels=channels),
        settings=CONFIG.serving.actions,
        decision_ids=DecisionIds(b"test key"),  # the decision service's (tests/serving/conftest)
        offers=OfferIndex.reader(home.offers),
        consent=ConsentStore.reader(home.consent),
        creatives=creatives,
        store=ActionStore(home.actions),
        log=LogWriter(home.action_log, ActionRecord),
        audit_log=home.audit_log,
        pseudonyms=Pseudonyms(b"k" * 32),
        metrics=service.metrics,
        clock=clock,
    )
    api = api_for(CONFIG)
    api.state.service, api.state.actions = service, actions
    api.state.access = Access.for_home(AuthSettings(), home, environ={})
    client = TestClient(api, headers=key_headers(home))
    return App(client, home, clock, consent, creatives)


@pytest.fixture
def app(make_service, tmp_path, key_headers):
    app = make_app(make_service, tmp_path, key_headers)
    with app.client:
        yield app
    app.client.app.state.actions.close()
    app.consent.close()


def test_a_commit_is_queued_with_its_history_log_and_audit(app) -> None:
    decision_id = app.decide()
    answer = app.commit(decision_id)
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body == {
        "action_id": body["action_id"],
        "status": "queued",
        "idempotency_key": "k1",
        "replayed": False,
        "checks_passed": list(CHECKS),
        "dry_run": False,
    }
    state = app.client.get(f"/v1/actions/{body['action_id']}").json()
    assert (state["status"], state["decision_id"], state["campaign_id"]) == (
        "queued",
        decision_id,
        "spring",
    )
    assert [event["status"] for event in state["history"]] == ["queued"]
    app.client.app.state.actions.log.close()
    (logged,) = read_actions(app.home.action_log).to_pylist()
    assert (logged["action_id"], logged["customer_id"], logged["status"], logged["attempt"]) == (
        body["action_id"],
        CUSTOMER,
        "queued",
        0,
    )
    (record,) = [r for r in audit.read(app.home.audit_log) if r["action"] == "action_committed"]
    assert record["action_id"] == body["action_id"] and record["who"].startswith("key:")
    assert record["customer"] == Pseudonyms(b"k" * 32).of(CUSTOMER)
    assert CUSTOMER not in app.home.audit_log.read_text()


def test_a_retry_gets_the_same_answer_and_one_action(app) -> None:
    decision_id = app.decide()
    first = app.commit(decision_id).json()
    again = app.commit(decision_id)
    assert again.status_code == 202
    assert again.json() == {**first, "replayed": True}
    app.consent.set(CUSTOMER, "email", False)  # what changed since does not matter
    assert app.commit(decision_id).json() == {**first, "replayed": True}
    assert app.client.app.state.actions.store.counts_by_status()["queued"] == 1


def test_a_key_reused_for_another_request_is_refused(app) -> None:
    decision_id = app.decide()
    first = app.commit(decision_id).json()
    other = app.commit(decision_id, campaign_id="autumn")
    assert other.status_code == 409
    assert other.json()["check"] == "idempotency"
    assert other.json()["detail"] == "idempotency_key was used with a different request"
    assert other.json()["action_id"] == first["action_id"]


def refusal(answer) -> tuple[int, str]:
    return answer.status_code, answer.json().get("check")


def test_unknown_and_forged_decisions_are_refused(app) -> None:
    forged = refusal(app.commit("f" * 40))
    unknown = refusal(app.commit(DecisionIds(b"test key").new(), key="k2"))  # not offered
    assert forged == unknown == (409, "decision")


@pytest.mark.parametrize(
    ("fields", "candidates"),
    [
        ({"action": "email_20"}, ("email_10", "no_action")),  # not offered
        ({"channel": "push"}, ("email_10", "no_action")),  # not the action's channel
        ({"action": "no_action", "channel": "none"}, ("email_10", "no_action")),  # no one
    ],
)
def test_actions_not_offered_or_on_the_wrong_channel_are_refused(app, fields, candidates):
    answer = app.commit(app.decide(candidates=candidates), **fields)
    assert refusal(answer) == (409, "action")
    assert answer.json()["status"] == "refused"


def test_an_expired_decision_is_refused(app) -> None:
    decision_id = app.decide()
    app.clock.now = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=61)  # after the decision
    assert refusal(app.commit(decision_id, ttl_seconds=60)) == (409, "ttl")
    assert app.commit(decision_id, key="k2", ttl_seconds=3_600).status_code == 202


def test_consent_is_checked_in_the_store_at_the_commit(app) -> None:
    decision_id = app.decide()  # the decision service saw every channel granted
    app.consent.set(CUSTOMER, "email", False)
    assert refusal(app.commit(decision_id)) == (409, "consent")
    other = app.decide("c0000004")  # never granted
    assert refusal(app.commit(other, key="k2")) == (409, "consent")


def test_only_approved_creatives_are_sent(app) -> None:
    decision_id = app.decide()
    creative = app.creatives.add("email_10", "Your 10% code inside", who="alice")
    assert refusal(app.commit(decision_id, creative_id=creative.creative_id)) == (
        409,
        "creative",
    )
    assert refusal(app.commit(decision_id, key="k2", creative_id="cr_nope")) == (
        409,
        "creative",
    )
    app.creatives.review(creative.creative_id, True, "on brand", who="bob")
    other = app.creatives.add("email_20", "20% off, this week", who="alice")
    app.creatives.review(other.creative_id, True, "on brand", who="bob")
    wrong = app.commit(decision_id, key="k3", creative_id=other.creative_id)
    assert refusal(wrong) == (409, "creative")
    assert "registered for email_20" in wrong.json()["detail"]
    answer = app.commit(decision_id, key="k4", creative_id=creative.creative_id)
    assert answer.status_code == 202


def test_frequency_caps_count_the_customers_actions(app) -> None:
    answers = [app.commit(app.decide(), key=f"k{i}") for i in range(3)]
    assert [a.status_code for a in answers] == [202, 202, 409]
    assert answers[2].json()["check"] == "caps"
    assert "cap is 2" in answers[2].json()["detail"]


def test_quiet_hours_refuse_now_and_take_a_send_at_after_them(
    make_service, tmp_path, key_headers
) -> None:
    now = dt.datetime.now(dt.UTC)
    start, end = (f"{now + dt.timedelta(hours=h):%H:%M}" for h in (-1, 1))
    quiet = ChannelPolicy(quiet_hours=QuietHours(start=start, end=end))
    app = make_app(make_service, tmp_path, key_headers, {"email": quiet})
    with app.client:
        app.clock.now = now
        decision_id = app.decide()
        assert refusal(app.commit(decision_id)) == (409, "quiet_hours")
        later = (now + dt.timedelta(hours=2)).isoformat()
        assert app.commit(decision_id, key="k2", send_at=later).status_code == 202
    app.client.app.state.actions.close()


def test_a_dry_run_runs_every_check_and_sends_nothing(app) -> None:
    decision_id = app.decide()
    answer = app.commit(decision_id, dry_run=True)
    assert answer.status_code == 202
    assert (answer.json()["status"], answer.json()["dry_run"]) == ("dry_run", True)
    store = app.client.app.state.actions.store
    assert store.claim_due(app.clock.now + dt.timedelta(days=1), limit=10, lease_s=1) == []
    refused = app.commit(decision_id, key="k2", dry_run=True, action="email_20")
    assert refusal(refused) == (409, "action") and refused.json()["dry_run"] is True
    assert app.client.get(f"/v1/actions/{answer.json()['action_id']}").json()["status"] == (
        "dry_run"
    )


@pytest.mark.parametrize(
    ("fields", "loc"),
    [
        ({"ttl_seconds": 10**9}, ["body", "ttl_seconds"]),
        ({"ttl_seconds": 0}, ["body", "ttl_seconds"]),
        ({"send_at": "2020-01-01T00:00:00Z"}, ["body", "send_at"]),
        ({"send_at": 1767225600}, ["body", "send_at"]),
        ({"channel": "fax"}, ["body", "channel"]),
        ({"idempotency_key": "x" * 201}, ["body", "idempotency_key"]),
        ({"colour": "red"}, ["body", "colour"]),
    ],
)
def test_bad_bodies_get_422_naming_the_field(app, fields, loc) -> None:
    answer = app.commit(app.decide(), **fields)
    assert answer.status_code == 422, answer.text
    assert loc in [error["loc"] for error in answer.json()["detail"]]


def test_get_an_unknown_action_is_404(app) -> None:
    answer = app.client.get("/v1/actions/nope")
    assert answer.status_code == 404
    assert answer.json()["detail"][0]["loc"] == ["path", "action_id"]


def test_who_may_commit_and_who_may_look(app, key_headers) -> None:
    keys = {role: key_headers(app.home, role) for role in (OPERATOR, ADMIN, ANALYST)}
    action_id = app.commit(app.decide()).json()["action_id"]
    for role in (APP, OPERATOR, ADMIN):
        headers = keys.get(role, {})  # the client's own key is an app key
        assert app.client.get(f"/v1/actions/{action_id}", headers=headers).status_code == 200
    assert app.client.get(f"/v1/actions/{action_id}", headers=keys[ANALYST]).status_code == 403
    body = {"decision_id": "d", "action": "a", "channel": "email", "campaign_id": "c"}
    posted = app.client.post("/v1/actions", json=body, headers=keys[OPERATOR])
    assert posted.status_code == 403


def test_answers_are_counted_by_status_and_check(app, key_headers) -> None:
    admin = key_headers(app.home, ADMIN)
    app.commit(app.decide())
    app.commit("f" * 40, key="k2")
    text = app.client.get("/metrics", headers=admin).text
    counted = {
        (s.labels["status"], s.labels["check"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "liftgate_actions_total"
    }
    assert counted == {("queued", ""): 1.0, ("refused", "decision"): 1.0}


def test_a_host_without_actions_answers_503(make_service, tmp_path, key_headers) -> None:
    api = api_for(CONFIG)
    api.state.service = make_service()
    api.state.access = Access.off()
    with TestClient(api) as client:
        body = {
            "decision_id": "d",
            "action": "a",
            "channel": "email",
            "campaign_id": "c",
            "idempotency_key": "k",
        }
        assert client.post("/v1/actions", json=body).status_code == 503
        assert client.get("/v1/actions/a1").status_code == 503
