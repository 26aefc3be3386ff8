"""End to end on the real parts: MLflow registry, Ray Serve application, Parquet logs."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from ready_home import served_home  # tests/serving/, beside this file

from configs.loader import load_config
from experiments.logs.reader import decisions_with_outcomes, read_decisions
from liftgate.app import runner
from liftgate.core.home import Home
from serving.api_keys import ADMIN, APP, KeyStore
from serving.local import create_local_app
from serving.replay import replay

pytestmark = pytest.mark.slow
CONFIG = load_config()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    """A home with a world, a champion model and the online store in place."""
    return served_home(tmp_path_factory.mktemp("home"))


def test_ray_serve_decide_log_outcome_join_and_replay(
    home: Home, free_port: int, wait_until
) -> None:
    port = free_port
    keys = KeyStore.for_home(home)
    app_key, admin_key = keys.create(APP), keys.create(ADMIN)
    info = runner.serve_detached(home, "127.0.0.1", port, "fused", CONFIG.directory)
    try:
        url = info["url"]
        app_headers = {"Authorization": f"Bearer {app_key.key}"}
        with httpx.Client(base_url=url, timeout=10, headers=app_headers) as client:
            answers = [
                client.post("/v1/decide", json={"customer_id": f"c{i:07d}"}).json()
                for i in range(30)
            ]
            assert {a["model"]["version"] for a in answers} == {"1"}
            assert not any(a["fallback"] for a in answers)
            converted = answers[:10]
            for answer in converted:
                outcome = {"decision_id": answer["decision_id"], "event": "conversion"}
                assert client.post("/v1/outcomes", json=outcome).status_code == 200
            assert client.post("/v1/decide", json={"customer_id": 5}).status_code == 422
            # Access through Ray Serve: keys, roles, open health that names no rollout.
            assert client.get("/metrics").status_code == 403
            metrics = client.get("/metrics", headers={"Authorization": f"Bearer {admin_key.key}"})
            assert "liftgate_model_info" in metrics.text
            assert client.get("/healthz").json() == {"status": "ok", "auth": "on"}
            documented = client.get("/openapi.json").json()["paths"]["/v1/decide"]["post"]
            assert {"401", "403", "429"} <= set(documented["responses"])
            anonymous = httpx.post(f"{url}/v1/decide", json={"customer_id": "c0000001"})
            assert anonymous.status_code == 401
            keys.revoke(app_key.record.key_id)  # every replica refuses it within a second

            def refused() -> bool:  # keys are checked first: 422 while the key is live
                answers = [client.post("/v1/decide", json={}) for _ in range(6)]
                return all(a.status_code == 401 for a in answers)

            assert wait_until(refused, timeout_s=10)
    finally:
        runner.stop_process(info["pid"])
    logged = read_decisions(home.decision_log)
    assert sorted(logged.column("decision_id").to_pylist()) == sorted(
        a["decision_id"] for a in answers
    )
    joined = {r["decision_id"]: r for r in decisions_with_outcomes(home).to_pylist()}
    assert all(joined[a["decision_id"]]["converted"] for a in converted)
    assert sum(r["converted"] for r in joined.values()) == len(converted)
    result = replay(answers[0]["decision_id"], CONFIG, home)
    assert result["match"] and result["max_abs_diff"] <= 1e-9
    assert result["chosen_replayed"] == answers[0]["chosen"]


def test_a_normal_stop_is_clean(home: Home, free_port: int, wait_until) -> None:
    """`liftgate stop` (SIGTERM) shuts Serve down without Ray's SIGTERM stack frames."""
    home.service_log.parent.mkdir(parents=True, exist_ok=True)
    home.service_log.touch()
    start = home.service_log.stat().st_size  # the module's other tests share the log
    runner.serve_detached(home, "127.0.0.1", free_port, "fused", CONFIG.directory)
    assert wait_until(home.service_state.exists, timeout_s=30)  # written once ready
    assert runner.stop_service(home) is not None
    log = home.service_log.read_bytes()[start:].decode(errors="replace")
    assert "Traceback" not in log and "SIGTERM received" not in log, log
    assert "liftgate stopped: Serve and Ray shut down" in log, log
    assert not home.service_state.exists()


def test_registry_without_a_champion_serves_the_fallback_and_is_not_ready(
    home: Home, tmp_path: Path, key_headers
) -> None:
    empty = Home(tmp_path / "empty").ensure()
    empty.customers.parent.mkdir()
    shutil.copy(home.customers, empty.customers)
    app = create_local_app(CONFIG, empty, wait_s=5)
    with TestClient(app, headers=key_headers(empty)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["models"] is False
        answer = client.post("/v1/decide", json={"customer_id": "c0000001"}).json()
        assert answer["fallback"] and answer["fallback_reason"] == "model_unavailable"
