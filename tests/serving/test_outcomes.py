"""Outcome integrity (serving/outcome_rules.py, serving/outcome_ledger.py, the service's
outcome path): one outcome per (decision, event), values within their event's bounds, a
`ts` in the window around the decision and now; poisoned outcomes never reach a bandit."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import multiprocessing
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from configs.loader import load_config
from configs.schema import AuthSettings, ExperimentConfig, OutcomeSettings
from experiments import state as experiment_state
from experiments.bandits.spec import BanditSpec
from experiments.bandits.store import BanditStore
from experiments.bandits.updater import settle_seconds, update_experiment
from experiments.logs.reader import read_outcomes
from experiments.logs.schema import OutcomeRecord
from experiments.logs.writer import LogWriter
from liftgate.core.home import Home
from serving.access import Access
from serving.api_models import OutcomeRequest
from serving.bandit_arm import BanditProvider
from serving.decision_ids import DecisionIds
from serving.http import create_api
from serving.outcome_ledger import OutcomeLedger
from serving.outcome_rules import OutcomeRules
from serving.service import InvalidRequest

CONFIG = load_config()
IDS = DecisionIds(b"test key")  # the key of conftest's make_service
HOUR = dt.timedelta(hours=1)


def record(service, **body):
    return asyncio.run(service.record_outcome(OutcomeRequest(**body)))


def rejected_fields(service, **body) -> list[list]:
    with pytest.raises(InvalidRequest) as error:
        record(service, **body)
    return [e["loc"] for e in error.value.errors]


# --- one outcome per (decision, event) ---------------------------------------------------------


def test_a_repeat_gets_the_first_answer_and_is_not_logged_again(make_service, tmp_path):
    service = make_service()
    decision_id = IDS.new()
    first = record(service, decision_id=decision_id, event="revenue", value=20.0)
    again = record(service, decision_id=decision_id, event="revenue", value=20.0)
    other = record(service, decision_id=decision_id, event="conversion")
    changed = record(service, decision_id=decision_id, event="revenue", value=99.0)
    service.close()
    assert again == changed == first and first["known_decision"]
    assert other["outcome_id"] != first["outcome_id"]
    logged = read_outcomes(Home(tmp_path).outcome_log).to_pylist()
    assert sorted((r["event"], r["value"]) for r in logged) == [
        ("conversion", 1.0),
        ("revenue", 20.0),
    ]


def test_replicas_sharing_a_home_answer_a_repeat_from_the_first(make_service, tmp_path):
    """Two services (two replicas: their own ledger connections, one home): a retry that
    lands on the other replica still gets the first answer and is not logged again."""
    first_replica, second_replica = make_service(), make_service()
    decision_id = IDS.new()
    first = record(first_replica, decision_id=decision_id, event="conversion")
    assert record(second_replica, decision_id=decision_id, event="conversion") == first
    first_replica.close()
    second_replica.close()
    assert read_outcomes(Home(tmp_path).outcome_log).num_rows == 1


def _race(path: str, barrier, answers, outcome_id: str) -> None:
    ledger = OutcomeLedger(Path(path))
    barrier.wait()  # every process records the same pair at once
    answers.put(ledger.record("d1", "conversion", outcome_id))
    ledger.close()


def test_processes_racing_on_one_pair_all_get_the_one_that_reached_the_ledger_first(
    tmp_path,
) -> None:
    context = multiprocessing.get_context("fork")
    path = str(Home(tmp_path).outcome_ledger)
    OutcomeLedger(Path(path)).close()  # created (and in WAL mode) before the race
    barrier, answers = context.Barrier(6), context.Queue()
    racers = [
        context.Process(target=_race, args=(path, barrier, answers, f"o{i}")) for i in range(6)
    ]
    for racer in racers:
        racer.start()
    seen = [answers.get(timeout=30) for _ in racers]
    for racer in racers:
        racer.join(timeout=30)
    assert len(set(seen)) == 1 and seen[0] in {f"o{i}" for i in range(6)}


# --- value bounds per event ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "value"),
    [("conversion", 2.0), ("conversion", -1.0), ("revenue", 1e308), ("revenue", -5.0)],
)
def test_a_value_outside_its_events_bounds_is_422_naming_the_value(
    make_service, event, value
) -> None:
    assert rejected_fields(make_service(), decision_id=IDS.new(), event=event, value=value) == [
        ["body", "value"]
    ]


def test_an_event_is_taken_only_if_configured(make_service) -> None:
    assert rejected_fields(make_service(), decision_id=IDS.new(), event="clicks") == [
        ["body", "event"]
    ]
    settings = OutcomeSettings(events={"clicks": {"min": 0, "max": 50}})
    service = make_service(outcome_rules=OutcomeRules(settings))
    assert record(service, decision_id=IDS.new(), event="clicks", value=3)["known_decision"]


# --- the ts window -------------------------------------------------------------------------


def test_ts_is_judged_against_the_time_signed_into_the_decision_id(make_service) -> None:
    """Not before the decision (5 min of clock skew allowed), not after now (same), and
    within 30 days of both (serving.yaml defaults)."""
    service = make_service()
    now = dt.datetime.now(dt.UTC)
    decided = now - HOUR
    decision_id = IDS.new(decided)
    skew = dt.timedelta(minutes=1)
    for event, ts in (("conversion", decided - skew), ("revenue", now + skew)):
        assert record(service, decision_id=decision_id, event=event, ts=ts)["known_decision"]
    for ts in (decided - 10 * skew, now + 10 * skew):
        assert rejected_fields(
            service, decision_id=IDS.new(decided), event="conversion", ts=ts
        ) == [["body", "ts"]]
    old = IDS.new(now - dt.timedelta(days=40))  # its window ended 10 days ago
    for ts in (now - dt.timedelta(days=39), now):
        assert rejected_fields(service, decision_id=old, event="conversion", ts=ts) == [
            ["body", "ts"]
        ]


@pytest.mark.parametrize(
    "ts",
    ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "2026-01-01T00:00:00"],
    ids=["year-1", "year-9999", "no-zone"],
)
def test_a_ts_at_the_edge_of_the_calendar_or_without_zone_is_422(make_service, ts) -> None:
    """Year 1 with a positive offset used to overflow in `astimezone`: a 500."""
    request = OutcomeRequest.model_validate(
        {"decision_id": IDS.new(), "event": "conversion", "ts": ts}
    )
    with pytest.raises(InvalidRequest) as error:
        asyncio.run(make_service().record_outcome(request))
    assert [e["loc"] for e in error.value.errors] == [["body", "ts"]]


def test_an_unknown_decision_is_kept_and_its_ts_judged_against_now(make_service) -> None:
    service = make_service()
    now = dt.datetime.now(dt.UTC)
    kept = record(service, decision_id="never-made", event="conversion", ts=now - 10 * 24 * HOUR)
    assert kept["known_decision"] is False
    assert rejected_fields(
        service, decision_id="never-made", event="revenue", value=1.0, ts=now - 31 * 24 * HOUR
    ) == [["body", "ts"]]


def test_a_decision_id_carries_its_time_under_the_mac() -> None:
    """The time is read back to the millisecond; moving it, or an id of the earlier format
    (random part and MAC, no time), is not recognised."""
    noon = dt.datetime(2026, 5, 1, 12, 0, 0, 123_456, tzinfo=dt.UTC)
    decision_id = IDS.new(noon)
    assert IDS.issued_at(decision_id) == noon.replace(microsecond=123_000)
    moved = f"{int(decision_id[:12], 16) - 3_600_000:012x}" + decision_id[12:]
    assert IDS.issued_at(moved) is None
    random_part = "ab" * 16
    earlier = (
        random_part + hmac.new(b"test key", random_part.encode(), hashlib.sha256).hexdigest()[:8]
    )
    assert IDS.issued_at(earlier) is None and IDS.issued_at("é" * 40) is None


# --- poisoned outcomes through HTTP, and the bandit that learns from them ---------------------

BANDIT = ExperimentConfig.model_validate(
    {
        "name": "bandit-poison",
        "kind": "bandit",
        "bandit": {"policy": "gaussian_ts", "reward": "revenue", "attribution_window_hours": 1},
        "arms": [
            {"name": "uniform", "weight": 0.1, "policy": "uniform_random"},
            {"name": "learner", "weight": 0.9, "policy": "bandit"},
        ],
        "primary_metric": {"name": "revenue", "kind": "mean", "column": "revenue"},
    }
)


def test_poisoned_outcomes_are_4xx_and_the_bandit_keeps_learning(
    make_service, tmp_path, key_headers
) -> None:
    """1e308, NaN and Infinity in the JSON, a year-1 ts and a ts before the decision are
    4xx naming the field; a duplicate gets the first answer and is not logged again. Rows
    a log already holds from before (NaN, infinite, duplicated values) do not stop the
    bandit either: its update completes, the watermark moves, its parameters stay finite
    and it learns exactly the accepted rewards."""
    home = Home(tmp_path)
    experiment_state.start(home, BANDIT)
    router = experiment_state.router_from_state(experiment_state.read_state(home))
    provider = BanditProvider(CONFIG, home)
    provider.refresh(router)
    service = make_service(experiments=lambda: router, arm_policies=provider.get)
    api = create_api(max_body_bytes=2_048)
    api.state.service = service
    api.state.access = Access.for_home(AuthSettings(), home, environ={})
    with TestClient(api, headers=key_headers(home)) as client:
        answers = [
            client.post("/v1/decide", json={"customer_id": f"c{i:07d}"}).json() for i in range(30)
        ]
        learner = [a["decision_id"] for a in answers if a["arm"] == "learner"]
        first = {}
        for decision_id in learner:
            body = {"decision_id": decision_id, "event": "revenue", "value": 25.0}
            response = client.post("/v1/outcomes", json=body)
            assert response.status_code == 200
            first[decision_id] = response.json()
        target = learner[0]
        decided = IDS.issued_at(target)
        poisons = [
            ({"event": "revenue", "value": 1e308}, "value"),
            ({"event": "conversion", "ts": "0001-01-01T00:00:00+05:00"}, "ts"),
            ({"event": "conversion", "ts": (decided - HOUR).isoformat()}, "ts"),
            ({"event": "clicks"}, "event"),
        ]
        for poison, field in poisons:
            response = client.post("/v1/outcomes", json={"decision_id": target, **poison})
            assert response.status_code == 422, (poison, response.text)
            assert ["body", field] in [e["loc"] for e in response.json()["detail"]]
        for literal in (b"NaN", b"Infinity", b"-Infinity", b"1e309"):
            raw = b'{"decision_id": "%s", "event": "revenue", "value": %s}' % (
                target.encode(),
                literal,
            )
            response = client.post(
                "/v1/outcomes", content=raw, headers={"content-type": "application/json"}
            )
            assert response.status_code == 422, (literal, response.text)
        repeat = {"decision_id": target, "event": "revenue", "value": 99_999.0}
        again = client.post("/v1/outcomes", json=repeat)
        assert again.status_code == 200 and again.json() == first[target]
    service.close()
    # A log written before the API bounded values: rows of the other learner decisions.
    received = dt.datetime.now(dt.UTC)
    with LogWriter(home.outcome_log, OutcomeRecord) as log:
        for i, value in enumerate([float("nan"), float("inf"), 25.0]):
            log.append(
                OutcomeRecord(
                    outcome_id=f"old-{i}",
                    decision_id=learner[1 + i],
                    ts=received,
                    event="revenue",
                    value=value,
                    received_ts=received,
                    known_decision=True,
                )
            )

    logged = read_outcomes(home.outcome_log).to_pylist()
    accepted = [r for r in logged if not r["outcome_id"].startswith("old-")]
    assert len(accepted) == len(learner) and {r["value"] for r in accepted} == {25.0}
    spec = BanditSpec(BANDIT, CONFIG.features, CONFIG.actions)
    later = received + HOUR + dt.timedelta(seconds=settle_seconds(CONFIG) + 1)
    summary = update_experiment(home, spec, settle_seconds(CONFIG), now=later)
    state = BanditStore(home, spec.name).read()
    assert summary["learned"] == len(learner) and state.watermark is not None
    assert state.watermark == dt.datetime.fromisoformat(summary["cutoff"])
    learned = state.policy.state_dict()["state"]
    assert all(np.isfinite(np.asarray(v, dtype=float)).all() for v in learned.values())
    assert state.reward_sums.sum() == pytest.approx(25.0 * len(learner))


def test_the_openapi_document_describes_both_bodies() -> None:
    """/v1/outcomes is parsed by hand like /v1/decide; its body is still documented, and
    the context's description says which keys it takes."""
    document = create_api().openapi()
    outcome = document["paths"]["/v1/outcomes"]["post"]["requestBody"]["content"]
    schema = outcome["application/json"]["schema"]
    assert set(schema["properties"]) == {"decision_id", "event", "value", "ts"}
    assert schema["required"] == ["decision_id", "event"]
    decide = document["paths"]["/v1/decide"]["post"]["requestBody"]["content"]
    context = decide["application/json"]["schema"]["properties"]["context"]
    assert "source: request" in context["description"]
