"""The rollouts' supervisor without Ray (liftgate/app/rollout_supervisor.py): the document
it redeploys keeps the controller's config but the decision deployment's `user_config`,
each new revision of the weights file reaches the controller, and it ends itself once its
application is gone. A stand-in Serve client answers as the controller would."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from ray.serve import context as serve_context
from ray.serve.schema import ServeDeploySchema

from configs.loader import DEFAULT_DIR
from experiments.canary import CanarySplit
from experiments.canary_state import write_split
from liftgate.app import rollout_supervisor
from liftgate.app.rollout_supervisor import RolloutSupervisor, redeploy_document
from liftgate.core.home import Home
from serving.ray_app import APP_NAME, DECIDE, canary_user_config

SPLIT = CanarySplit(rollout="r", salt="r", weight=0.1, baseline=True, challenger="2")


def held(name: str, user_config: dict | None = None) -> dict:
    """An application as the controller holds its declarative config."""
    deployments = [
        {"name": DECIDE, "num_replicas": 2, "ray_actor_options": {"num_cpus": 0.6}},
        {"name": "scoring", "num_replicas": 1},
    ]
    if user_config is not None:
        deployments[0]["user_config"] = user_config
    config = {"name": name, "route_prefix": f"/{name}", "import_path": "m:app"}
    return {"status": "RUNNING", "deployed_app_config": {**config, "deployments": deployments}}


def test_only_the_decision_deployments_user_config_changes() -> None:
    details = {
        "target_capacity": 50.0,
        "applications": {
            APP_NAME: held(APP_NAME, canary_user_config(None, 0)),
            "other": held("other", {"kept": True}),
            "from-python": {"status": "RUNNING", "deployed_app_config": None},
        },
    }
    new = canary_user_config(SPLIT, 4)
    document = redeploy_document(details, APP_NAME, DECIDE, new)
    ServeDeploySchema.model_validate(document)  # what the controller takes
    mine, other = document["applications"]
    assert mine["deployments"][0] == {**held(APP_NAME)["deployed_app_config"]["deployments"][0],
                                      "user_config": new}  # fmt: skip
    assert mine["deployments"][1] == {"name": "scoring", "num_replicas": 1}
    assert other == held("other", {"kept": True})["deployed_app_config"]
    assert document["target_capacity"] == 50.0
    # The held config is left as it was (the controller's answer is not edited in place).
    assert (
        "user_config" in details["applications"]["other"]["deployed_app_config"]["deployments"][0]
    )
    assert details["applications"][APP_NAME]["deployed_app_config"]["deployments"][0][
        "user_config"
    ] == canary_user_config(None, 0)


def test_no_document_for_an_application_that_is_not_deployed() -> None:
    assert redeploy_document({"applications": {}}, APP_NAME, DECIDE, {}) is None
    assert redeploy_document({}, APP_NAME, DECIDE, {}) is None


class Controller:
    """A stand-in Serve client: the applications it holds, and what was deployed."""

    def __init__(self):
        self.details = {"applications": {APP_NAME: held(APP_NAME, canary_user_config(None, 0))}}
        self.deployed: list[dict] = []
        self.changed = threading.Condition()

    def get_serve_details(self) -> dict:
        return self.details

    def deploy_apps(self, document: ServeDeploySchema) -> None:
        with self.changed:
            (application,) = document.applications
            self.deployed.append(application.deployments[0].user_config)
            self.changed.notify_all()

    def wait(self, count: int) -> list[dict]:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.deployed) >= count, timeout=30)
            return self.deployed


def test_it_deploys_each_revision_and_ends_once_the_application_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    controller = Controller()
    retired = threading.Event()
    monkeypatch.setattr(serve_context, "_get_global_client", lambda: controller)
    monkeypatch.setattr(rollout_supervisor, "start_guard", lambda *args: None)
    monkeypatch.setattr(rollout_supervisor, "PRESENCE_CHECK_S", 0.0)
    monkeypatch.setattr(RolloutSupervisor, "retire", lambda self: retired.set())
    home = Home(tmp_path)
    first = write_split(home, SPLIT)

    supervisor = RolloutSupervisor(str(DEFAULT_DIR), str(home.root), APP_NAME, DECIDE)
    assert controller.wait(1) == [canary_user_config(first, 1)]  # resumes from the file
    write_split(home, None)  # the guard's rollback
    assert controller.wait(2)[-1] == canary_user_config(None, 2)

    controller.details = {"applications": {}}  # `serve shutdown`, or the app deleted
    assert retired.wait(30)
    supervisor.stop.set()
