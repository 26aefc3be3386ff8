"""A/B and A/A experiments through the served decision graph, against the world's truth.

The service runs in-process (the same classes as the Ray Serve replicas) with a real
MLflow registry; outcomes are drawn from the synthetic world's true conversion
probabilities and reported through /v1/outcomes; the analysis reads the Parquet logs.
"""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from configs.loader import load_config
from configs.schema import ExperimentConfig
from experiments import state
from experiments.logs.reader import read_decisions, read_outcomes
from experiments.stats.aggregate import MetricSpec
from experiments.stats.analysis import analyze
from experiments.units import experiment_units
from liftgate.core.home import Home
from liftgate.sim.world import World, stock_home
from registry.client import ModelRegistry
from registry.pipeline import train_and_register
from serving.local import create_local_app

pytestmark = pytest.mark.slow
CONFIG = load_config()
CONVERSION = MetricSpec("conversion", "converted", "binomial")


def ab_config(name: str, control: list[str], treatment: list[str]) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {
            "name": name,
            "arms": [
                {"name": "control", "weight": 0.5, "actions": control},
                {"name": "treatment", "weight": 0.5, "actions": treatment},
            ],
            "primary_metric": {"name": "conversion", "kind": "binomial", "column": "converted"},
        }
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory, key_headers):
    home = Home(tmp_path_factory.mktemp("home")).ensure()
    world = World(seed=21, n_customers=12_000)
    world.write(home.worlds / "w", rows=30_000)
    train_and_register(home.worlds / "w", CONFIG, ModelRegistry(home, CONFIG.models.registry))
    stock_home(home, home.worlds / "w")
    with TestClient(create_local_app(CONFIG, home), headers=key_headers(home)) as client:
        yield home, world, client


def emailable(world: World):
    """The customers who consented to e-mail: the only ones an e-mail arm may reach, so the
    effect these experiments estimate is the effect among them."""
    return world.customers[world.customers["email_opt_in"]]


def run_experiment(home, world, client, config, customers, seed, wait_until):
    state.start(home, config)
    service = client.app.state.service

    def picked_up() -> bool:
        return [e.config.name for e in service.experiments().running] == [config.name]

    assert wait_until(picked_up, timeout_s=10), "the service did not pick up the experiment"
    rng = np.random.default_rng(seed)
    truth = world.conversion_probability(customers)
    index = world.catalogue.index
    for i, customer_id in enumerate(customers["customer_id"]):
        answer = client.post("/v1/decide", json={"customer_id": customer_id}).json()
        assert answer["experiment"] == config.name
        if rng.random() < truth[i, index[answer["chosen"]]]:
            outcome = {"decision_id": answer["decision_id"], "event": "conversion"}
            assert client.post("/v1/outcomes", json=outcome).status_code == 200
    state.stop(home, config.name)
    service.decision_log.flush()
    service.outcome_log.flush()
    units = experiment_units(
        read_decisions(home.decision_log),
        read_outcomes(home.outcome_log),
        config.name,
        window_s=config.attribution_window_hours * 3600,
    )
    return units, truth


def test_ab_interval_covers_the_true_effect(served, wait_until) -> None:
    home, world, client = served
    customers = emailable(world).iloc[:4_000]
    config = ab_config("ab", ["no_action"], ["email_20"])
    units, truth = run_experiment(
        home, world, client, config, customers, seed=1, wait_until=wait_until
    )
    assert units.num_rows == len(customers)
    k = world.catalogue.index
    true_effect = float(np.mean(truth[:, k["email_20"]] - truth[:, k["no_action"]]))
    for method in ("frequentist", "sequential"):
        result = analyze(units, "arm", "control", [CONVERSION], method=method)["results"][0]
        assert result["abs"]["ci_low"] <= true_effect <= result["abs"]["ci_high"], method
    frequentist = analyze(units, "arm", "control", [CONVERSION])
    assert frequentist["results"][0]["abs"]["p_value"] < 0.05  # the effect is large
    assert not frequentist["srm"]["flag"]


def test_aa_reports_no_significant_difference(served, wait_until) -> None:
    home, world, client = served
    customers = emailable(world).iloc[4_000:8_000]
    config = ab_config("aa", ["email_10"], ["email_10"])
    units, _ = run_experiment(home, world, client, config, customers, seed=2, wait_until=wait_until)
    result = analyze(units, "arm", "control", [CONVERSION])
    assert result["results"][0]["abs"]["p_value"] > 0.05
    assert not result["srm"]["flag"]
