"""The Ray Serve application: thin deployments around the plain stage classes.

- fused (default): one ingress deployment runs feature fetch, scoring and allocation in
  its own replica — no handle hop on the request path.
- composed: the ingress calls a feature deployment and a scoring deployment through
  handles; scoring batches concurrent requests into one LightGBM call (`@serve.batch`).
Allocation stays in the ingress in both: it is a few microseconds of arithmetic that a
hop would multiply a thousandfold.
"""

from __future__ import annotations

import numpy as np
from fastapi import FastAPI
from ray import serve
from ray.serve.handle import DeploymentHandle

from configs.loader import load_config
from configs.schema import RayServeMode, ServingConfig
from experiments.canary import CanarySplit
from liftgate.core.home import Home
from liftgate.core.scoring import Scores, score_batch
from serving.access import Access
from serving.components import (
    READY_WAIT_S,
    Components,
    build_action_service,
    build_event_service,
    build_service,
)
from serving.consent_http import ConsentUpdates
from serving.http import api_for, install
from serving.metrics import ServingMetrics
from serving.online_store import FeatureLookup
from serving.service import ModelUnavailable, ServedModel

LOGGING = {"enable_access_log": False, "log_level": "WARNING"}


@serve.ingress()  # the API is built in the replica, from its configuration
class DecisionIngress:
    def __init__(
        self,
        config_dir: str,
        home_root: str,
        features: DeploymentHandle | None = None,
        scoring: DeploymentHandle | None = None,
    ):
        config = load_config(config_dir)
        self.config = config
        stages = _RemoteStages(features, scoring) if features is not None else None
        home = _home(home_root)
        self.service, self.components = build_service(config, home, stages, watch_canary=False)
        self.actions = build_action_service(config, home, self.service.metrics)
        access = Access.for_home(config.serving.auth, home)
        access.announce()
        self.consent = ConsentUpdates.for_home(home)
        self.events = build_event_service(config, home, self.service.metrics)
        install(self.service, access, self.actions, self.consent, self.events)

    def __serve_build_asgi_app__(self) -> FastAPI:
        """Serve calls it once `__init__` has run: the API as the replica's configuration
        has it (`max_body_bytes`, the catalogue's action ids)."""
        return api_for(self.config)

    def reconfigure(self, user_config: dict) -> None:
        """The rollout split, changed live by the rollouts' supervisor
        (`liftgate.app.rollout_supervisor`), no restart."""
        self.components.set_canary(
            CanarySplit.from_dict(user_config.get("canary")), int(user_config.get("revision", 0))
        )

    def __del__(self):  # Serve calls it on graceful shutdown: flush the logs
        self.actions.close()
        self.consent.close()
        self.events.close()
        self.service.close()
        self.components.close()


class _RemoteStages:
    def __init__(self, features: DeploymentHandle, scoring: DeploymentHandle):
        self.features = features
        self.scoring = scoring

    async def fetch(self, customer_id: str, context: dict | None) -> FeatureLookup:
        return await self.features.lookup.remote(customer_id, context)

    async def score(
        self, features: np.ndarray, codes: np.ndarray, model_ref: str | None
    ) -> tuple[Scores, ServedModel]:
        return await self.scoring.score.remote(features, codes, model_ref)

    async def async_ready(self) -> dict[str, bool]:
        return {**await self.features.ready.remote(), **await self.scoring.ready.remote()}


class FeatureStage:
    def __init__(self, config_dir: str, home_root: str):
        config = load_config(config_dir)
        self.components = Components(config, _home(home_root), ServingMetrics(), load_model=False)
        self.components.start(wait_s=READY_WAIT_S)

    async def lookup(self, customer_id: str, context: dict | None) -> FeatureLookup:
        return await self.components.fetch(customer_id, context)

    def ready(self) -> dict[str, bool]:
        return self.components.ready()


class ScoringStage:
    def __init__(self, config_dir: str, home_root: str):
        config = load_config(config_dir)
        self.components = Components(config, _home(home_root), ServingMetrics(), load_store=False)
        self.components.start(wait_s=READY_WAIT_S)
        self._score.set_max_batch_size(config.serving.scoring_batch_size)
        self._score.set_batch_wait_timeout_s(config.serving.scoring_batch_wait_ms / 1000)

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.001)
    async def _score(self, requests: list[tuple[np.ndarray, np.ndarray, str | None]]) -> list:
        """One LightGBM call per model among the batched requests."""
        results: list = [None] * len(requests)
        costs = self.components.catalogue.costs
        for ref in {r[2] or self.components.default_model for r in requests}:
            loaded = self.components.models.get(ref)
            if loaded is None:
                raise ModelUnavailable(f"model {ref!r} not loaded")
            served = ServedModel(loaded.name, loaded.version, loaded.alias)
            positions = [
                i for i, r in enumerate(requests) if (r[2] or self.components.default_model) == ref
            ]
            batch = [requests[i][:2] for i in positions]
            for i, scores in zip(positions, score_batch(loaded.model, batch, costs), strict=True):
                results[i] = (scores, served)
        return results

    async def score(self, features: np.ndarray, codes: np.ndarray, model_ref: str | None):
        return await self._score((features, codes, model_ref))

    def ready(self) -> dict[str, bool]:
        return self.components.ready()


