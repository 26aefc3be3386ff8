"""The rollouts' supervisor: the guard and the canary weights' propagation, kept alive by Ray.

Under `serve deploy` on a cluster there is no `liftgate serve` driver to follow the serving
weights file and to run the guard. So the application's builder (`liftgate.app.serve_app`)
gets or creates one detached, named actor, `liftgate/liftgate-rollouts`: exactly one
cluster-wide (`get_if_exists`), restarted by Ray wherever its process dies (`max_restarts`
-1), on no CPU of its own. `liftgate serve` deploys the same application, so it runs the
same actor in its own Ray.

The actor is a thin adapter around what the driver ran: `WeightsFollower` deploys each new
revision of the weights file as the ingress's `user_config`, and `guard_loop` judges the
active rollouts. It keeps no state of its own: after a restart it resumes from the files
(the weights file, the rollout records; a transition a crash left half done is finished
by the guard's first tick, `liftgate.guard.transition`). It redeploys the application as
the Serve controller holds it (an operator's edits to the deployed config stay), only the
decision deployment's `user_config` replaced; it ends itself once the application is gone.

>>> details = {"applications": {"liftgate": {"deployed_app_config": {
...     "name": "liftgate", "import_path": "m:app",
...     "deployments": [{"name": "decide", "num_replicas": 2, "user_config": {"revision": 0}}]}}}}
>>> document = redeploy_document(details, "liftgate", "decide", {"revision": 3})
>>> document["applications"][0]["deployments"]
[{'name': 'decide', 'num_replicas': 2, 'user_config': {'revision': 3}}]
>>> redeploy_document(details, "other", "decide", {}) is None
True
>>> held_user_config(details, "liftgate", "decide")
{'revision': 0}
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from configs.loader import LiftgateConfig, load_config
from experiments.canary import CanarySplit
from experiments.canary_state import read_split
from liftgate.core.home import Home
from liftgate.core.jsonstate import UnreadableDocument

logger = logging.getLogger(__name__)

#: The supervisor's Ray namespace and name: one per cluster.
NAMESPACE = "liftgate"
NAME = "liftgate-rollouts"
#: How often the weights file is read.
WEIGHTS_POLL_S = 0.1
#: How often the supervisor asks whether its application is still deployed.
PRESENCE_CHECK_S = 5.0


class ApplicationGone(Exception):
    """The Serve controller holds no application of that name (deleted or shut down)."""


def redeploy_document(
    details: dict, app_name: str, deployment: str, user_config: dict
) -> dict | None:
    """The declarative config of every application as the controller holds it
    (`get_serve_details`), with `deployment`'s `user_config` in `app_name` replaced; None if
    `app_name` is not deployed. Applications deployed without a declarative config (none
    held) cannot be resent and are left out, as a `serve deploy` would leave them."""
    applications = details.get("applications") or {}
    if app_name not in applications:
        return None
    configs = []
    for name, application in applications.items():
        config = application.get("deployed_app_config")
        if config is None:
            continue
        if name == app_name:
            config = {
                **config,
                "deployments": [
                    {**entry, "user_config": user_config} if entry["name"] == deployment else entry
                    for entry in config.get("deployments", [])
                ],
            }
        configs.append(config)
    document: dict = {"applications": configs}
    if details.get("target_capacity") is not None:
        document["target_capacity"] = details["target_capacity"]
    return document


class WeightsFollower:
    """The serving weights as the supervisor follows them: each new revision of the file is
    deployed; while the file cannot be read, the split last deployed stays (reported once
    on stderr) until a readable revision replaces it."""

    def __init__(self, home: Home, deploy: Callable[[CanarySplit | None, int], None]):
        self.home, self.deploy = home, deploy
        self.applied: int | None = None
        self.problem: str | None = None

    def start(self) -> None:
        """Deploy the file's split; if it cannot be read, the champion serves everyone."""
        self.poll()
        if self.applied is None:
            self.deploy(None, 0)
            self.applied = 0

    def poll(self) -> None:
        try:
            split, revision = read_split(self.home)
        except UnreadableDocument as exc:
            if str(exc) != self.problem:
                self.problem = str(exc)
                print(f"serving weights: {exc}; keeping the split applied", file=sys.stderr)
            return
        self.problem = None
        if revision != self.applied:
            self.deploy(split, revision)
            self.applied = revision


