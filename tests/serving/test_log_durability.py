"""A full disk while serving: bounded memory, 503s from /v1/decide, /v1/outcomes and
/readyz, a failure metric, and every acknowledged row logged once when the disk is back."""

from __future__ import annotations

import collections
import errno
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from configs.schema import AuthSettings, DecisionLogSettings
from experiments.logs import writer as log_writer
from experiments.logs.reader import read_decisions, read_outcomes
from experiments.logs.schema import DecisionRecord, OutcomeRecord
from experiments.logs.wal import Segment
from liftgate.core.home import Home
from serving.access import Access
from serving.api_keys import ADMIN
from serving.components import open_log
from serving.http import create_api
from serving.metrics import ServingMetrics

BOUND = 20


def enospc(*args: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def failures(client: TestClient, admin: dict[str, str]) -> dict[tuple[str, str], float]:
    families = text_string_to_metric_families(client.get("/metrics", headers=admin).text)
    return {
        (s.labels["log"], s.labels["kind"]): s.value
        for family in families
        if family.name == "liftgate_log_failures"
        for s in family.samples
        if s.name.endswith("_total")
    }


def test_a_full_disk_answers_503_with_bounded_memory_and_loses_no_acknowledged_row(
    make_service,
    tmp_path: Path,
    key_headers,
    monkeypatch: pytest.MonkeyPatch,
    wait_until: Callable[..., bool],
) -> None:
    home, metrics = Home(tmp_path), ServingMetrics()
    settings = DecisionLogSettings(max_rows=5, max_age_s=0.05, max_buffered_rows=BOUND)
    logs = {
        "decisions": open_log(settings, metrics, home.decision_log, DecisionRecord),
        "outcomes": open_log(settings, metrics, home.outcome_log, OutcomeRecord),
    }
    api = create_api()
    api.state.service = make_service(
        decision_log=logs["decisions"], outcome_log=logs["outcomes"], metrics=metrics
    )
    admin = key_headers(home, ADMIN)  # for /metrics
    api.state.access = Access.for_home(AuthSettings(), home, environ={})
    decisions, outcomes, statuses = [], [], collections.Counter()

    def decide(customer: str) -> int:
        response = client.post("/v1/decide", json={"customer_id": customer})
        statuses["decide", response.status_code] += 1
        if response.status_code == 200:
            decisions.append(response.json()["decision_id"])
        return response.status_code

    def report(decision_id: str) -> int:
        body = {"decision_id": decision_id, "event": "conversion"}
        response = client.post("/v1/outcomes", json=body)
        statuses["outcomes", response.status_code] += 1
        if response.status_code == 200:
            outcomes.append(response.json()["outcome_id"])
        return response.status_code

    with TestClient(api, headers=key_headers(home)) as client:
        assert decide("c0000001") == 200 and report(decisions[0]) == 200
        assert wait_until(lambda: logs["decisions"].buffered_rows == 0)
        with monkeypatch.context() as disk:
            # Nearly full: small appends still fit, a Parquet file does not.
            disk.setattr(log_writer, "write_batch", enospc)
            largest = 0
            for i in range(3 * BOUND):
                decide(f"c{i:07d}")
                largest = max(largest, logs["decisions"].buffered_rows)
            assert largest == BOUND and statuses["decide", 503] == 2 * BOUND
            ready = client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["decision_log"] is False
            # Full: nothing can be written.
            disk.setattr(Segment, "write", enospc)
            assert report(decisions[1]) == 503 and decide("c0000002") == 503
            assert client.get("/readyz").json()["outcome_log"] is False
            counted = failures(client, admin)
            assert counted["decisions", "buffer_full"] >= 2 * BOUND
            assert counted["decisions", "parquet"] >= 1 and counted["outcomes", "wal_write"] == 1
        assert wait_until(lambda: client.get("/readyz").status_code == 200, timeout_s=10)
        assert decide("c0000003") == 200 and report(decisions[-1]) == 200
        for log in logs.values():
            log.close()

    assert statuses["decide", 200] == len(decisions) == BOUND + 2
    logged = read_decisions(home.decision_log)["decision_id"].to_pylist()
    assert sorted(logged) == sorted(decisions)  # each acknowledged decision, once
    assert sorted(read_outcomes(home.outcome_log)["outcome_id"].to_pylist()) == sorted(outcomes)
