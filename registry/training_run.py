"""Log a training result to MLflow and register it as a new model version."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import lightgbm as lgb  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from mlflow.entities.model_registry import ModelVersion  # noqa: E402
from mlflow.models import infer_signature  # noqa: E402

from liftgate.core.vocabulary import (  # noqa: E402
    TAG_ACTION_IDS,
    TAG_CONTRACT_VERSION,
    TAG_DATA_FINGERPRINT,
    TAG_DATA_SOURCE,
    TAG_RUN_ID,
    TAG_TRAINED_BY,
)
from registry.store import (  # noqa: E402
    REFERENCE_ARTIFACT,
    SCORING_ARTIFACTS,
    TrackingStore,
    connect,
    training_experiment_id,
)
from registry.training import TrainingResult  # noqa: E402

REFERENCE_ROWS = 20_000


def _flatten(params: dict, prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in params.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _importance_figure(importance: dict[str, float]):
    names = sorted(importance, key=importance.get)
    figure, axes = plt.subplots(figsize=(6, 0.3 * len(names) + 1))
    axes.barh(names, [importance[n] for n in names])
    axes.set_xlabel("share of total gain")
    axes.set_title("Conversion model: feature importance")
    figure.tight_layout()
    return figure


def log_training(
    result: TrainingResult,
    store: TrackingStore,
    model_name: str,
    data_fingerprint: str,
    data_source: str,
    trained_by: str,
) -> ModelVersion:
    """One MLflow run: params, metrics, plot, lineage tags (who trained it too: four eyes
    needs it), model and companions; registered."""
    client = connect(store)
    experiment_id = training_experiment_id(client, store)
    model = result.model
    data = result.dataset
    names = result.feature_names
    example = pd.DataFrame(data.design[data.is_valid][:5], columns=names)
    lineage = {
        TAG_CONTRACT_VERSION: model.contract_version,
        TAG_DATA_FINGERPRINT: data_fingerprint,
        TAG_DATA_SOURCE: data_source,
        TAG_ACTION_IDS: json.dumps(list(model.action_ids)),
        TAG_TRAINED_BY: trained_by,
    }
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_params(_flatten(result.params))
        mlflow.log_metrics(result.metrics)
        mlflow.set_tags(lineage)
        mlflow.log_dict(data.repairs, "contract_repairs.json")
        figure = _importance_figure(result.feature_importance)
        mlflow.log_figure(figure, "feature_importance.png")
        plt.close(figure)
        info = mlflow.lightgbm.log_model(
            model.conversion,
            name="model",
            signature=infer_signature(example, model.conversion.predict(example)),
            input_example=example,
            # Stated, not inferred: inference runs a subprocess (~5 s per logged model).
            pip_requirements=[f"lightgbm=={lgb.__version__}", f"numpy=={np.__version__}"],
        )
        with tempfile.TemporaryDirectory() as tmp:
            mlflow.log_artifacts(str(model.save_companions(Path(tmp))), SCORING_ARTIFACTS)
            # The training profile is the drift reference of this version.
            reference = pd.DataFrame(data.design[data.train][-REFERENCE_ROWS:], columns=names)
            reference["prediction"] = model.conversion.predict(reference[names].to_numpy())
            path = Path(tmp) / Path(REFERENCE_ARTIFACT).name
            reference.to_parquet(path)
            mlflow.log_artifact(str(path), str(Path(REFERENCE_ARTIFACT).parent))
    version = mlflow.register_model(info.model_uri, model_name, tags=lineage)
    client.set_model_version_tag(model_name, version.version, TAG_RUN_ID, run.info.run_id)
    return client.get_model_version(model_name, version.version)