def start_guard(config: LiftgateConfig, home: Home, stop: threading.Event) -> threading.Thread:
    """The guard as a background task of the rollouts' supervisor (liftgate/guard/loop.py)."""
    from liftgate.guard.controller import RolloutController
    from liftgate.guard.loop import guard_loop

    def report(results: list[dict]) -> None:
        for result in results:
            verdict = result.get("verdict") or {}
            print(
                f"guard: {result['rollout']}: {verdict.get('kind')} "
                f"{verdict.get('summary', result.get('error', ''))}",
                flush=True,
            )

    thread = threading.Thread(
        target=guard_loop,
        args=(RolloutController(config, home), stop, report),
        daemon=True,
        name="guard",
    )
    thread.start()
    return thread


def held_user_config(details: dict, app_name: str, deployment: str) -> dict | None:
    """`deployment`'s `user_config` as the controller holds it (None: none held)."""
    application = (details.get("applications") or {}).get(app_name) or {}
    entries = (application.get("deployed_app_config") or {}).get("deployments", [])
    return next((e.get("user_config") for e in entries if e["name"] == deployment), None)


class RolloutSupervisor:
    """The body of the detached actor: a weights thread and the guard's thread, started as
    the actor starts (a restart starts them again)."""

    def __init__(self, config_dir: str, home_root: str, app_name: str, deployment: str):
        self.config = load_config(config_dir)
        self.home = Home(Path(home_root))
        self.app_name, self.deployment = app_name, deployment
        self.stop = threading.Event()
        self.weights = WeightsFollower(self.home, self.deploy)
        threading.Thread(target=self.follow, daemon=True, name="weights").start()
        if self.config.serving.guard:
            start_guard(self.config, self.home, self.stop)

    def pid(self) -> int:
        return os.getpid()

    def deploy(self, split: CanarySplit | None, revision: int) -> None:
        """What `liftgate serve`'s driver did: the split as the ingress's new `user_config`."""
        from ray.serve.schema import ServeDeploySchema

        from serving.ray_app import canary_user_config

        client = self.client()
        details = client.get_serve_details()
        user_config = canary_user_config(split, revision)
        document = redeploy_document(details, self.app_name, self.deployment, user_config)
        if document is None:
            raise ApplicationGone(self.app_name)
        if held_user_config(details, self.app_name, self.deployment) == user_config:
            # Already deployed (a restart resuming, or the first deploy's own split): an
            # identical config sent while the application builds would restart its build.
            return
        client.deploy_apps(ServeDeploySchema.model_validate(document))

    def check_deployed(self) -> None:
        if self.app_name not in (self.client().get_serve_details().get("applications") or {}):
            raise ApplicationGone(self.app_name)

    def client(self):
        """The Serve controller's client; ApplicationGone once Serve is shut down."""
        from ray.serve.context import _get_global_client
        from ray.serve.exceptions import RayServeException

        try:
            return _get_global_client()
        except RayServeException:  # no Serve controller on this cluster any more
            raise ApplicationGone(self.app_name) from None

    def follow(self) -> None:
        """Follow the weights file until the application is gone; a failed round (the
        controller busy or restarting) is logged once and retried at the next poll."""
        started, checked, problem = False, time.monotonic(), None
        while not self.stop.wait(WEIGHTS_POLL_S):
            try:
                if not started:
                    self.weights.start()
                    started = True
                self.weights.poll()
                if time.monotonic() - checked > PRESENCE_CHECK_S:
                    checked = time.monotonic()
                    self.check_deployed()
                problem = None
            except ApplicationGone:
                self.retire()
                return
            except Exception as exc:  # keep following; the next poll retries
                if str(exc) != problem:
                    problem = str(exc)
                    logger.exception("rollout supervisor: deploying the weights failed")

    def retire(self) -> None:
        """The application is gone: stop, and end the actor for good (no restart)."""
        import ray

        print(f"rollout supervisor: application {self.app_name!r} is gone; ending", flush=True)
        self.stop.set()
        ray.kill(ray.get_runtime_context().current_actor, no_restart=True)


def ensure_supervisor(config_dir: str, home_root: str, app_name: str, deployment: str):
    """The cluster's supervisor, created if there is none (called by the application's
    builder, on every deploy: a second call gets the same actor)."""
    import ray

    return (
        ray.remote(RolloutSupervisor)
        .options(
            name=NAME,
            namespace=NAMESPACE,
            lifetime="detached",
            get_if_exists=True,
            max_restarts=-1,
            max_task_retries=-1,
            num_cpus=0,
        )
        .remote(config_dir, home_root, app_name, deployment)
    )
