"""One model version's decision service, self-contained in a directory: what a bento serves.

`write_bundle` puts in a directory everything `/v1/decide` needs without LIFTGATE_HOME or
the registry: the scoring model (both LightGBM boosters in LightGBM's text format and the
metadata, as `ScoringModel.save_companions` writes them), the configuration directory
(contract, catalogue, serving settings) and a snapshot of the embedded online store (with
`online_store: kind: redis` no snapshot: the bento reads that server). `open_bundle`
builds the same `DecisionService`, with the same `score_actions` and `OnlineStore`, that
Ray Serve runs, so the ranked list, its scores, the greedy choice and the model version
are those of `liftgate serve` for the same version and customers.

Left out, because they live in the home's state: experiments and bandits (no router),
the canary split, outcomes (no ledger) and the offers index. Consent is read from a
consent store given by path (`consent_db`); without one, nobody has consent (fail closed,
as a replica before anyone wrote consent). Decisions are logged only to a directory given
(`decision_log`).

>>> from liftgate.core.vocabulary import CHAMPION
>>> BundleInfo("scorer", "3", CHAMPION).to_dict()
{'model_name': 'scorer', 'model_version': '3', 'model_alias': 'champion'}
"""

from __future__ import annotations

import dataclasses
import secrets
import shutil
from pathlib import Path

import lightgbm as lgb

from configs.loader import LiftgateConfig, load_config
from experiments.logs.schema import DecisionRecord
from liftgate.core.catalogue import ActionCatalogue
from liftgate.core.contract import FeatureContract
from liftgate.core.home import Home
from liftgate.core.model import ScoringModel
from liftgate.core.scoring import score_actions
from liftgate.governance.consent import ConsentStore
from serving.components import open_log
from serving.decision_ids import DecisionIds
from serving.feature_stores import open_online_store
from serving.metrics import ServingMetrics
from serving.service import ConsentLookup, DecisionService, ServedModel

MODEL_DIR = "model"
CONVERSION_FILE = "conversion.txt"  # the registered booster; the companions sit beside it
CONFIG_DIR = "config"
CUSTOMERS_FILE = "customers.parquet"


@dataclasses.dataclass(frozen=True)
class BundleInfo:
    """Which version a bundle serves; kept as the BentoML model's metadata."""

    model_name: str
    model_version: str
    model_alias: str

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


def write_bundle(
    directory: Path, model: ScoringModel, config_dir: Path, customers: Path | None
) -> None:
    """Write the model, the configuration and the customers snapshot (None: the store is
    a server the configuration names) into `directory`."""
    model_dir = model.save_companions(directory / MODEL_DIR)
    model.conversion.save_model(model_dir / CONVERSION_FILE)
    shutil.copytree(config_dir, directory / CONFIG_DIR)
    if customers is not None:
        shutil.copyfile(customers, directory / CUSTOMERS_FILE)


def bundle_config(directory: Path) -> LiftgateConfig:
    """The bundle's configuration, its embedded store the snapshot."""
    config = load_config(directory / CONFIG_DIR)
    if config.serving.online_store.kind == "redis":
        return config
    serving = config.serving.model_copy(update={"customers_path": str(directory / CUSTOMERS_FILE)})
    return dataclasses.replace(config, serving=serving)


def read_model(directory: Path) -> ScoringModel:
    model_dir = directory / MODEL_DIR
    conversion = lgb.Booster(model_file=str(model_dir / CONVERSION_FILE))
    return ScoringModel.from_companions(conversion, model_dir)


def consent_of(catalogue: ActionCatalogue, consent_db: Path | None) -> ConsentLookup:
    """The consent store's answer, or nobody's consent without one (fail closed)."""
    if consent_db is None or not any(catalogue.consent_channels):
        return lambda customer_id: frozenset()
    return ConsentStore.reader(consent_db).granted_channels


def open_bundle(
    directory: Path,
    info: BundleInfo,
    consent_db: Path | None = None,
    decision_log: Path | None = None,
) -> DecisionService:
    """The decision service of a bundle, its stages in this process."""
    config = bundle_config(directory)
    contract = FeatureContract(config.features)
    catalogue = ActionCatalogue(config.actions)
    model = read_model(directory)
    # The home is not read: the snapshot's path is in the configuration, or the store is Redis.
    store = open_online_store(config, Home(directory), contract, catalogue)
    served = ServedModel(info.model_name, info.model_version, info.model_alias)
    settings = config.serving
    metrics = ServingMetrics()

    async def fetch(customer_id: str, context: dict | None):
        return store.lookup(customer_id, context)

    async def score(features, codes, model_ref: str | None):
        # One version, no experiments or canary: every reference is this bundle's model.
        return score_actions(model, features, codes, catalogue.costs), served

    log = None
    if decision_log is not None:
        log = open_log(settings.decision_log, metrics, decision_log, DecisionRecord)
    return DecisionService(
        contract=contract,
        catalogue=catalogue,
        fetch=fetch,
        score=score,
        model_name=info.model_name,
        model_alias=info.model_alias,
        epsilon=settings.epsilon,
        scoring_budget_s=settings.scoring_budget_ms / 1000,
        decision_log=log,
        outcome_log=None,
        outcome_ledger=None,
        # Outcomes are not taken here, so no one checks an id's MAC: a key of the process's own.
        decision_ids=DecisionIds(secrets.token_bytes(32)),
        consent=consent_of(catalogue, consent_db),
        metrics=metrics,
        max_candidates=settings.max_candidates,
    )
