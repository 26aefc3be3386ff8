"""The MLflow adapter: where the registry lives, and a client connected to it.

This is the only module that configures MLflow; everything else asks it for a client.
`tracking_store` resolves the tracking (and registry) URI, the first that is set winning:

1. the ``LIFTGATE_MLFLOW_URI`` environment variable;
2. ``registry.tracking_uri`` in models.yaml;
3. the embedded SQLite store, ``sqlite:///LIFTGATE_HOME/mlflow.db``, with its artifacts
   under ``LIFTGATE_HOME/artifacts``.

``MLFLOW_TRACKING_URI`` is not read: MLflow sets it itself on every `set_tracking_uri`, so
in a process that has opened a registry it names that registry, not the user's choice.
With a tracking server (``http://HOST:PORT``, `mlflow server --artifacts-destination DIR`)
artifacts go through the server, so a client needs no filesystem shared with it.

>>> from pathlib import Path
>>> home = Home(Path("/srv/liftgate"))
>>> embedded = tracking_store(home, RegistryPolicy(), environ={})
>>> embedded.uri, embedded.artifact_location
('sqlite:////srv/liftgate/mlflow.db', 'file:///srv/liftgate/artifacts')
>>> team = RegistryPolicy(tracking_uri="http://127.0.0.1:5000")
>>> server = tracking_store(home, team, environ={})
>>> server.source, server.artifact_location
('models.yaml registry.tracking_uri', None)
>>> tracking_store(home, team, environ={TRACKING_URI_ENV: "http://10.0.0.5:5000"}).source
'LIFTGATE_MLFLOW_URI'
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import httpx
import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sqlalchemy.exc import SQLAlchemyError

from configs.schema import RegistryPolicy, check_tracking_uri
from liftgate.core.errors import BAD_INPUT
from liftgate.core.home import Home
from registry.errors import RegistryError

TRAINING_EXPERIMENT = "liftgate-training"
#: Run artifact folder of what the LightGBM flavour does not carry (order-value model, metadata).
SCORING_ARTIFACTS = "scoring"
REFERENCE_ARTIFACT = "reference/training_profile.parquet"  # what the drift job compares with

#: Overrides models.yaml `registry.tracking_uri` (a deployment's, or a test's, choice).
TRACKING_URI_ENV: Final = "LIFTGATE_MLFLOW_URI"
CONFIG_KEY: Final = "models.yaml registry.tracking_uri"
EMBEDDED: Final = "the embedded default (LIFTGATE_HOME/mlflow.db)"
#: How long a tracking server may take to answer /health before a command gives up on it.
HEALTH_TIMEOUT_S: Final = 10.0


@dataclass(frozen=True)
class TrackingStore:
    """The registry's tracking URI, where it was configured (`source`), and the home."""

    uri: str
    source: str
    home: Home

    @property
    def is_server(self) -> bool:
        return self.uri.startswith(("http://", "https://"))

    @property
    def artifact_location(self) -> str | None:
        """Where a new experiment keeps artifacts: the home's folder for a store MLflow
        opens itself (else MLflow writes to ./mlruns); a server's own (None) otherwise."""
        return None if self.is_server else self.home.artifacts.as_uri()


def tracking_store(
    home: Home, policy: RegistryPolicy | None = None, environ: Mapping[str, str] = os.environ
) -> TrackingStore:
    """The registry of `home` under `policy` (models.yaml `registry:`), as configured."""
    configured = environ.get(TRACKING_URI_ENV)
    if configured:
        try:
            return TrackingStore(check_tracking_uri(configured), TRACKING_URI_ENV, home)
        except ValueError as exc:
            raise RegistryError(
                f"{TRACKING_URI_ENV}: {exc}; found {configured!r}", exit_code=BAD_INPUT
            ) from None
    if policy is not None and policy.tracking_uri:
        return TrackingStore(policy.tracking_uri, CONFIG_KEY, home)
    return TrackingStore(home.mlflow_uri, EMBEDDED, home)


def connect(store: TrackingStore) -> MlflowClient:
    """Point MLflow at `store` and return a client; a `RegistryError` (exit 2) naming the
    URI and where it was configured if the store does not answer."""
    store.home.ensure()
    os.environ.setdefault("MLFLOW_ENABLE_TELEMETRY", "false")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # stderr stays readable
    # Alembic logs every migration of a fresh SQLite store at INFO; keep stderr readable.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    mlflow.set_tracking_uri(store.uri)
    mlflow.set_registry_uri(store.uri)
    client = MlflowClient(tracking_uri=store.uri, registry_uri=store.uri)
    _check_reachable(store, client)
    return client


def _check_reachable(store: TrackingStore, client: MlflowClient) -> None:
    """Fail at once, not after MLflow's minutes of retries, when the store does not answer."""
    try:
        if store.is_server:
            # MLflow's client retries a refused connection with backoff for minutes.
            httpx.get(
                f"{store.uri.rstrip('/')}/health", timeout=HEALTH_TIMEOUT_S
            ).raise_for_status()
            return
        if store.source != EMBEDDED:  # a database of the team's (SQLite here: always opens)
            client.search_experiments(max_results=1)
    except (httpx.HTTPError, MlflowException, SQLAlchemyError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise RegistryError(
            f"the MLflow tracking store {store.uri} (from {store.source}) did not answer: "
            f"{reason}; start it (`mlflow server ...`, see docs/deploy.md) or correct "
            f"{store.source}",
            exit_code=BAD_INPUT,
        ) from None


def training_experiment_id(client: MlflowClient, store: TrackingStore) -> str:
    experiment = client.get_experiment_by_name(TRAINING_EXPERIMENT)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(TRAINING_EXPERIMENT, artifact_location=store.artifact_location)
