import asyncio
import logging
import time

import numpy as np
import pytest

from experiments.logs.reader import decisions_with_outcomes, read_decisions
from liftgate.core.home import Home
from liftgate.core.vocabulary import EPSILON_GREEDY, RULES_FALLBACK
from serving.api_models import DecideRequest, OutcomeRequest
from serving.service import InvalidRequest


def decide(service, **body):
    return asyncio.run(service.decide(DecideRequest(**body), trace_id="t" * 32))


def record_outcome(service, **body):
    return asyncio.run(service.record_outcome(OutcomeRequest(**body)))


def test_decision_ranks_eligible_actions_by_expected_value(make_service, world) -> None:
    service = make_service()
    desktop = world.customers[world.customers["device"] == "desktop"].iloc[0]
    answer = decide(service, customer_id=desktop["customer_id"])
    values = [r["expected_value"] for r in answer["ranked"]]
    assert values == sorted(values, reverse=True)
    assert "push_reminder" not in [r["action"] for r in answer["ranked"]]  # eligibility
    assert answer["policy"] == EPSILON_GREEDY and not answer["fallback"]
    chosen = answer["chosen"]
    greedy = answer["ranked"][0]["action"]
    k = len(answer["ranked"])
    expected = 1 - 0.1 + 0.1 / k if chosen == greedy else 0.1 / k
    assert answer["propensity"] == pytest.approx(expected)
    for entry in answer["ranked"]:
        confidence = entry["confidence"]
        assert confidence["low"] <= entry["expected_value"] <= confidence["high"]


def test_candidates_restrict_the_choice_and_unknown_ones_are_rejected(make_service) -> None:
    service = make_service()
    answer = decide(service, customer_id="c0000001", candidates=["email_20", "no_action"])
    assert {r["action"] for r in answer["ranked"]} == {"email_20", "no_action"}
    with pytest.raises(InvalidRequest) as error:
        decide(service, customer_id="c0000001", candidates=["email_99"])
    assert error.value.errors[0]["loc"] == ["body", "candidates", 0]


def test_context_cannot_override_what_the_store_knows(make_service, tmp_path) -> None:
    """A caller who sends a stored attribute (`device`, `segment`) to steer the decision gets
    a 422 naming each key and what is allowed, and no forged snapshot is logged."""
    service = make_service()
    with pytest.raises(InvalidRequest) as error:
        decide(service, customer_id="c0000001", context={"device": "ios", "segment": "loyal"})
    nothing = "expected no context key: no feature of the contract has source: request"
    assert {tuple(e["loc"]): e["msg"] for e in error.value.errors} == {
        ("body", "context", "device"): nothing,
        ("body", "context", "segment"): nothing,
    }
    service.close()
    assert read_decisions(Home(tmp_path).decision_log).num_rows == 0


def test_context_sets_request_features_only_and_validates_them(make_service, device_store, world):
    async def fetch(customer_id, context):
        return device_store.lookup(customer_id, context)

    service = make_service(contract=device_store.contract, fetch=fetch)
    desktop = world.customers[world.customers["device"] == "desktop"]["customer_id"].iat[0]
    answer = decide(service, customer_id=desktop, context={"device": "ios"})
    assert "push_reminder" in [r["action"] for r in answer["ranked"]]  # eligible on mobile
    with pytest.raises(InvalidRequest) as error:
        decide(service, customer_id=desktop, context={"device": "fridge", "segment": "loyal"})
    assert {tuple(e["loc"]): e["msg"] for e in error.value.errors} == {
        ("body", "context", "device"): "expected one of ['ios', 'android', 'desktop']",
        ("body", "context", "segment"): "expected a feature with source: request, one of "
        "['device']",
    }


def test_no_eligible_candidate_is_a_described_error(make_service, world) -> None:
    desktop = world.customers[world.customers["device"] == "desktop"]["customer_id"].iat[0]
    with pytest.raises(InvalidRequest) as error:
        decide(make_service(), customer_id=desktop, candidates=["push_reminder"])
    assert error.value.errors[0]["loc"] == ["body", "candidates"]


def test_feature_store_failure_answers_from_the_fallback(make_service, stages) -> None:
    stages.fail_fetch = True
    service = make_service()
    answer = decide(service, customer_id="c0000001")
    assert answer["fallback"] and answer["fallback_reason"] == "feature_store_error"
    assert answer["policy"] == RULES_FALLBACK and answer["propensity"] == 1.0
    assert answer["chosen"] == "email_10"  # first of the fallback order that is eligible
    metrics = service.metrics.exposition().decode()
    assert 'liftgate_fallbacks_total{reason="feature_store_error"} 1.0' in metrics


def test_a_failure_log_names_the_trace_not_the_customer(make_service, stages, caplog) -> None:
    stages.fail_fetch = True
    with caplog.at_level(logging.ERROR, logger="serving.service"):
        decide(make_service(), customer_id="c0000001")
    assert f"feature fetch failed (trace {'t' * 32})" in caplog.text
    assert "c0000001" not in caplog.text