def _home(root: str) -> Home:
    from pathlib import Path

    return Home(Path(root))


def canary_user_config(split: CanarySplit | None, revision: int) -> dict:
    return {"canary": split.to_dict() if split else None, "revision": revision}


#: The decision deployment: the ingress, whose `user_config` carries the rollout split.
DECIDE = "decide"
#: The composed topology's stage deployments, one replica each: features, scoring.
STAGES = ("features", "scoring")


def build_application(
    config_dir: str,
    home_root: str,
    topology: str,
    replicas: int | None = None,
    cpus: float | None = None,
    user_config: dict | None = None,
):
    """The bound Serve application for a topology. Redeploying it with only a new
    `user_config` (the canary split) reconfigures the ingress replicas in place.

    Replicas and CPUs left None are set by the declarative config (`deploy_config`), whose
    deployment entries override these options."""
    options: dict = {"logging_config": LOGGING}
    if cpus is not None:
        options["ray_actor_options"] = {"num_cpus": cpus}
    ingress = serve.deployment(
        DecisionIngress,
        name=DECIDE,
        user_config=user_config or canary_user_config(None, 0),
        **options,
        **({} if replicas is None else {"num_replicas": replicas}),
    )
    if topology == "fused":
        return ingress.bind(config_dir, home_root)
    features = serve.deployment(FeatureStage, name=STAGES[0], **options)
    scoring = serve.deployment(ScoringStage, name=STAGES[1], **options)
    return ingress.bind(
        config_dir,
        home_root,
        features.bind(config_dir, home_root),
        scoring.bind(config_dir, home_root),
    )


APP_NAME = "liftgate"
IMPORT_PATH = "serving.ray_app:application"


def application(args: dict):
    """The application builder Serve imports from a declarative config (`deploy_config`)."""
    return build_application(args["config_dir"], args["home_root"], args["topology"])


def serve_mode_env(mode: RayServeMode) -> dict[str, str]:
    """The environment that switches on the project's Serve modes (serving.yaml `mode`).

    >>> serve_mode_env(RayServeMode(haproxy=False))
    {'RAY_SERVE_THROUGHPUT_OPTIMIZED': '1'}
    """
    env = {}
    if mode.throughput_optimized:
        env["RAY_SERVE_THROUGHPUT_OPTIMIZED"] = "1"
    if mode.haproxy:
        env["RAY_SERVE_ENABLE_HA_PROXY"] = "1"
        env["RAY_SERVE_HAPROXY_NBTHREAD"] = str(mode.haproxy_threads)
        env["RAY_SERVE_HAPROXY_METRICS_ENABLED"] = "0"
    return env


def deploy_config(
    serving: ServingConfig,
    config_dir: str,
    home_root: str,
    host: str,
    port: int,
    topology: str,
    user_config: dict,
    import_path: str = IMPORT_PATH,
) -> dict:
    """The full declarative Serve config: what `liftgate serve` deploys, `liftgate serve
    --export-config` writes and `serve deploy` takes on a cluster.

    Every node's replicas read `config_dir` and write their logs under `home_root`, so on
    a cluster both are on a shared file system (or volume) at the same path. The Serve
    modes' environment goes to the controller (which starts the proxies) and to the
    replicas, so a cluster gets it without our driver.

    Its code version is a hash of the import path, so a redeploy that changes only the
    ingress's `user_config` is a lightweight update: replicas are reconfigured in place,
    not replaced. (`serve.run` of a Python application draws a new random version each
    time and replaces them all.)

    `import_path` names the application's builder: this module's, or one of a layer above
    that composes it (`liftgate.app.serve_app`, which `liftgate serve` deploys)."""

    def resources() -> dict:  # a fresh dict each: the document is edited and dumped
        return {"ray_actor_options": {"num_cpus": serving.replica_cpus}}

    scaling = (
        {"num_replicas": serving.replicas}
        if serving.autoscaling is None
        else {"autoscaling_config": serving.autoscaling.model_dump()}
    )
    deployments = [{"name": DECIDE, **scaling, **resources(), "user_config": user_config}]
    if topology == "composed":
        deployments += [{"name": stage, "num_replicas": 1, **resources()} for stage in STAGES]
    return {
        "proxy_location": serving.proxy_location,
        "http_options": {"host": host, "port": port},
        "controller_options": {"runtime_env": {"env_vars": serve_mode_env(serving.mode)}},
        "applications": [
            {
                "name": APP_NAME,
                "route_prefix": "/",
                "import_path": import_path,
                "runtime_env": {"env_vars": serve_mode_env(serving.mode)},
                "args": {"config_dir": config_dir, "home_root": home_root, "topology": topology},
                "deployments": deployments,
            }
        ],
    }
