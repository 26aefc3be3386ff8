"""End to end: a served bandit on the real application learns from posted outcomes, and after a
stop and a start serves exactly the policy it persisted.

The application is the Ray Serve one, started and stopped twice, with two replicas
sharing LIFTGATE_HOME.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
from ready_home import served_home  # tests/serving/, beside this file

from configs.loader import load_config
from configs.schema import ExperimentConfig
from experiments import state as experiment_state
from experiments.bandits.spec import BanditSpec
from experiments.bandits.store import BanditStore
from experiments.bandits.updater import settle_seconds, update_bandit
from experiments.logs.reader import read_decisions, read_outcomes
from liftgate.app import runner
from liftgate.core.home import Home
from serving.api_keys import APP, KeyStore
from serving.bandit_arm import ServedBandit

pytestmark = pytest.mark.slow
CONFIG = load_config()
WINDOW_HOURS = 0.001  # 3.6 s
EXPERIMENT = ExperimentConfig.model_validate(
    {
        "name": "bandit-e2e",
        "kind": "bandit",
        "layer": "bandits",
        "bandit": {
            "policy": "thompson",
            "attribution_window_hours": WINDOW_HOURS,
            "update_every_s": 3600,  # the replicas update once as they start; the test, once
        },
        "arms": [
            {"name": "uniform", "weight": 0.1, "policy": "uniform_random"},
            {"name": "learner", "weight": 0.9, "policy": "bandit"},
        ],
        "primary_metric": {"name": "conversion", "kind": "binomial", "column": "converted"},
    }
)
SPEC = BanditSpec(EXPERIMENT, CONFIG.features, CONFIG.actions)


@pytest.fixture(scope="module")
def home() -> Iterator[Home]:
    """A short LIFTGATE_HOME with a world, a champion, the online store and the bandit running."""
    root = Path(tempfile.mkdtemp(prefix="lgb-", dir="/tmp"))
    home = served_home(root)
    experiment_state.start(home, EXPERIMENT)
    yield home
    shutil.rmtree(root, ignore_errors=True)


@contextmanager
def serving(home: Home, port: int) -> Iterator[httpx.Client]:
    """The Ray Serve application (two replicas sharing LIFTGATE_HOME) until the block ends,
    and a client of it with an app key; `liftgate stop`'s shutdown flushes the replicas'
    logs."""
    headers = {"Authorization": f"Bearer {KeyStore.for_home(home).create(APP).key}"}
    info = runner.serve_detached(home, "127.0.0.1", port, "fused", CONFIG.directory)
    try:
        with httpx.Client(base_url=info["url"], timeout=10, headers=headers) as client:
            yield client
    finally:
        runner.stop_process(info["pid"])


def flushed(home: Home, decided: list[dict], rewarded: list[dict]) -> bool:
    """Whether the workers' logs hold every decision made and an outcome for each rewarded one."""
    decisions = set(read_decisions(home.decision_log)["decision_id"].to_pylist())
    outcomes = set(read_outcomes(home.outcome_log)["decision_id"].to_pylist())
    return all(a["decision_id"] in decisions for a in decided) and all(
        a["decision_id"] in outcomes for a in rewarded
    )


def decide_all(client: httpx.Client, customers: range) -> list[dict]:
    return [client.post("/v1/decide", json={"customer_id": f"c{i:07d}"}).json() for i in customers]


def test_bandit_state_survives_a_restart_and_is_what_is_served(
    home: Home, free_port: int, wait_until: Callable[..., bool]
) -> None:
    port = free_port
    started = time.monotonic()
    with serving(home, port) as client:
        first = decide_all(client, range(80))
        learner = [a for a in first if a["arm"] == "learner"]
        assert learner and {a["policy"] for a in learner} == {"bandit:thompson"}
        converted = [a for a in learner if a["chosen"] == "email_20"]
        assert converted
        for answer in converted:
            outcome = {"decision_id": answer["decision_id"], "event": "conversion"}
            assert client.post("/v1/outcomes", json=outcome).status_code == 200
        assert wait_until(
            lambda: flushed(home, first, converted),
            timeout_s=CONFIG.serving.decision_log.max_age_s + 30,
        ), "the workers did not flush their decision and outcome logs"
        closed = dt.datetime.now(dt.UTC) + dt.timedelta(
            hours=WINDOW_HOURS, seconds=settle_seconds(CONFIG)
        )
        summary = update_bandit(home, CONFIG, SPEC.name, now=closed)
        assert summary["learned"] == len(learner)
    persisted = json.loads(BanditStore(home, SPEC.name).path.read_text())
    assert persisted["policy"]["n_updates"] == len(learner)
    email_20 = SPEC.action_ids.index("email_20")
    assert persisted["policy"]["state"]["alpha_"][email_20] == 1 + len(converted)

    with serving(home, port) as client:
        second = decide_all(client, range(80, 140))
    print(f"two starts and stops of the application: {time.monotonic() - started:.0f} s")

    restored = BanditStore(home, SPEC.name).read()
    assert restored.policy.state_dict() == persisted["policy"]  # nothing new had closed
    served = ServedBandit(SPEC, restored.policy)
    learner = [a for a in second if a["arm"] == "learner"]
    assert learner and not any(a["fallback"] for a in second)
    for answer in learner:
        eligible = np.sort([SPEC.action_ids.index(r["action"]) for r in answer["ranked"]])
        replayed = served.allocate(answer["decision_id"], np.zeros(13), eligible, None)
        assert SPEC.action_ids[int(eligible[replayed.index])] == answer["chosen"]
        assert replayed.propensity == answer["propensity"]
    assert np.mean([a["chosen"] == "email_20" for a in learner]) > 0.5  # what it learned
