"""A rollout on a Ray cluster without a `liftgate serve` driver: the rollouts' supervisor
(one detached, named actor, liftgate/app/rollout_supervisor.py) propagates the canary
weights and runs the guard; SIGKILLed mid-rollout, Ray restarts it and the rollout still
ends correctly (rolled back, the replicas serving the champion).

`ray start --head` (the two-node test's launcher, one node), then `serve deploy` of the
exported Serve config through the head's dashboard (127.0.0.1 only). The rollout cannot
pass its step (a million units) and rolls back once the step's `max_duration_s` ends: a
verdict of the guard that needs no traffic model, so the test is about where the guard
runs, not about the statistics (tests/guard/ covers those).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from test_two_nodes import BIN, Cluster, free_ports  # tests/serving/, beside this file
from typer.testing import CliRunner

from configs.loader import DEFAULT_DIR, load_config
from experiments.canary_state import read_split
from liftgate.app.cli.main import app
from liftgate.app.rollout_supervisor import NAME, NAMESPACE
from liftgate.app.runner import wait_ready
from liftgate.core.home import HOME_ENV, Home
from liftgate.core.vocabulary import CHALLENGER, CHAMPION
from liftgate.guard.state import ACTIVE, ROLLED_BACK, read_record
from liftgate.sim.world import stock_home
from registry.client import ModelRegistry
from serving.api_keys import APP, OPERATOR, KeyStore

pytestmark = pytest.mark.slow

ROLLOUT = "cluster-canary"
#: Long enough to find and kill the supervisor mid-step; the rollback comes after it.
STEP_S = 60
ROLLOUT_YAML = {
    "name": ROLLOUT,
    "steps": [
        {"weight": 0.3, "min_units": 1_000_000, "min_duration_s": 0, "max_duration_s": STEP_S},
        {"weight": 1.0},
    ],
    "analysis": {"interval_s": 1},
    "on_inconclusive": "rollback",
    "drift": {"enabled": False},
}


def eventually(condition: Callable[[], object], timeout_s: float, every_s: float = 0.5):
    """The first truthy answer of `condition` within `timeout_s` (None if none came)."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = condition()
        if answer or time.monotonic() > deadline:
            return answer
        time.sleep(every_s)


