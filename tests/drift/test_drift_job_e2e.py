"""`drift run` end to end: a model trained and registered in MLflow (SQLite under a temporary
LIFTGATE_HOME), decisions served in-process by a DecisionService and logged to Parquet, then
the job compares them with the version's training profile.

Phase 1 serves 1 000 customers drawn uniformly (as the training log), phase 2 serves 1 000
drawn with the covariate-drift tilt of the world (lapsed, Android, discount seekers).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from configs.loader import load_config
from drift.job import InsufficientData, run_drift_job
from experiments.logs.schema import DecisionRecord
from experiments.logs.writer import LogWriter
from liftgate.app.cli.main import app
from liftgate.core.catalogue import ActionCatalogue
from liftgate.core.contract import FeatureContract
from liftgate.core.home import HOME_ENV, Home
from liftgate.core.scoring import score_actions
from liftgate.sim.world import World
from liftgate.sim.world.customers import arrival_weights
from registry.client import ModelRegistry
from registry.pipeline import train_and_register
from serving.api_models import DecideRequest
from serving.decision_ids import DecisionIds
from serving.online_store import OnlineStore
from serving.service import DecisionService, ServedModel

pytestmark = pytest.mark.slow
CONFIG = load_config()
PHASE_ROWS = 1_000


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> dict:
    home = Home(tmp_path_factory.mktemp("home")).ensure()
    world = World(seed=5, n_customers=4_000)
    world.write(home.worlds / "w", rows=30_000)
    registry = ModelRegistry(home, CONFIG.models.registry)
    summary = train_and_register(home.worlds / "w", CONFIG, registry)
    assert summary["aliases"] == ["champion"]
    loaded = registry.load(summary["model"], "champion")
    catalogue = ActionCatalogue(CONFIG.actions)
    store = OnlineStore(
        pa.Table.from_pandas(world.customers, preserve_index=False),
        FeatureContract(CONFIG.features),
        catalogue,
    )
    served_model = ServedModel(loaded.name, loaded.version, "champion")

    async def fetch(customer_id, context):
        return store.lookup(customer_id, context)

    async def score(features, codes, model_ref=None):
        return score_actions(loaded.model, features, codes, catalogue.costs), served_model

    service = DecisionService(
        contract=store.contract,
        catalogue=catalogue,
        fetch=fetch,
        score=score,
        model_name=loaded.name,
        model_alias="champion",
        epsilon=0.1,
        scoring_budget_s=5.0,
        decision_log=LogWriter(home.decision_log, DecisionRecord),
        outcome_log=None,
        outcome_ledger=None,
        decision_ids=DecisionIds(b"drift test key"),
        consent=lambda customer_id: frozenset({"email", "push"}),
    )
    rng = np.random.default_rng(0)
    ids = world.customers["customer_id"].to_numpy()
    tilted = arrival_weights(world.customers, 1.0)

    async def serve(customers) -> None:
        for customer_id in customers:
            await service.decide(DecideRequest(customer_id=str(customer_id)), "t" * 32)

    asyncio.run(serve(rng.choice(ids, PHASE_ROWS)))
    service.decision_log.flush()
    between = dt.datetime.now(dt.UTC)
    asyncio.run(serve(rng.choice(ids, PHASE_ROWS, p=tilted)))
    service.close()
    return {"home": home, "version": loaded.version, "between": between}


def test_stationary_traffic_shows_no_drift(served: dict) -> None:
    home = served["home"]
    result = run_drift_job(home, CONFIG, "champion", "1000 rows", now=served["between"])
    print(
        f"\nstationary traffic: drift share {result.drift_share:.2f}, prediction "
        f"{result.prediction_drift.method} {result.prediction_drift.statistic:.3f}"
    )
    assert result.model == {
        "name": "liftgate-scorer",
        "version": served["version"],
        "alias": "champion",
    }
    assert result.rows == PHASE_ROWS and result.reference_rows == 20_000
    assert not result.dataset_drift and not result.prediction_drift.drifted
    assert set(result.columns) == set(FeatureContract(CONFIG.features).names)
    report = Path(result.html)
    assert report.name == "report.html" and report.parent.parent == home.root / "drift"
    assert report.stat().st_size > 100_000
    summary = json.loads((report.parent / "summary.json").read_text())
    assert summary["dataset_drift"] is False and summary["html"] == str(report)
    # the served action's probability differs from the training log's by design
    chosen = run_drift_job(
        home,
        CONFIG,
        "champion",
        "1000 rows",
        now=served["between"],
        prediction_action="chosen",
        html=False,
    )
    print(
        f"stationary traffic, prediction of the chosen action: "
        f"{chosen.prediction_drift.statistic:.3f} (drifted: {chosen.prediction_drift.drifted})"
    )
    assert chosen.html is None and not chosen.dataset_drift


def test_tilted_traffic_is_flagged(served: dict) -> None:
    result = run_drift_job(served["home"], CONFIG, "champion", "1000 rows", html=False)
    print(f"\ntilted traffic: drift share {result.drift_share:.2f}, {result.drifted_columns}")
    assert result.dataset_drift and result.drift_share >= 0.5
    assert {"recency_days", "device", "discount_affinity"} <= set(result.drifted_columns)


def test_too_few_decisions_and_unknown_alias(served: dict) -> None:
    with pytest.raises(InsufficientData, match="at least 500"):
        run_drift_job(served["home"], CONFIG, window="100 rows", html=False)
    from registry.errors import RegistryError

    with pytest.raises(RegistryError, match="no 'challenger' alias"):
        run_drift_job(served["home"], CONFIG, "challenger", html=False)


def test_command_line(served: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HOME_ENV, str(served["home"].root))
    runner = CliRunner()
    result = runner.invoke(app, ["drift", "run", "--window", "1h", "--no-html", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["rows"] == 2 * PHASE_ROWS and document["window"]["kind"] == "time"
    assert document["html"] is None and document["model"]["alias"] == "champion"
    assert {"drifted", "statistic", "p_value", "method"} <= set(document["prediction_drift"])
    text = runner.invoke(app, ["drift", "run", "--window", "1000 rows", "--no-html"])
    assert text.exit_code == 0, text.output
    assert "  dataset drift: yes — " in text.stdout and "at or above the 50 % threshold" in (
        text.stdout
    )
    failing = runner.invoke(
        app, ["drift", "run", "--window", "1000", "--no-html", "--fail-on-drift"]
    )
    assert failing.exit_code == 1
    missing = runner.invoke(app, ["drift", "run", "--model-ref", "challenger"])
    assert missing.exit_code == 2 and "no 'challenger' alias" in missing.stderr
    few = runner.invoke(app, ["drift", "run", "--window", "10 rows", "--no-html"])
    assert few.exit_code == 2 and "at least 500" in few.stderr
