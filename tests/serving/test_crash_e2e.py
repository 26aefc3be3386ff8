"""kill -9 of the whole service under load, then a restart: nothing acknowledged is lost or
logged twice (Ray Serve, fused, real processes; the write-ahead logs of experiments/logs/)."""

from __future__ import annotations

import collections
import contextlib
import os
import shutil
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from ready_home import served_home  # tests/serving/, beside this file

from configs.loader import load_config
from experiments.logs.reader import read_decisions, read_outcomes
from liftgate.app import runner
from liftgate.core.home import Home

pytestmark = pytest.mark.slow
CONFIG = load_config()
CLIENTS = 8


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    """A home with a world, a champion model and the online store in place."""
    return served_home(tmp_path_factory.mktemp("home"))


def unconverted(home: Home) -> list[int]:
    """Write-ahead segments in the decision log and in the outcome log."""
    logs = (home.decision_log, home.outcome_log)
    return [len(list((log / "_wal").glob("*.wal"))) for log in logs]


def session(sid: int) -> list[int]:
    """The processes of the service's session: the driver started it, and Ray's processes
    (raylet, GCS, agents, HAProxy, the replicas, each in a process group of its own) are in
    it. Our own child, the driver, is reaped first so that it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(sid, os.WNOHANG)
    pids = []
    for entry in os.listdir("/proc"):
        with contextlib.suppress(ValueError, OSError):
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
            if os.getsid(int(entry)) == sid and state != "Z":  # a zombie is dead already
                pids.append(int(entry))
    return pids


def kill_session(sid: int) -> None:
    for pid in session(sid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def test_kill_9_of_the_whole_service_under_load_loses_and_duplicates_no_acknowledged_id(
    home: Home, free_port: int, key_headers, wait_until: Callable[..., bool]
) -> None:
    headers = key_headers(home)
    info = runner.serve_detached(home, "127.0.0.1", free_port, "fused", CONFIG.directory)
    decisions: list[str] = []
    outcomes: list[str] = []
    stop = threading.Event()

    def client(number: int) -> None:
        with httpx.Client(base_url=info["url"], timeout=10, headers=headers) as http:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    answer = http.post("/v1/decide", json={"customer_id": f"c{i:07d}"})
                    if answer.status_code != 200:
                        continue
                    decisions.append(answer.json()["decision_id"])
                    if i % 2:
                        body = {"decision_id": decisions[-1], "event": "conversion"}
                        reported = http.post("/v1/outcomes", json=body)
                        if reported.status_code == 200:
                            outcomes.append(reported.json()["outcome_id"])
                except httpx.HTTPError:
                    return  # the service is gone

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    try:
        # Mid-load, with some rows already in Parquet and others only in segments.
        assert wait_until(
            lambda: len(decisions) >= 1_000 and any(home.decision_log.rglob("part-*.parquet")),
            timeout_s=120,
        )
        kill_session(info["pid"])  # the driver, Ray, the replicas, HAProxy: everything
        assert wait_until(lambda: not session(info["pid"]), timeout_s=30)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        kill_session(info["pid"])
    shutil.rmtree(runner.ray_temp_dir(home, free_port), ignore_errors=True)
    left = unconverted(home)
    assert left[0] >= 1  # left for the restart

    restarted = runner.serve_detached(home, "127.0.0.1", free_port, "fused", CONFIG.directory)
    try:
        runner.stop_process(restarted["pid"])  # the replicas recovered at start; a clean stop
    finally:
        kill_session(restarted["pid"])

    logged = collections.Counter(read_decisions(home.decision_log)["decision_id"].to_pylist())
    reported = collections.Counter(read_outcomes(home.outcome_log)["outcome_id"].to_pylist())
    assert [d for d in decisions if logged[d] != 1] == []
    assert [o for o in outcomes if reported[o] != 1] == []
    assert max(logged.values()) == 1 and max(reported.values()) == 1
    assert unconverted(home) == [0, 0]
    print(
        f"kill -9 after {len(decisions)} decisions and {len(outcomes)} outcomes were "
        f"acknowledged; segments left (decisions, outcomes): {left}, recovered at restart"
    )
