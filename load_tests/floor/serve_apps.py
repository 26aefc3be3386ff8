"""The floor on Ray Serve, in four topologies of thin deployments over workload.py:

- ``F``: fused, the whole request in the FastAPI ingress replica;
- ``C2``: the ingress (features, argmax) calls a scoring deployment;
- ``C3``: the ingress calls a features deployment, then a scoring deployment, and takes
  the argmax itself: the deployments and hops of liftgate's ``composed`` topology
  (serving/ray_app.py), each back end one replica;
- ``C4``: ingress → features → scorer → allocator, chained handle calls.
"""

from typing import Any

import workload  # load_tests/floor/, beside this file
from fastapi import FastAPI
from pydantic import BaseModel
from ray import serve
from ray.serve.handle import DeploymentHandle

TOPOLOGIES = ("F", "C2", "C3", "C4")
LOGGING = {"enable_access_log": False, "log_level": "WARNING"}  # as the liftgate app's
READY = {"ready": True}


class Request(BaseModel):
    customer_id: str


fused_app = FastAPI()


@serve.deployment
@serve.ingress(fused_app)
class Fused:
    def __init__(self) -> None:
        self.booster = workload.load_booster()
        self.store = workload.make_feature_store()

    @fused_app.post("/score")
    async def score(self, request: Request) -> dict:
        return workload.handle(self.booster, self.store, request.customer_id)

    @fused_app.get("/readyz")
    async def readyz(self) -> dict:
        return READY


@serve.deployment
class Scorer:
    def __init__(self) -> None:
        self.booster = workload.load_booster()

    async def __call__(self, features: list[float]) -> list[float]:
        return workload.score(self.booster, features)


@serve.deployment
class Features:
    def __init__(self) -> None:
        self.store = workload.make_feature_store()

    async def __call__(self, customer_id: str) -> list[float]:
        return workload.get_features(self.store, customer_id)


@serve.deployment
class Allocator:
    async def __call__(self, scores: list[float]) -> dict:
        return workload.allocate(scores)


composed2_app = FastAPI()


@serve.deployment
@serve.ingress(composed2_app)
class Ingress2:
    def __init__(self, scorer: DeploymentHandle) -> None:
        self.scorer = scorer
        self.store = workload.make_feature_store()

    @composed2_app.post("/score")
    async def score(self, request: Request) -> dict:
        features = workload.get_features(self.store, request.customer_id)
        return workload.allocate(await self.scorer.remote(features))

    @composed2_app.get("/readyz")
    async def readyz(self) -> dict:
        return READY


composed3_app = FastAPI()


@serve.deployment
@serve.ingress(composed3_app)
class Ingress3:
    def __init__(self, features: DeploymentHandle, scorer: DeploymentHandle) -> None:
        self.features, self.scorer = features, scorer

    @composed3_app.post("/score")
    async def score(self, request: Request) -> dict:
        features = await self.features.remote(request.customer_id)
        return workload.allocate(await self.scorer.remote(features))

    @composed3_app.get("/readyz")
    async def readyz(self) -> dict:
        return READY


composed4_app = FastAPI()


@serve.deployment
@serve.ingress(composed4_app)
class Ingress4:
    def __init__(
        self, features: DeploymentHandle, scorer: DeploymentHandle, allocator: DeploymentHandle
    ) -> None:
        self.features, self.scorer, self.allocator = features, scorer, allocator

    @composed4_app.post("/score")
    async def score(self, request: Request) -> dict:
        features = await self.features.remote(request.customer_id)
        scores = await self.scorer.remote(features)
        return await self.allocator.remote(scores)

    @composed4_app.get("/readyz")
    async def readyz(self) -> dict:
        return READY


def build(topology: str, replicas: int, replica_cpus: float) -> Any:
    """The application of `topology`: `replicas` ingress replicas, one of each back end,
    `replica_cpus` CPUs a replica."""
    options = {"ray_actor_options": {"num_cpus": replica_cpus}, "logging_config": LOGGING}
    ingress = {**options, "num_replicas": replicas}
    if topology == "F":
        return Fused.options(**ingress).bind()
    if topology == "C2":
        return Ingress2.options(**ingress).bind(Scorer.options(**options).bind())
    if topology == "C3":
        back_ends = (Features, Scorer)
        return Ingress3.options(**ingress).bind(*(d.options(**options).bind() for d in back_ends))
    if topology == "C4":
        back_ends = (Features, Scorer, Allocator)
        return Ingress4.options(**ingress).bind(*(d.options(**options).bind() for d in back_ends))
    raise ValueError(f"unknown topology {topology!r}; one of {TOPOLOGIES}")
