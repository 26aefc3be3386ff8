"""The MLflow adapter: tracking and registry on the SQLite store under LIFTGATE_HOME.

This is the only module that configures MLflow; everything else asks it for a client.
"""

from __future__ import annotations

import logging
import os

import mlflow
from mlflow import MlflowClient

from liftgate.core.home import Home

TRAINING_EXPERIMENT = "liftgate-training"
#: Run artifact folder of what the LightGBM flavour does not carry (order-value model, metadata).
SCORING_ARTIFACTS = "scoring"
REFERENCE_ARTIFACT = "reference/training_profile.parquet"  # what the drift job compares with


def connect(home: Home) -> MlflowClient:
    """Point MLflow at `home` (SQLite store, local artifacts) and return a client."""
    home.ensure()
    os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # stderr stays readable
    # Alembic logs every migration of a fresh SQLite store at INFO; keep stderr readable.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    mlflow.set_tracking_uri(home.mlflow_uri)
    mlflow.set_registry_uri(home.mlflow_uri)
    return MlflowClient(tracking_uri=home.mlflow_uri, registry_uri=home.mlflow_uri)


def training_experiment_id(client: MlflowClient, home: Home) -> str:
    experiment = client.get_experiment_by_name(TRAINING_EXPERIMENT)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(TRAINING_EXPERIMENT, artifact_location=home.artifacts.as_uri())
