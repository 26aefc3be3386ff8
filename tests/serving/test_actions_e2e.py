"""Governed actions end to end on the real parts: the Ray Serve application (two replicas
behind HAProxy) with API keys, the consent the world wrote, the action store, the outbox
worker of `liftgate serve`, the action log and the audit log."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from ready_home import served_home  # tests/serving/, beside this file

from configs.loader import DEFAULT_DIR
from experiments.logs.reader import read_actions
from liftgate.app import runner
from liftgate.core import audit
from liftgate.core.home import Home
from liftgate.governance.consent import ConsentStore
from serving.api_keys import APP, OPERATOR, KeyStore

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    return served_home(tmp_path_factory.mktemp("home"))


def configs_without_quiet_hours(directory: Path) -> Path:
    """The default configuration, its channels' quiet hours left out: the test must not
    depend on the time of day it runs at (quiet hours have tests of their own)."""
    shutil.copytree(DEFAULT_DIR, directory, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    actions = directory / "actions.yaml"
    lines = actions.read_text().splitlines(keepends=True)
    actions.write_text("".join(line for line in lines if "quiet_hours:" not in line))
    return directory


def customers_by_email_consent(home: Home) -> tuple[str, str]:
    """A customer the world's consent lets us e-mail, and one it does not."""
    with ConsentStore.reader(home.consent) as consent:
        ids = [f"c{i:07d}" for i in range(200)]
        granted = [c for c in ids if consent.is_granted(c, "email")]
        refused = [c for c in ids if not consent.is_granted(c, "email")]
    return granted[0], refused[0]


def test_actions_through_ray_serve(home: Home, tmp_path: Path, free_port: int, wait_until):
    keys = KeyStore.for_home(home)
    app_key, operator_key = keys.create(APP), keys.create(OPERATOR)
    config_dir = configs_without_quiet_hours(tmp_path / "configs")
    consenting, not_consenting = customers_by_email_consent(home)
    info = runner.serve_detached(home, "127.0.0.1", free_port, "fused", config_dir)
    try:
        url = info["url"]
        headers = {"Authorization": f"Bearer {app_key.key}"}
        with httpx.Client(base_url=url, timeout=20, headers=headers) as client:

            def decide(customer_id: str) -> str:
                body = {"customer_id": customer_id, "candidates": ["email_10", "no_action"]}
                answer = client.post("/v1/decide", json=body).json()
                assert "email_10" in [r["action"] for r in answer["ranked"]], answer
                return answer["decision_id"]

            def commit(decision_id: str, key: str):
                body = {
                    "decision_id": decision_id,
                    "action": "email_10",
                    "channel": "email",
                    "campaign_id": "e2e",
                    "idempotency_key": key,
                }
                return client.post("/v1/actions", json=body)

            # Retries racing across both replicas: one action, every caller the same answer.
            decision_id = decide(consenting)
            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(lambda _: commit(decision_id, "race"), range(16)))
            assert {a.status_code for a in answers} == {202}
            bodies = [a.json() for a in answers]
            assert len({b["action_id"] for b in bodies}) == 1
            assert sorted(b["replayed"] for b in bodies) == [False] + [True] * 15
            action_id = bodies[0]["action_id"]

            # The consent store, not the decision, has the last word; ids we never issued.
            assert (
                client.post(
                    "/v1/decide", json={"customer_id": not_consenting, "candidates": ["email_10"]}
                ).status_code
                == 422
            )  # no offer without consent
            refused = commit("0" * 40, "forged")
            assert (refused.status_code, refused.json()["check"]) == (409, "decision")

            # The worker of `liftgate serve` delivers it; an operator may look.
            operator = {"Authorization": f"Bearer {operator_key.key}"}

            def delivered() -> bool:
                state = client.get(f"/v1/actions/{action_id}", headers=operator).json()
                return state["status"] == "delivered"

            assert wait_until(delivered, timeout_s=30)
            # Caps counted across replicas: 2 e-mails a day (actions.yaml).
            second, third = (commit(decide(consenting), key) for key in ("second", "third"))
            assert second.status_code == 202
            assert (third.status_code, third.json()["check"]) == (409, "caps")
            assert httpx.post(f"{url}/v1/actions", json={}).status_code == 401

            # A revocation through the API holds on every replica from the next decision on.
            revoked = client.put(f"/v1/consent/{consenting}", json={"channels": {"email": False}})
            assert revoked.status_code == 200 and revoked.json()["channels"]["email"]["applied"]
            after = [
                client.post("/v1/decide", json={"customer_id": consenting}).json()
                for _ in range(20)  # HAProxy spreads them over both replicas
            ]
            offered = {entry["action"] for answer in after for entry in answer["ranked"]}
            assert not offered & {"email_10", "email_20", "free_shipping"}, offered
            assert client.get(f"/v1/actions/{action_id}", headers=operator).status_code == 200
    finally:
        runner.stop_process(info["pid"])
    delivered_lines = (home.deliveries / "email.jsonl").read_text().splitlines()
    assert sum(action_id in line for line in delivered_lines) == 1
    logged = read_actions(home.action_log).to_pylist()
    mine = [(r["status"], r["attempt"]) for r in logged if r["action_id"] == action_id]
    assert ("queued", 0) in mine and mine.count(("queued", 0)) == 1
    committed = [r for r in audit.read(home.audit_log) if r.get("action_id") == action_id]
    assert [r["action"] for r in committed] == ["action_committed"]
    assert consenting not in home.audit_log.read_text()
