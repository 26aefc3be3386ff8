"""`liftgate export bento`: one model version as a BentoML service answering as serving does.

The fast reference is a `DecisionService` over `Components` — the stages the fused Ray Serve
ingress runs, loaded from the registry and the home. The slow end-to-end test also starts
the real Ray Serve application (`liftgate serve --detach`) over the same home and
configuration and checks that `bentoml serve` answers every request as it does.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from configs.loader import LiftgateConfig, config_dir, load_config
from liftgate.app.cli.main import app
from liftgate.core.home import HOME_ENV, Home
from liftgate.governance.consent import ConsentStore
from registry.client import ModelRegistry
from serving.api_models import DecideRequest
from serving.bento_app import CONSENT_DB_ENV
from serving.bento_bundle import BundleInfo, open_bundle, write_bundle
from serving.components import Components
from serving.decision_ids import DecisionIds
from serving.metrics import ServingMetrics
from serving.service import DecisionService

LIFTGATE = Path(sys.executable).with_name("liftgate")
BENTOML = Path(sys.executable).with_name("bentoml")
SCORE_FIELDS = ("expected_value", "conversion_probability", "order_value")


@pytest.fixture(scope="module")
def setup(trained: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A configuration whose choice is greedy (so `chosen` does not depend on the random
    decision id), whose store is the world's customers and whose scoring budget no loaded
    machine exceeds; and a home of the module's own (a copy of the trained one: Ray Serve
    writes logs, keys and state into it) whose consent store grants both channels to a few
    customers, the store the bento and the reference read too."""
    root = tmp_path_factory.mktemp("bento")
    home = Home(root / "home")
    shutil.copytree(trained["home"].root, home.root)
    configs = root / "configs"
    shutil.copytree(config_dir(), configs)
    serving_yaml = configs / "serving.yaml"
    settings = yaml.safe_load(serving_yaml.read_text())
    settings.update(
        epsilon=0.0,
        scoring_budget_ms=60_000.0,
        customers_path=str(trained["data"] / "customers.parquet"),
    )
    serving_yaml.write_text(yaml.safe_dump(settings))
    customers = pq.read_table(trained["data"] / "customers.parquet").column("customer_id")
    ids = customers.slice(0, 6).to_pylist()
    consent_db = home.consent
    consent_db.parent.mkdir(parents=True, exist_ok=True)
    store = ConsentStore(consent_db)
    for customer in ids[:4]:
        store.set(customer, "email", True)
        store.set(customer, "push", True)
    store.close()
    return {"configs": configs, "consent_db": consent_db, "customers": ids, "home": home}


def requests_of(customers: list[str]) -> list[dict]:
    return [
        *({"customer_id": c} for c in customers),
        {"customer_id": customers[0], "candidates": ["email_20", "no_action", "free_shipping"]},
        {"customer_id": "never-seen-before"},
    ]


@contextmanager
def reference(config: LiftgateConfig, home: Home, consent_db: Path) -> Iterator[DecisionService]:
    components = Components(config, home, ServingMetrics(), watch_canary=False).start(60.0)
    try:
        assert components.ready() == {"models": True, "features": True}
        yield DecisionService(
            contract=components.contract,
            catalogue=components.catalogue,
            fetch=components.fetch,
            score=components.score,
            model_name=config.models.scorer.name,
            model_alias=config.serving.model_alias,
            epsilon=config.serving.epsilon,
            scoring_budget_s=config.serving.scoring_budget_ms / 1000,
            decision_log=None,
            outcome_log=None,
            outcome_ledger=None,
            decision_ids=DecisionIds(bytes(32)),
            consent=ConsentStore.reader(consent_db).granted_channels,
        )
    finally:
        components.close()


@pytest.fixture(scope="module")
def expected(trained: dict, setup: dict) -> list[dict]:
    config = load_config(setup["configs"])
    with reference(config, setup["home"], setup["consent_db"]) as service:
        return [decide(service, body) for body in requests_of(setup["customers"])]


def decide(service: DecisionService, body: dict) -> dict:
    return asyncio.run(service.decide(DecideRequest.model_validate(body), "trace"))


def answers_over_http(client: httpx.Client, customers: list[str]) -> list[dict]:
    answers = []
    for body in requests_of(customers):
        response = client.post("/v1/decide", json=body)
        assert response.status_code == 200, response.text
        answers.append(response.json())
    return answers


def assert_same_answer(got: dict, want: dict) -> None:
    """Same ranked actions, scores (to 1e-9: the same booster read from the same text),
    choice, model and flags."""
    assert [r["action"] for r in got["ranked"]] == [r["action"] for r in want["ranked"]]
    for mine, theirs in zip(got["ranked"], want["ranked"], strict=True):
        for field in SCORE_FIELDS:
            assert mine[field] == pytest.approx(theirs[field], abs=1e-9, rel=0)
        for bound in ("low", "high"):
            assert mine["confidence"][bound] == pytest.approx(
                theirs["confidence"][bound], abs=1e-9, rel=0
            )
    for key in ("chosen", "propensity", "policy", "model", "fallback", "cold_start"):
        assert got[key] == want[key], key


