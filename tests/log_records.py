"""Sample log records for the tests of the logs: one shape, overridable field by field."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from experiments.logs.schema import DecisionRecord

NOON = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)


def make_decision(decision_id: str, ts: dt.datetime = NOON, **overrides: Any) -> DecisionRecord:
    record = DecisionRecord(
        decision_id=decision_id,
        ts=ts,
        customer_id=f"customer-{decision_id}",
        features=[0.5, 1.0, -2.0],
        contract_version="features-v1",
        actions=["email", "sms", "none"],
        scores=[3.0, 1.5, 0.0],
        probabilities=[0.12, 0.08, 0.01],
        chosen="email",
        propensity=0.9,
        policy="epsilon_greedy",
        model_name="uplift",
        model_version="7",
        model_alias="champion",
        experiment="spring-promo",
        arm="treatment",
        fallback=False,
        fallback_reason=None,
        cold_start=False,
        latency_ms=3.2,
        trace_id=f"trace-{decision_id}",
        request_id=None,
    )
    return replace(record, **overrides)
