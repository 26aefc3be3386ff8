"""A rollout on the real Ray Serve application: the canary split reaches the replicas as
`user_config` without restarting them, canary customers get the challenger, and an abort
takes the challenger out of serving within seconds."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from configs.loader import DEFAULT_DIR, load_config
from liftgate.app import runner
from liftgate.core.home import Home
from liftgate.guard.controller import RolloutController
from liftgate.sim.world import stock_home
from serving.api_keys import APP, OPERATOR, KeyStore

pytestmark = pytest.mark.slow

ROLLOUT = {
    "name": "e2e-canary",
    "steps": [{"weight": 0.3, "min_units": 1_000_000}, {"weight": 1.0}],  # the guard holds
    "drift": {"enabled": False},
}


def replica_pids() -> set[str]:
    out = subprocess.run(["pgrep", "-f", "ServeReplica"], capture_output=True, text=True)
    return set(out.stdout.split())


def wait_for(
    url: str, headers: dict, predicate, timeout_s: float = 20.0, confirmations: int = 8
) -> float:
    """Seconds until `confirmations` /v1/canary answers in a row satisfy `predicate`."""
    started, streak = time.perf_counter(), 0
    while streak < confirmations:
        assert time.perf_counter() - started < timeout_s, "replicas did not apply the split"
        canary = httpx.get(f"{url}/v1/canary", headers=headers).json()["canary"]
        streak = streak + 1 if predicate(canary) else 0
    return time.perf_counter() - started


@pytest.fixture
def setup(trained: dict, tmp_path: Path) -> tuple[Home, Path]:
    home = Home(tmp_path / "home")
    shutil.copytree(trained["home"].root, home.root)
    stock_home(home, trained["data"])
    config_dir = tmp_path / "configs"
    shutil.copytree(DEFAULT_DIR, config_dir, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (config_dir / "rollouts" / "e2e-canary.yaml").write_text(yaml.safe_dump(ROLLOUT))
    return home, config_dir


def test_canary_weights_reach_replicas_in_place_and_abort_takes_the_challenger_out(
    setup, free_port
):
    home, config_dir = setup
    config = load_config(config_dir)
    keys = KeyStore.for_home(home)
    app = {"Authorization": f"Bearer {keys.create(APP).key}"}
    operator = {"Authorization": f"Bearer {keys.create(OPERATOR).key}"}
    info = runner.serve_detached(home, "127.0.0.1", free_port, "fused", config_dir)
    url = info["url"]
    try:
        before = replica_pids()
        controller = RolloutController(config, home)
        controller.start("e2e-canary")
        wait_for(url, operator, lambda canary: canary is not None and canary["weight"] == 0.3)
        with httpx.Client(base_url=url, timeout=10, headers=app) as client:
            answers = [
                client.post("/v1/decide", json={"customer_id": f"c{i:07d}"}).json()
                for i in range(1, 121)
            ]
        arms = {a["arm"] for a in answers}
        assert arms == {"canary", "baseline", "stable"}
        for answer in answers:
            assert answer["experiment"] == "rollout/e2e-canary"
            expected = "2" if answer["arm"] == "canary" else "1"
            assert answer["model"]["version"] == expected and not answer["fallback"]
        record = controller.abort("e2e-canary")
        transition = next(e["transition"] for e in reversed(record.history) if "transition" in e)
        assert transition["elapsed_s"] < 2.0
        applied_s = wait_for(url, operator, lambda canary: canary is None)
        assert applied_s < 10.0  # the benchmark measures it; here: it happens, quickly
        assert replica_pids() == before  # reconfigured, not replaced
        answer = httpx.post(
            f"{url}/v1/decide", json={"customer_id": "c0000001"}, headers=app
        ).json()
        assert answer["experiment"] is None and answer["model"]["version"] == "1"
    finally:
        runner.stop_process(info["pid"])