def test_answers_cover_several_candidates(expected: list[dict]) -> None:
    """The comparison means something: consented customers get ranked lists of several."""
    assert max(len(answer["ranked"]) for answer in expected) >= 3
    assert not any(answer["fallback"] for answer in expected)


def test_bundle_answers_as_the_served_stages(
    trained: dict, setup: dict, expected: list[dict], tmp_path: Path
) -> None:
    config = load_config(setup["configs"])
    registry = ModelRegistry(setup["home"], config.models.registry)
    loaded = registry.load(config.models.scorer.name, alias="champion")
    write_bundle(tmp_path, loaded.model, setup["configs"], trained["data"] / "customers.parquet")
    info = BundleInfo(loaded.name, loaded.version, "champion")
    service = open_bundle(tmp_path, info, setup["consent_db"])
    for body, want in zip(requests_of(setup["customers"]), expected, strict=True):
        assert_same_answer(decide(service, body), want)


def test_unknown_alias_exits_2_naming_model_and_alias(trained: dict, monkeypatch) -> None:
    monkeypatch.setenv(HOME_ENV, str(trained["home"].root))
    result = CliRunner().invoke(app, ["export", "bento", "--alias", "nope", "--json"])
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert "'nope'" in error and load_config().models.scorer.name in error


@pytest.fixture
def ray_serve_answers(setup: dict, free_port: int, key_headers) -> list[dict]:
    """The answers of the real Ray Serve application to `requests_of`: `liftgate serve
    --detach` over the module's home and configuration, called with an app key, then
    `liftgate stop`."""
    env = {**os.environ, HOME_ENV: str(setup["home"].root)}
    serve = [LIFTGATE, "serve", "--detach", "--host", "127.0.0.1", "--port", str(free_port)]
    config = ["--config-dir", str(setup["configs"]), "--json"]
    started = subprocess.run(serve + config, env=env, capture_output=True, text=True, check=False)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        url = json.loads(started.stdout)["url"]
        headers = key_headers(setup["home"])
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            return answers_over_http(client, setup["customers"])
    finally:
        stop = [LIFTGATE, "stop", "--json"]
        stopped = subprocess.run(stop, env=env, capture_output=True, text=True, check=False)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr


@pytest.fixture
def bento_server(
    setup: dict, ray_serve_answers: list[dict], free_port: int, tmp_path: Path
) -> Iterator[str]:
    """`liftgate export bento`, then `bentoml serve` of the bento on 127.0.0.1; its URL.

    It starts once Ray Serve has answered and stopped: the two take turns on the test's
    free port, and one service at a time is what the shared cores can carry."""
    env = {
        **os.environ,
        HOME_ENV: str(setup["home"].root),
        "BENTOML_HOME": str(tmp_path / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "true",
        CONSENT_DB_ENV: str(setup["consent_db"]),
    }
    export = subprocess.run(
        [LIFTGATE, "export", "bento", "--alias", "champion", "--json"]
        + ["--config-dir", str(setup["configs"]), "--out", str(tmp_path / "dist")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert export.returncode == 0, export.stderr
    document = json.loads(export.stdout)
    assert Path(document["path"]).is_dir() and Path(document["archive"]).is_file()
    assert document["serve"].startswith(f"bentoml serve {document['bento']} ")
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [BENTOML, "serve", document["bento"], "--host", "127.0.0.1", "--port", str(free_port)],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{free_port}"
    try:
        yield url
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.slow
def test_bentoml_serve_answers_as_ray_serve(
    bento_server: str,
    ray_serve_answers: list[dict],
    setup: dict,
    expected: list[dict],
    wait_until,
) -> None:
    """`bentoml serve` of the exported bento and `liftgate serve` (Ray Serve) over the same
    home and configuration: the same ranked actions, scores and intervals (to 1e-9), choice
    and model version for every request; both as the in-process stages too."""
    assert wait_until(lambda: _ready(bento_server), timeout_s=120), "bentoml serve not ready"
    with httpx.Client(base_url=bento_server, timeout=30) as client:
        answers = answers_over_http(client, setup["customers"])
        bad = client.post("/v1/decide", json={"customer_id": "c1", "candidates": ["nope"]})
    for bento, ray, reference in zip(answers, ray_serve_answers, expected, strict=True):
        assert_same_answer(bento, ray)
        assert_same_answer(bento, reference)
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "candidates", 0]
