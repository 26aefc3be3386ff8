"""`liftgate train`: fit, log, register, gate, alias — the training side of the loop."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
from sklearn.metrics import roc_auc_score

from configs.loader import LiftgateConfig
from liftgate.core.audit import current_user
from liftgate.core.errors import InputError
from liftgate.core.tables import table_format
from liftgate.core.vocabulary import CHALLENGER, CHAMPION, TAG_DATA_FINGERPRINT
from registry.client import ModelRegistry, RegistryError, gate_tags
from registry.gate import evaluate_gate
from registry.training import REQUIRED_COLUMNS, TrainingResult, data_fingerprint, train_scorer
from registry.training_run import log_training


def read_logged(data: Path) -> tuple[pd.DataFrame, Path]:
    """The logged decisions of a world directory (or a Parquet file), with its path."""
    path = data / "logged.parquet" if data.is_dir() else data
    if not path.exists():
        raise FileNotFoundError(f"{path}: no logged decisions (run `liftgate world generate`)")
    expected = (
        "expected the Parquet file of logged decisions that `liftgate world generate` writes "
        f"(logged.parquet, with columns {', '.join(REQUIRED_COLUMNS)} and the features), "
        "or its directory"
    )
    if table_format(path) != "parquet":
        raise InputError(f"{path}: not a Parquet file; {expected}")
    try:
        return pd.read_parquet(path), path
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: cannot read as Parquet ({exc}); {expected}") from None


def champion_auc_on_holdout(registry: ModelRegistry, name: str, result: TrainingResult):
    """AUC of the current champion on the candidate's validation rows, when comparable."""
    if registry.alias_version(name, CHAMPION) is None:
        return None, None
    champion = registry.load(name, CHAMPION)
    if champion.model.contract_version != result.model.contract_version:
        return None, (
            f"champion v{champion.version} uses contract {champion.model.contract_version}; "
            "not compared"
        )
    data = result.dataset
    probability, _ = champion.model.predict(data.design[data.is_valid])
    return float(roc_auc_score(data.converted[data.is_valid], probability)), None


def train_and_register(
    data: Path,
    config: LiftgateConfig,
    registry: ModelRegistry,
    seed: int = 0,
    shuffle_labels: bool = False,
    who: str | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> dict:
    logged, path = read_logged(data)
    name = config.models.scorer.name
    try:
        result = train_scorer(
            logged, config, seed=seed, shuffle_labels=shuffle_labels, progress=progress
        )
    except InputError as exc:  # about the data: name the file
        raise InputError(f"{path}: {exc}") from None
    progress("logging the run to MLflow and registering a version")
    trained_by = who or current_user()
    version = log_training(
        result, registry.store, name, data_fingerprint(logged), str(path), trained_by
    )
    champion_auc, note = champion_auc_on_holdout(registry, name, result)
    gate = evaluate_gate(result.metrics, config.models.gate, champion_auc).to_dict()
    if note:
        gate["notes"] = [note]
    registry.tag_version(name, version.version, gate_tags(gate))
    if gate["passed"]:
        target = CHALLENGER if registry.alias_version(name, CHAMPION) else CHAMPION
        try:
            registry.promote(name, version.version, target, who=who, why="passed validation gate")
        except RegistryError as exc:  # approval required: stays challenger until approved
            gate.setdefault("notes", []).append(str(exc))
            registry.promote(
                name, version.version, CHALLENGER, who=who, why="passed validation gate"
            )
    return {
        "model": name,
        "version": str(version.version),
        "run_id": version.run_id,
        "metrics": result.metrics,
        "gate": gate,
        "champion_auc_on_holdout": champion_auc,
        "aliases": sorted(
            a for a, v in registry.aliases(name).items() if v == str(version.version)
        ),
        "contract_version": result.model.contract_version,
        "data_fingerprint": version.tags.get(TAG_DATA_FINGERPRINT),
        "trained_by": trained_by,
    }
