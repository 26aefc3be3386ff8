"""A Ray cluster of two nodes on this machine, deployed from `liftgate serve --export-config`.

`ray start --head` and `ray start --address` (each node one CPU, its own ports), then
`serve deploy` of the exported Serve config through the head's dashboard (127.0.0.1 only):
decisions come through the proxy on the head from replicas on both nodes, and both
replicas' decisions land in the one log root under LIFTGATE_HOME.

Each `ray start --block` runs in a session of its own, stopped in teardown with every
process of that session (runner.stop_process), so no other Ray on the machine is touched.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import yaml
from ready_home import served_home  # tests/serving/, beside this file
from typer.testing import CliRunner

from configs.loader import load_config
from experiments.logs.reader import read_decisions
from liftgate.app.cli.main import app
from liftgate.app.runner import BASE_ENV, stop_process, wait_ready
from liftgate.core.home import HOME_ENV, Home
from serving.api_keys import APP, KeyStore
from serving.ray_app import APP_NAME

pytestmark = pytest.mark.slow
CONFIG = load_config()
BIN = Path(sys.executable).parent
#: More than half of a node's one CPU: each node holds exactly one of the two replicas.
REPLICA_CPUS = 0.6
#: `ray start` for a node joining on this machine. RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 holds
#: a node on 127.0.0.1 but makes `ray start` refuse to join a cluster ("Multi-node Ray
#: clusters are not supported"); with 1, Ray swaps 127.0.0.1 (the node's address and the
#: head's) for the routable address and listens on every interface. So the joining node
#: runs with 1, its own address pinned to loopback.
JOIN_ON_LOOPBACK = (
    "import sys, ray._private.services as services;"
    "services.get_node_ip_address = lambda address=None: '127.0.0.1';"
    "from ray.scripts.scripts import main; sys.argv[0] = 'ray'; main()"
)


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class Cluster:
    """Two Ray nodes on 127.0.0.1, each `ray start --block` in a session of its own."""

    def __init__(self, temp_dir: str, log_dir: Path):
        (self.gcs, self.dashboard, self.client, *agents) = free_ports(9)
        self.temp_dir, self.log_dir = temp_dir, log_dir
        self.env = {**os.environ, **BASE_ENV}
        self.dashboard_url = f"http://127.0.0.1:{self.dashboard}"
        self.nodes: list[subprocess.Popen] = []
        self._agents = iter(agents)

    def _node_ports(self) -> list[str]:
        """Ports each node would otherwise take at fixed numbers (two nodes, one machine)."""
        names = ("dashboard-agent-listen", "dashboard-agent-grpc", "metrics-export")
        return [arg for name in names for arg in (f"--{name}-port", str(next(self._agents)))]

    def start_node(self, ray: list[str], *args: str, env: dict[str, str] | None = None) -> None:
        name = f"node{len(self.nodes)}"
        command = [*ray, "start", "--block", "--num-cpus", "1", "--temp-dir"]
        command += [self.temp_dir, "--disable-usage-stats", *self._node_ports(), *args]
        with (self.log_dir / f"{name}.log").open("ab") as log:
            self.nodes.append(
                subprocess.Popen(
                    command,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env={**self.env, **(env or {})},
                    start_new_session=True,
                )
            )

    def start_head(self) -> None:
        """The head node, with the dashboard `serve deploy` talks to, on the loopback."""
        self.start_node(
            [str(BIN / "ray")], "--head", "--port", str(self.gcs),
            "--ray-client-server-port", str(self.client),
            "--include-dashboard=true", "--dashboard-host", "127.0.0.1",
            "--dashboard-port", str(self.dashboard),
        )  # fmt: skip

    def alive_nodes(self) -> list[dict]:
        try:
            answer = httpx.get(f"{self.dashboard_url}/api/v0/nodes", timeout=5)
            nodes = answer.json()["data"]["result"]["result"]
        except (httpx.HTTPError, ValueError, KeyError):
            return []
        return [n for n in nodes if n["state"] == "ALIVE"]

    def stop(self) -> None:
        for node in reversed(self.nodes):  # the worker node first, then the head
            stop_process(node.pid, timeout_s=30)
        shutil.rmtree(self.temp_dir, ignore_errors=True)  # Ray's session logs: 100+ MB


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    return served_home(tmp_path_factory.mktemp("home"))


@pytest.fixture
def cluster(tmp_path: Path, wait_until) -> Iterator[Cluster]:
    temp_dir = f"/tmp/lg2n-{os.getpid()}"  # Ray's socket paths must stay short
    cluster = Cluster(temp_dir, tmp_path)
    try:
        cluster.start_head()
        assert wait_until(lambda: len(cluster.alive_nodes()) == 1, 90), "head"
        cluster.start_node(
            [sys.executable, "-c", JOIN_ON_LOOPBACK],
            "--address", f"127.0.0.1:{cluster.gcs}", "--node-ip-address", "127.0.0.1",
            env={"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1"},
        )  # fmt: skip
        assert wait_until(lambda: len(cluster.alive_nodes()) == 2, 90), "second node"
        yield cluster
    finally:
        cluster.stop()


def test_serve_deploy_on_two_nodes_decides_and_logs_under_one_root(
    home: Home, cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wait_until
) -> None:
    (serve_port,) = free_ports(1)
    exported = tmp_path / "serve.yaml"
    monkeypatch.setenv(HOME_ENV, str(home.root))
    result = CliRunner().invoke(
        app, ["serve", "--export-config", str(exported), "--port", str(serve_port)]
    )
    assert result.exit_code == 0, result.output
    document = yaml.safe_load(exported.read_text())
    (decide,) = document["applications"][0]["deployments"]
    assert decide["num_replicas"] == 2
    decide["ray_actor_options"]["num_cpus"] = REPLICA_CPUS  # the placement hint
    exported.write_text(yaml.safe_dump(document, sort_keys=False))

    deploy = subprocess.run(
        [str(BIN / "serve"), "deploy", str(exported), "--address", cluster.dashboard_url],
        env=cluster.env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert deploy.returncode == 0, deploy.stdout + deploy.stderr
    url = f"http://127.0.0.1:{serve_port}"
    wait_ready(url, timeout_s=240)  # one replica is enough for /readyz: wait for both

    def both_running() -> bool:
        replicas = serve_replicas(cluster)
        return len(replicas) == 2 and all(r["state"] == "RUNNING" for r in replicas)

    assert wait_until(both_running, timeout_s=180), serve_replicas(cluster)

    key = KeyStore.for_home(home).create(APP).key
    headers = {"Authorization": f"Bearer {key}"}

    def decide_for(i: int) -> dict:
        with httpx.Client(base_url=url, headers=headers, timeout=20) as client:
            answer = client.post("/v1/decide", json={"customer_id": f"c{i:07d}"})
            assert answer.status_code == 200, answer.text
            return answer.json()

    with ThreadPoolExecutor(4) as pool:  # concurrent: the proxy spreads them
        answers = list(pool.map(decide_for, range(60)))
    assert not any(a["fallback"] for a in answers)

    replicas = serve_replicas(cluster)
    assert len({r["node_id"] for r in replicas}) == 2, replicas  # one on each node

    # Both replicas' decision logs, in the one log root (files named after the writer's pid).
    pids = {r["pid"] for r in replicas}
    assert wait_until(lambda: pids <= writer_pids(home), timeout_s=30), writer_pids(home)
    logged = read_decisions(home.decision_log).column("decision_id").to_pylist()
    assert set(logged) >= {a["decision_id"] for a in answers}


def serve_replicas(cluster: Cluster) -> list[dict]:
    """The decision deployment's replicas as Serve reports them (node, pid, state)."""
    details = httpx.get(f"{cluster.dashboard_url}/api/serve/applications/", timeout=10).json()
    return details["applications"][APP_NAME]["deployments"]["decide"]["replicas"]


def writer_pids(home: Home) -> set[int]:
    """Pids of the processes that wrote decision log files (`part-<pid>-<id>.parquet`)."""
    names = (path.name for path in home.decision_log.rglob("part-*.parquet"))
    return {int(m.group(1)) for name in names if (m := re.match(r"part-(\d+)-", name))}