def test_missing_model_answers_from_the_fallback(make_service, stages) -> None:
    stages.model = None
    answer = decide(make_service(), customer_id="c0000001")
    assert answer["fallback_reason"] == "model_unavailable"
    assert answer["model"]["version"] is None


def test_slow_scoring_is_cut_at_the_budget(make_service, stages) -> None:
    stages.score_delay_s = 0.5
    service = make_service(scoring_budget_s=0.05)
    started = time.perf_counter()
    answer = decide(service, customer_id="c0000001")
    assert time.perf_counter() - started < 0.3
    assert answer["fallback_reason"] == "scoring_timeout"


def test_every_decision_is_logged_with_its_snapshot(make_service, tmp_path, store) -> None:
    service = make_service()
    answers = [decide(service, customer_id=f"c{i:07d}") for i in range(25)]
    service.close()
    log = read_decisions(Home(tmp_path).decision_log).to_pylist()
    assert sorted(r["decision_id"] for r in log) == sorted(a["decision_id"] for a in answers)
    by_id = {r["decision_id"]: r for r in log}
    for answer in answers:
        row = by_id[answer["decision_id"]]
        assert row["chosen"] == answer["chosen"] and row["propensity"] == answer["propensity"]
        assert row["actions"] == [r["action"] for r in answer["ranked"]]
        np.testing.assert_array_equal(row["features"], store.lookup(answer["customer_id"]).features)
        assert row["contract_version"] == store.contract.version


def test_outcomes_join_to_their_decisions_and_unknown_ones_are_kept(make_service, tmp_path):
    service = make_service()
    answer = decide(service, customer_id="c0000002")
    known = record_outcome(service, decision_id=answer["decision_id"], event="conversion")
    record_outcome(service, decision_id=answer["decision_id"], event="revenue", value=42.5)
    unknown = record_outcome(service, decision_id="never-made", event="conversion")
    service.close()
    assert known["known_decision"] and not unknown["known_decision"]
    joined = decisions_with_outcomes(Home(tmp_path)).to_pylist()
    assert joined[0]["converted"] and joined[0]["revenue"] == 42.5


def test_in_process_scoring_over_budget_is_flagged_when_it_returns(make_service, stages):
    stages.score_delay_s = 0.1
    answer = decide(make_service(scoring_budget_s=0.05, remote_scoring=False), customer_id="c1")
    assert answer["fallback_reason"] == "scoring_timeout"


def test_experiment_arms_decide_policy_actions_and_are_logged(make_service, tmp_path):
    from configs.schema import ExperimentConfig
    from experiments import state

    config = ExperimentConfig.model_validate(
        {
            "name": "exp",
            "arms": [
                {"name": "rules", "weight": 0.5, "policy": "rules"},
                {"name": "discount", "weight": 0.5, "actions": ["email_20"]},
            ],
            "primary_metric": {"name": "conversion", "kind": "binomial", "column": "converted"},
        }
    )
    state.start(Home(tmp_path), config)
    router = state.router_from_state(state.read_state(Home(tmp_path)))
    service = make_service(experiments=lambda: router)
    answers = [decide(service, customer_id=f"c{i:07d}") for i in range(60)]
    assert {a["arm"] for a in answers} == {"rules", "discount"}
    for a in answers:
        assert a["experiment"] == "exp" and not a["fallback"]
        if a["arm"] == "rules":
            assert a["policy"] == "rules" and a["propensity"] == 1.0
            assert a["ranked"][0]["expected_value"] is None
        else:
            assert a["chosen"] == "email_20" and a["propensity"] == pytest.approx(1.0)
    service.close()
    logged = {r["decision_id"]: r for r in read_decisions(Home(tmp_path).decision_log).to_pylist()}
    assert all(logged[a["decision_id"]]["arm"] == a["arm"] for a in answers)


def test_a_service_on_a_clock_issues_logs_and_offers_its_decisions_at_that_time(
    make_service, tmp_path
) -> None:
    """A journey worker's decisions are made in journey time: the id's issue time, the
    logged time and the offer's time are the clock's (the commit checks read the same)."""
    import datetime as dt

    from liftgate.governance.offers import OfferIndex

    journey_time = dt.datetime(2026, 3, 2, 9, 30, 0, 123000, tzinfo=dt.UTC)
    offers = OfferIndex.writer(Home(tmp_path).offers)
    service = make_service(clock=lambda: journey_time, offers=offers)
    answer = asyncio.run(service.decide(DecideRequest(customer_id="c000001"), "t-clock"))
    assert service.decision_ids.issued_at(answer["decision_id"]) == journey_time
    service.decision_log.close()  # flushed to Parquet; the fixture closes the rest
    logged = read_decisions(Home(tmp_path).decision_log).to_pylist()
    assert [row["ts"] for row in logged] == [journey_time]
    reader = OfferIndex.reader(Home(tmp_path).offers)
    assert reader.find(answer["decision_id"]).ts == journey_time
    reader.close()
