"""Shared pieces of the serving tests: a small world, a real trained scoring model, and a
DecisionService wired to in-process stages (no Ray, no MLflow)."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pyarrow as pa
import pytest

from configs.loader import load_config
from configs.schema import ChannelName
from experiments.logs.schema import DecisionRecord, OutcomeRecord
from experiments.logs.writer import LogWriter
from liftgate.core.catalogue import ActionCatalogue
from liftgate.core.contract import FeatureContract
from liftgate.core.home import Home
from liftgate.core.scoring import score_actions
from liftgate.sim.world import World
from registry.training import train_scorer
from serving.decision_ids import DecisionIds
from serving.online_store import OnlineStore
from serving.outcome_ledger import OutcomeLedger
from serving.service import DecisionService, ServedModel

CONFIG = load_config()
#: Every contact channel granted: the consent of a customer who agreed to everything.
EVERY_CHANNEL = frozenset(get_args(ChannelName)) - {"none"}


def consented_to_everything(customer_id: str) -> frozenset[str]:
    return EVERY_CHANNEL


@pytest.fixture(scope="session")
def world() -> World:
    return World(seed=11, n_customers=3_000)


@pytest.fixture(scope="session")
def scoring_model(world: World):
    return train_scorer(world.logged(rows=30_000), CONFIG, seed=0).model


@pytest.fixture(scope="session")
def store(world: World) -> OnlineStore:
    return OnlineStore(
        pa.Table.from_pandas(world.customers, preserve_index=False),
        FeatureContract(CONFIG.features),
        ActionCatalogue(CONFIG.actions),
    )


@pytest.fixture(scope="session")
def device_store(world: World) -> OnlineStore:
    """The store over a contract that marks `device` as known at request time (source:
    request): a decide request's context may set it, and only it."""
    config = CONFIG.features
    features = [
        f.model_copy(update={"source": "request"}) if f.name == "device" else f
        for f in config.features
    ]
    return OnlineStore(
        pa.Table.from_pandas(world.customers, preserve_index=False),
        FeatureContract(config.model_copy(update={"features": features})),
        ActionCatalogue(CONFIG.actions),
    )


class LocalStages:
    """In-process stages whose failures tests can switch on."""

    def __init__(self, store: OnlineStore, model):
        self.store = store
        self.model = model
        self.costs = store.catalogue.costs
        self.fail_fetch = False
        self.score_delay_s = 0.0

    async def fetch(self, customer_id, context):
        if self.fail_fetch:
            raise OSError("feature store down")
        return self.store.lookup(customer_id, context)

    async def score(self, features, codes, model_ref=None):
        import asyncio

        from serving.service import ModelUnavailable

        if self.model is None:
            raise ModelUnavailable("no model")
        if self.score_delay_s:  # a slow model: the delay is what the budget tests exercise
            await asyncio.sleep(self.score_delay_s)
        return score_actions(self.model, features, codes, self.costs), ServedModel(
            "liftgate-scorer", "7", "champion"
        )


@pytest.fixture
def stages(store, scoring_model) -> LocalStages:
    return LocalStages(store, scoring_model)


@pytest.fixture
def make_service(stages: LocalStages, tmp_path: Path):
    services = []

    def make(**overrides) -> DecisionService:
        options = dict(
            contract=stages.store.contract,
            catalogue=stages.store.catalogue,
            fetch=stages.fetch,
            score=stages.score,
            model_name="liftgate-scorer",
            model_alias="champion",
            epsilon=0.1,
            scoring_budget_s=0.05,
            decision_log=LogWriter(Home(tmp_path).decision_log, DecisionRecord),
            outcome_log=LogWriter(Home(tmp_path).outcome_log, OutcomeRecord),
            outcome_ledger=OutcomeLedger(Home(tmp_path).outcome_ledger),
            decision_ids=DecisionIds(b"test key"),
            consent=consented_to_everything,
            remote_scoring=True,  # the slow-scoring test awaits; a remote stage is cut
        )
        service = DecisionService(**{**options, **overrides})
        services.append(service)
        return service

    yield make
    for service in services:
        service.close()
