"""The Serve application as a cluster deploys it: serving's decision application, and the
rollouts' supervisor beside it (`liftgate.app.rollout_supervisor`).

Serve imports this builder from the declarative config (`IMPORT_PATH`), on `liftgate serve`
and on `serve deploy` alike: so a rollout is followed and judged wherever the application
runs, with or without a driver. The builder lives in the app layer because the supervisor
runs the guard, which serving may not import.
"""

from __future__ import annotations

from liftgate.app.rollout_supervisor import ensure_supervisor
from serving.ray_app import APP_NAME, DECIDE, build_application

IMPORT_PATH = "liftgate.app.serve_app:application"


def application(args: dict):
    """The application builder Serve imports (`deploy_config(..., import_path=IMPORT_PATH)`):
    it ensures the cluster's one supervisor, then builds the decision application."""
    ensure_supervisor(args["config_dir"], args["home_root"], APP_NAME, DECIDE)
    return build_application(args["config_dir"], args["home_root"], args["topology"])
