"""The in-process stages of the decision service and how they load.

Models and features load in a background thread that retries, so a replica comes up (and
answers from the fallback, not-ready) even while the registry or the store is down, and
picks up a new champion when the registry alias moves.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from configs.loader import LiftgateConfig
from experiments.logs import (
    DECISION_SCHEMA,
    OUTCOME_SCHEMA,
    LogWriter,
    decision_log_dir,
    outcome_log_dir,
)
from liftgate.catalogue import ActionCatalogue
from liftgate.contract import FeatureContract
from liftgate.home import Home
from serving.metrics import ServingMetrics
from serving.online_store import FeatureLookup, OnlineStore
from serving.scoring import Scores, score_actions
from serving.service import DecisionService, ModelUnavailable, ServedModel

logger = logging.getLogger(__name__)

REFRESH_S = 10.0


def customers_path(config: LiftgateConfig, home: Home) -> Path:
    configured = config.serving.customers_path
    return Path(configured) if configured else home.root / "online_store" / "customers.parquet"


class Components:
    """Feature store and scoring model of one replica, (re)loaded in the background."""

    def __init__(
        self,
        config: LiftgateConfig,
        home: Home,
        metrics: ServingMetrics,
        load_store: bool = True,
        load_model: bool = True,
    ):
        self.load_store = load_store
        self.load_model = load_model
        self.config = config
        self.home = home
        self.metrics = metrics
        self.contract = FeatureContract(config.features)
        self.catalogue = ActionCatalogue(config.actions)
        self.store: OnlineStore | None = None
        self.model = None  # registry.client.LoadedScorer
        self._registry = None
        self._stop = threading.Event()
        self._loaded = threading.Event()
        # One worker: scoring is single-threaded LightGBM; the thread only lets the event loop
        # enforce the time budget.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scoring")
        self._loader = threading.Thread(target=self._load_loop, daemon=True, name="loader")

    def start(self, wait_s: float = 0.0) -> Components:
        self._loader.start()
        self._loaded.wait(wait_s)
        return self

    def _load_once(self) -> None:
        if self.load_store and self.store is None:
            self.store = OnlineStore.from_parquet(
                customers_path(self.config, self.home), self.contract, self.catalogue
            )
            logger.info("online store loaded: %d customers", self.store.size)
        if self.load_model:
            self._refresh_model()

    def _refresh_model(self) -> None:
        from registry.client import ModelRegistry  # MLflow is imported only where used

        if self._registry is None:
            self._registry = ModelRegistry(self.home, self.config.models.registry)
        name, alias = self.config.models.scorer.name, self.config.serving.model_alias
        version = self._registry.alias_version(name, alias)
        if version is None:
            raise ModelUnavailable(f"{name} has no {alias!r} alias")
        if self.model is None or self.model.version != version:
            loaded = self._registry.load(name, version=version)
            self.model = type(loaded)(loaded.name, loaded.version, alias, loaded.model)
            self.metrics.model_info.clear()
            self.metrics.model_info.labels(name, version, alias).set(1)
            logger.info("serving %s v%s (%s)", name, version, alias)

    def _load_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._load_once()
                self._loaded.set()
            except Exception as exc:  # keep serving from the fallback; retry
                logger.warning("loading models/features failed: %s", exc)
            self._stop.wait(REFRESH_S if all(self.ready().values()) else 1.0)

    def ready(self) -> dict[str, bool]:
        parts = {}
        if self.load_model:
            parts["models"] = self.model is not None
        if self.load_store:
            parts["features"] = self.store is not None
        return parts

    async def async_ready(self) -> dict[str, bool]:
        return self.ready()

    async def fetch(self, customer_id: str, context: dict | None) -> FeatureLookup:
        if self.store is None:
            raise RuntimeError("online store not loaded")
        return self.store.lookup(customer_id, context)

    async def score(self, features: np.ndarray, codes: np.ndarray) -> tuple[Scores, ServedModel]:
        loaded = self.model
        if loaded is None:
            raise ModelUnavailable("no model loaded")
        scores = await asyncio.get_running_loop().run_in_executor(
            self._pool, score_actions, loaded.model, features, codes, self.catalogue.costs
        )
        return scores, ServedModel(loaded.name, loaded.version, loaded.alias)

    def close(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=False)


def build_service(
    config: LiftgateConfig, home: Home, stages=None, wait_s: float = 30.0
) -> tuple[DecisionService, Components]:
    """A DecisionService whose stages run in this process, or remotely through `stages`
    (an object with async `fetch`, `score` and `ready`, e.g. Ray Serve handles)."""
    metrics = ServingMetrics()
    local = stages is None
    components = Components(config, home, metrics, load_store=local, load_model=local)
    components.start(wait_s)
    stages = stages or components
    settings = config.serving
    service = DecisionService(
        contract=components.contract,
        catalogue=components.catalogue,
        fetch=stages.fetch,
        score=stages.score,
        model_name=config.models.scorer.name,
        model_alias=settings.model_alias,
        epsilon=settings.epsilon,
        scoring_budget_s=settings.scoring_budget_ms / 1000,
        decision_log=LogWriter(
            decision_log_dir(home.root),
            DECISION_SCHEMA,
            max_rows=settings.decision_log.max_rows,
            max_age_s=settings.decision_log.max_age_s,
        ).start(),
        outcome_log=LogWriter(
            outcome_log_dir(home.root),
            OUTCOME_SCHEMA,
            max_rows=settings.decision_log.max_rows,
            max_age_s=settings.decision_log.max_age_s,
        ).start(),
        decision_log_dir=decision_log_dir(home.root),
        metrics=metrics,
        max_candidates=settings.max_candidates,
        ready=stages.async_ready,
    )
    return service, components