@pytest.fixture
def setup(trained: dict, tmp_path: Path) -> tuple[Home, Path]:
    """A home with v1 champion and v2 challenger, and a configuration with the rollout."""
    home = Home(tmp_path / "home")
    shutil.copytree(trained["home"].root, home.root)
    stock_home(home, trained["data"])
    config_dir = tmp_path / "configs"
    shutil.copytree(DEFAULT_DIR, config_dir, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (config_dir / "rollouts" / f"{ROLLOUT}.yaml").write_text(yaml.safe_dump(ROLLOUT_YAML))
    return home, config_dir


@pytest.fixture
def head(tmp_path: Path) -> Iterator[Cluster]:
    cluster = Cluster(f"/tmp/lgrs-{os.getpid()}", tmp_path)  # Ray's socket paths: short
    try:
        cluster.start_head()
        assert eventually(lambda: len(cluster.alive_nodes()) == 1, 90), "head"
        yield cluster
    finally:
        cluster.stop()


def supervisors(cluster: Cluster) -> list[dict]:
    """The supervisor actors Ray knows of (every state), from the dashboard's state API."""
    try:
        answer = httpx.get(f"{cluster.dashboard_url}/api/v0/actors", timeout=10)
        actors = answer.json()["data"]["result"]["result"]
    except (httpx.HTTPError, ValueError, KeyError):
        return []
    return [a for a in actors if a.get("name") == NAME and a.get("ray_namespace") == NAMESPACE]


def alive_pid(cluster: Cluster) -> int | None:
    alive = [a for a in supervisors(cluster) if a["state"] == "ALIVE" and a.get("pid")]
    return alive[0]["pid"] if len(alive) == 1 else None


def test_a_killed_supervisor_is_restarted_and_the_rollout_still_rolls_back(
    setup: tuple[Home, Path], head: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, config_dir = setup
    monkeypatch.setenv(HOME_ENV, str(home.root))
    (port,) = free_ports(1)
    exported = tmp_path / "serve.yaml"
    export = ["serve", "--export-config", str(exported), "--port", str(port)]
    result = CliRunner().invoke(app, [*export, "--config-dir", str(config_dir)])
    assert result.exit_code == 0, result.output
    document = yaml.safe_load(exported.read_text())
    document["applications"][0]["deployments"][0]["num_replicas"] = 1  # one node, 2 cores
    exported.write_text(yaml.safe_dump(document, sort_keys=False))
    deploy = subprocess.run(
        [str(BIN / "serve"), "deploy", str(exported), "--address", head.dashboard_url],
        env=head.env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, timeout_s=240)
    first_pid = eventually(lambda: alive_pid(head), 60)
    assert first_pid, supervisors(head)  # the application's builder started it

    keys = KeyStore.for_home(home)
    client = httpx.Client(base_url=url, timeout=20)
    app_key = {"Authorization": f"Bearer {keys.create(APP).key}"}
    operator = {"Authorization": f"Bearer {keys.create(OPERATOR).key}"}

    def served_canary() -> dict | None:
        return client.get("/v1/canary", headers=operator).json()["canary"]

    def decide(i: int) -> dict:
        answer = client.post("/v1/decide", json={"customer_id": f"c{i:07d}"}, headers=app_key)
        assert answer.status_code == 200, answer.text
        return answer.json()

    started = CliRunner().invoke(
        app, ["rollout", "start", ROLLOUT, "--config-dir", str(config_dir)]
    )
    assert started.exit_code == 0, started.output
    # No driver: the supervisor alone carries the file's split to the replica.
    canary = eventually(served_canary, 60, every_s=0.2)
    assert canary is not None and canary["weight"] == 0.3, canary
    assert {decide(i)["model"]["version"] for i in range(60)} == {"1", "2"}

    assert read_record(home, ROLLOUT).status in ACTIVE  # mid-rollout, before its verdict
    os.kill(first_pid, signal.SIGKILL)
    killed_at = time.monotonic()
    restarted = eventually(lambda: (pid := alive_pid(head)) and pid != first_pid and pid, 120)
    assert restarted, supervisors(head)
    print(f"supervisor restarted by Ray {time.monotonic() - killed_at:.1f} s after SIGKILL")

    def ended() -> bool:
        decide(int(time.monotonic()) % 1000)  # traffic all along
        return read_record(home, ROLLOUT).status not in ACTIVE

    assert eventually(ended, STEP_S + 120), read_record(home, ROLLOUT)
    ended_at = time.monotonic()
    record = read_record(home, ROLLOUT)
    assert record.status == ROLLED_BACK and record.pending is None
    split, _ = read_split(home)
    assert split is None or split.rollout != ROLLOUT or split.weight == 0.0
    config = load_config(config_dir)
    aliases = ModelRegistry(home, config.models.registry).aliases(config.models.scorer.name)
    assert aliases.get(CHAMPION) == "1" and CHALLENGER not in aliases

    # The rollback's weights reached the replica: the champion serves everyone.
    assert eventually(lambda: all(served_canary() is None for _ in range(5)), 60, every_s=0.05)
    print(f"replica without the canary {time.monotonic() - ended_at:.2f} s after the rollback")
    answers = [decide(i) for i in range(60)]
    assert {a["model"]["version"] for a in answers} == {"1"}
    assert all(a["experiment"] is None for a in answers)
    # Exactly one supervisor alive, the restarted one (asked again while the dashboard's
    # state API is slow to answer under load: a failed read lists none).
    assert eventually(lambda: alive_pid(head) == restarted, 60), supervisors(head)
    client.close()
