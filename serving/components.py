"""The in-process stages of the decision service and how they load.

Models and features load in a background thread that retries, so a replica comes up (and
answers from the fallback, not-ready) even while the registry or the store is down, and
picks up a new champion when the registry alias moves.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from configs.loader import LiftgateConfig
from configs.schema import DecisionLogSettings
from experiments.canary import CanarySplit
from experiments.canary_state import read_split
from experiments.logs.schema import ActionRecord, DecisionRecord, EventRecord, OutcomeRecord
from experiments.logs.writer import LogWriter
from experiments.router import ExperimentRouter
from experiments.state import read_state, router_from_state
from liftgate.core.catalogue import ActionCatalogue
from liftgate.core.contract import FeatureContract
from liftgate.core.home import Home
from liftgate.core.jsonstate import UnreadableDocument
from liftgate.core.scoring import Scores, score_actions
from liftgate.governance.consent import ConsentStore
from liftgate.governance.offers import OfferIndex
from serving.actions import ActionService
from serving.arm_policies import ArmPolicies, default_providers
from serving.decision_ids import DecisionIds
from serving.events import EventService
from serving.feature_stores import open_online_store
from serving.metrics import ServingMetrics
from serving.online_store import FeatureLookup, OnlineStore
from serving.outcome_ledger import OutcomeLedger
from serving.outcome_rules import OutcomeRules
from serving.redis_store import RedisOnlineStore

if TYPE_CHECKING:
    from registry.client import LoadedScorer
from serving.service import (
    NO_EXPERIMENTS,
    ConsentLookup,
    DecisionService,
    ModelUnavailable,
    ServedModel,
)

logger = logging.getLogger(__name__)

#: How long a replica waits for its model and features before it takes traffic anyway
#: (answering from the fallback): long enough for a cold start on a loaded machine.
READY_WAIT_S = 120.0
POLL_S = 1.0  # experiment state
REFRESH_S = 10.0  # registry aliases


class Components:
    """Feature store, scoring models and running experiments of one replica, (re)loaded in
    the background: experiments when their state file changes (within a second), models
    when an alias they are served by moves (within REFRESH_S)."""

    def __init__(
        self,
        config: LiftgateConfig,
        home: Home,
        metrics: ServingMetrics,
        load_store: bool = True,
        load_model: bool = True,
        watch_canary: bool = True,
    ):
        self.load_store = load_store
        self.watch_canary = watch_canary
        self.load_model = load_model
        self.config = config
        self.home = home
        self.metrics = metrics
        self.contract = FeatureContract(config.features)
        self.catalogue = ActionCatalogue(config.actions)
        self._warm_up_row, _ = self.contract.transform_row({})
        self._all_codes = np.arange(len(self.catalogue))
        self.store: OnlineStore | RedisOnlineStore | None = None
        self.models: dict[str, LoadedScorer] = {}  # by registry reference: alias or version
        self.router = NO_EXPERIMENTS
        self.arm_policies = ArmPolicies()  # the ingress's: see build_service
        self.split: CanarySplit | None = None
        self.split_revision = 0
        self._split_mtime: float | None = None
        self._models_stale = False
        self._state_mtime: float | None = None
        self._models_checked = 0.0
        self._registry = None
        self._stop = threading.Event()
        self._wake = threading.Event()  # set by stop and by a new canary split
        self._loaded = threading.Event()
        self._loader = threading.Thread(target=self._load_loop, daemon=True, name="loader")

    @property
    def default_model(self) -> str:
        return self.config.serving.model_alias

    def start(self, wait_s: float = 0.0) -> Components:
        self._loader.start()
        if self._loaded.wait(wait_s):
            # The libraries and the model are long-lived: move them out of the garbage
            # collector's reach, so collections triggered by requests stay small
            # (a full collection over MLflow, pandas and scikit-learn takes milliseconds).
            gc.collect()
            gc.freeze()
        return self

    def _refresh_experiments(self) -> bool:
        path = self.home.experiment_state
        mtime = path.stat().st_mtime if path.exists() else None
        if mtime == self._state_mtime:
            return False
        self.router = router_from_state(read_state(self.home))
        self._state_mtime = mtime
        logger.info("experiments: %s", [e.config.name for e in self.router.running])
        return True

    def set_canary(self, split: CanarySplit | None, revision: int) -> None:
        """Serve this rollout split from now on (a Ray Serve `reconfigure`, or the file)."""
        if revision == self.split_revision:
            return
        self.split, self.split_revision = split, revision
        self._models_stale = True  # load the challenger before its first request, if new
        self._wake.set()
        logger.info("canary: %s (revision %d)", split, revision)

    def canary(self) -> CanarySplit | None:
        return self.split

    def _refresh_canary(self) -> None:
        path = self.home.serving_weights
        mtime = path.stat().st_mtime if path.exists() else None
        if mtime != self._split_mtime:
            self._split_mtime = mtime
            try:
                self.set_canary(*read_split(self.home))
            except UnreadableDocument as exc:  # until the next write replaces the file
                logger.error("%s; keeping the canary split applied", exc)

    def _needed_models(self) -> set[str]:
        arms = (arm for e in self.router.running for arm in e.config.arms)
        canary = {self.split.challenger} if self.split else set()
        return {self.default_model, *canary, *(arm.model for arm in arms if arm.model)}

    def _refresh_models(self) -> None:
        from registry.client import LoadedScorer, ModelRegistry  # MLflow only where used

        if self._registry is None:
            self._registry = ModelRegistry(self.home, self.config.models.registry)
        name = self.config.models.scorer.name
        problems = []
        for ref in sorted(self._needed_models()):
            version = ref if ref.isdigit() else self._registry.alias_version(name, ref)
            if version is None:
                problems.append(f"{name} has no {ref!r} alias")
                continue
            current = self.models.get(ref)
            if current is None or current.version != version:
                loaded = self._registry.load(name, version=version)
                # One prediction before traffic: LightGBM's first call allocates buffers.
                score_actions(
                    loaded.model, self._warm_up_row, self._all_codes, self.catalogue.costs
                )
                self.models[ref] = LoadedScorer(loaded.name, loaded.version, ref, loaded.model)
                logger.info("serving %s v%s as %s", name, version, ref)
        self.metrics.model_info.clear()
        for ref, loaded in self.models.items():
            self.metrics.model_info.labels(name, loaded.version, ref).set(1)
        self._models_checked = time.monotonic()
        self._models_stale = False
        if problems:
            raise ModelUnavailable("; ".join(problems))

    def _load_once(self) -> None:
        if self.load_store and self.store is None:
            self.store = open_online_store(self.config, self.home, self.contract, self.catalogue)
            logger.info("online store loaded: %d customers", self.store.size)
        experiments_changed = self._refresh_experiments()
        self.arm_policies.refresh(self.router)
        if self.watch_canary:
            self._refresh_canary()
        if self.load_model and (
            experiments_changed
            or self._models_stale
            or self.default_model not in self.models
            or time.monotonic() - self._models_checked > REFRESH_S
        ):
            self._refresh_models()

    def _load_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self._load_once()
            except Exception as exc:  # keep serving (fallback for what is missing); retry
                logger.warning("loading models/features/experiments failed: %s", exc)
            if all(self.ready().values()):
                self._loaded.set()
            self._wake.wait(POLL_S)

    def ready(self) -> dict[str, bool]:
        parts = {}
        if self.load_model:
            parts["models"] = self.default_model in self.models
        if self.load_store:
            parts["features"] = self.store is not None
        return parts

    async def async_ready(self) -> dict[str, bool]:
        return self.ready()

    def experiments(self) -> ExperimentRouter:
        return self.router

    async def fetch(self, customer_id: str, context: dict | None) -> FeatureLookup:
        if self.store is None:
            raise RuntimeError("online store not loaded")
        return self.store.lookup(customer_id, context)

    async def score(
        self, features: np.ndarray, codes: np.ndarray, model_ref: str | None = None
    ) -> tuple[Scores, ServedModel]:
        loaded = self.models.get(model_ref or self.default_model)
        if loaded is None:
            raise ModelUnavailable(f"model {model_ref or self.default_model!r} not loaded")
        # Inline: a few rows of LightGBM take ~0.1 ms; a thread hop costs more than that
        # under load. The service checks the time budget when scoring returns.
        scores = score_actions(loaded.model, features, codes, self.catalogue.costs)
        return scores, ServedModel(loaded.name, loaded.version, loaded.alias)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()


def loading_problem(config: LiftgateConfig, home: Home) -> Exception | None:
    """What a replica's loader fails on, found by loading once in this process (None: it
    loads): what a start that never became ready reports (liftgate.app.runner)."""
    components = Components(config, home, ServingMetrics(), watch_canary=False)
    try:
        components._load_once()
    except Exception as exc:  # the loader's own failure, whatever it is, is the answer
        return exc
    finally:
        components.close()
    return None


def open_log(
    settings: DecisionLogSettings, metrics: ServingMetrics, directory: Path, record_type: type
) -> LogWriter:
    """A started log writer with the settings of serving.yaml ``decision_log``, its
    failures and buffered rows in `metrics` (labelled by the directory's name). Starting
    it converts what a crashed replica left."""
    name = directory.name
    writer = LogWriter(
        directory,
        record_type,
        max_rows=settings.max_rows,
        max_age_s=settings.max_age_s,
        fsync=settings.fsync,
        group_commit_ms=settings.group_commit_ms,
        max_buffered_rows=settings.max_buffered_rows,
        on_failure=lambda kind: metrics.log_failures.labels(name, kind).inc(),
    )
    metrics.log_buffered_rows.labels(name).set_function(lambda: writer.buffered_rows)
    return writer.start()


def consent_lookup(catalogue: ActionCatalogue, home: Home) -> ConsentLookup:
    """Each decision's read of the consent store; no read when no action of the catalogue
    needs consent (`consent: not_required` on every channel): no answer could change an offer.

    >>> from configs.loader import load_config
    >>> from configs.schema import ChannelPolicy
    >>> actions = load_config().actions
    >>> free = {c: ChannelPolicy(consent="not_required") for c in ("email", "push")}
    >>> catalogue = ActionCatalogue(actions.model_copy(update={"channels": free}))
    >>> consent_lookup(catalogue, Home(Path("/nonexistent")))("c1")
    frozenset()
    """
    if not any(catalogue.consent_channels):
        return lambda customer_id: frozenset()
    return ConsentStore.reader(home.consent).granted_channels


def build_service(
    config: LiftgateConfig,
    home: Home,
    stages=None,
    wait_s: float = READY_WAIT_S,
    watch_canary: bool = True,
    clock: Callable[[], dt.datetime] | None = None,
) -> tuple[DecisionService, Components]:
    """A DecisionService whose stages run in this process, or remotely through `stages`
    (an object with async `fetch`, `score` and `ready`, e.g. Ray Serve handles).

    Without `watch_canary` the rollout split comes only through `Components.set_canary`
    (Ray Serve's `reconfigure`); with it, from the serving weights file."""
    metrics = ServingMetrics()
    local = stages is None
    components = Components(
        config, home, metrics, load_store=local, load_model=local, watch_canary=watch_canary
    )
    components.arm_policies = ArmPolicies(default_providers(config, home))  # allocation
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
        decision_log=open_log(settings.decision_log, metrics, home.decision_log, DecisionRecord),
        outcome_log=open_log(settings.decision_log, metrics, home.outcome_log, OutcomeRecord),
        outcome_ledger=OutcomeLedger(home.outcome_ledger),
        decision_ids=DecisionIds.for_home(home),
        consent=consent_lookup(components.catalogue, home),
        metrics=metrics,
        max_candidates=settings.max_candidates,
        ready=stages.async_ready,
        experiments=components.experiments,
        arm_policies=components.arm_policies.get,
        canary=components.canary,
        remote_scoring=not local,
        outcome_rules=OutcomeRules(settings.outcomes),
        offers=OfferIndex.writer(home.offers),
        clock=clock,
    )
    return service, components


def build_action_service(
    config: LiftgateConfig,
    home: Home,
    metrics: ServingMetrics,
    clock: Callable[[], dt.datetime] | None = None,
) -> ActionService:
    """The replica's `ActionService` (POST /v1/actions), its action log opened like the
    decision log and counted in `metrics` (the decision service's: one /metrics)."""
    log = open_log(config.serving.decision_log, metrics, home.action_log, ActionRecord)
    return ActionService.for_home(config, home, metrics, log, clock)


def build_event_service(
    config: LiftgateConfig,
    home: Home,
    metrics: ServingMetrics,
    clock: Callable[[], dt.datetime] | None = None,
) -> EventService:
    """The replica's `EventService` (POST /v1/events), its event log opened like the
    decision log and counted in `metrics` (the decision service's: one /metrics)."""
    log = open_log(config.serving.decision_log, metrics, home.event_log, EventRecord)
    return EventService.for_home(config, home, metrics, log, clock)
