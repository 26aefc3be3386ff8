"""`liftgate serve --export-config`: the Serve config a cluster deploys, and the KubeRay
manifest around it. No Ray is started: `serve_foreground` runs against stand-ins."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError
from ray import serve
from ray.serve import context as serve_context
from ray.serve.schema import ServeDeploySchema
from typer.testing import CliRunner

from configs.loader import LiftgateConfig, load_config
from configs.schema import AutoscalingSettings, RayServeMode
from liftgate.app import runner, serve_app
from liftgate.app.cli.main import app
from liftgate.app.cluster_config import POD_CONFIG_DIR, POD_HOME, KubeRaySpec, rayservice_manifest
from liftgate.core.home import HOME_ENV, Home
from serving.ray_app import canary_user_config, deploy_config, serve_mode_env

CONFIG = load_config()


def with_serving(config: LiftgateConfig, **changes) -> LiftgateConfig:
    return dataclasses.replace(config, serving=config.serving.model_copy(update=changes))


def export(home: Home, path: Path, *args: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(HOME_ENV, str(home.root))
    return CliRunner().invoke(app, ["serve", "--export-config", str(path), *args])


class Deployed(Exception):
    """Ends serve_foreground once it has deployed (where it would wait for /readyz)."""


def deployed_by_serve_foreground(
    config: LiftgateConfig, home: Home, port: int, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict, ServeDeploySchema]:
    """What serve_foreground passes to serve.start and deploys, with Ray stood in for."""
    started: dict = {}
    deployed: list[ServeDeploySchema] = []

    class Client:
        def deploy_apps(self, document: ServeDeploySchema) -> None:
            deployed.append(document)

    def stop_here(*args, **kwargs):
        raise Deployed

    monkeypatch.setattr(os, "environ", dict(os.environ))  # ray_env is applied to it
    monkeypatch.setattr(runner, "stop_on_signals", lambda stop: None)
    monkeypatch.setattr(runner, "wait_ready", stop_here)
    monkeypatch.setattr("ray.init", lambda **options: None)
    monkeypatch.setattr("ray.shutdown", lambda: None)
    monkeypatch.setattr(serve, "start", lambda **options: started.update(options))
    monkeypatch.setattr(serve, "shutdown", lambda: None)
    monkeypatch.setattr(serve_context, "_get_global_client", Client)
    with pytest.raises(Deployed):
        runner.serve_foreground(config, home, "127.0.0.1", port, config.serving.topology)
    (document,) = deployed
    return started, document


def test_the_exported_serve_config_is_what_liftgate_serve_deploys(
    home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "serve.yaml"
    result = export(home, path, "--port", "8123", monkeypatch=monkeypatch)
    assert result.exit_code == 0, result.output
    exported = yaml.safe_load(path.read_text())
    schema = ServeDeploySchema.model_validate(exported)  # what `serve deploy` checks

    started, deployed = deployed_by_serve_foreground(CONFIG, home, 8123, monkeypatch)
    assert deployed == schema
    assert started == {
        "proxy_location": exported["proxy_location"],
        "http_options": exported["http_options"],
        "controller_options": exported["controller_options"],
    }
    (application,) = exported["applications"]
    assert application["args"] == {
        "config_dir": str(CONFIG.directory),
        "home_root": str(home.root),
        "topology": "fused",
    }
    (decide,) = application["deployments"]
    assert decide["num_replicas"] == CONFIG.serving.replicas
    assert decide["ray_actor_options"] == {"num_cpus": CONFIG.serving.replica_cpus}
    assert exported["http_options"] == {"host": CONFIG.serving.host, "port": 8123}


def test_the_serve_modes_reach_the_controller_and_the_replicas_through_the_config() -> None:
    serving = CONFIG.serving.model_copy(update={"mode": RayServeMode(throughput_optimized=False)})
    document = deploy_config(serving, "c", "h", "127.0.0.1", 8000, "fused", {})
    env = {"RAY_SERVE_ENABLE_HA_PROXY": "1", "RAY_SERVE_HAPROXY_NBTHREAD": "1"}
    env["RAY_SERVE_HAPROXY_METRICS_ENABLED"] = "0"
    assert serve_mode_env(serving.mode) == env
    assert document["controller_options"]["runtime_env"] == {"env_vars": env}
    assert document["applications"][0]["runtime_env"] == {"env_vars": env}
    assert runner.ray_env(with_serving(CONFIG, mode=serving.mode)) == {**runner.BASE_ENV, **env}


def test_autoscaling_replaces_the_fixed_count_and_each_stage_gets_its_resources() -> None:
    scaling = AutoscalingSettings(min_replicas=1, max_replicas=3, target_ongoing_requests=4)
    serving = CONFIG.serving.model_copy(update={"autoscaling": scaling, "replica_cpus": 0.5})
    document = deploy_config(serving, "c", "h", "127.0.0.1", 8000, "composed", {"x": 1})
    ServeDeploySchema.model_validate(document)
    decide, *stages = document["applications"][0]["deployments"]
    assert "num_replicas" not in decide
    assert decide["autoscaling_config"] == {
        "min_replicas": 1,
        "max_replicas": 3,
        "target_ongoing_requests": 4,
    }
    assert decide["user_config"] == {"x": 1}
    assert [s["name"] for s in stages] == ["features", "scoring"]
    assert all(s["ray_actor_options"] == {"num_cpus": 0.5} for s in [decide, *stages])


def test_autoscaling_bounds_must_be_in_order() -> None:
    with pytest.raises(ValidationError, match="min_replicas must be at most max_replicas"):
        AutoscalingSettings(min_replicas=3, max_replicas=2)


def test_the_kuberay_manifest_carries_the_same_serve_config(
    home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "liftgate.k8s.yaml"
    args = ["--format", "kuberay", "--image", "reg.example/liftgate:7", "--workers", "3"]
    result = export(home, path, *args, monkeypatch=monkeypatch)
    assert result.exit_code == 0, result.output
    claim, service = yaml.safe_load_all(path.read_text())
    assert (claim["apiVersion"], claim["kind"]) == ("v1", "PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    assert (service["apiVersion"], service["kind"]) == ("ray.io/v1", "RayService")

    serve_config = yaml.safe_load(service["spec"]["serveConfigV2"])
    ServeDeploySchema.model_validate(serve_config)
    expected = deploy_config(
        CONFIG.serving,
        POD_CONFIG_DIR,
        POD_HOME,
        "0.0.0.0",  # in a pod: reached through the Kubernetes Service
        CONFIG.serving.port,
        CONFIG.serving.topology,
        canary_user_config(None, 0),
        import_path=serve_app.IMPORT_PATH,
    )
    assert serve_config == expected

    cluster = service["spec"]["rayClusterConfig"]
    assert cluster["rayVersion"] and cluster["enableInTreeAutoscaling"] is False
    head = cluster["headGroupSpec"]
    (workers,) = cluster["workerGroupSpecs"]
    assert workers["replicas"] == workers["minReplicas"] == workers["maxReplicas"] == 3
    pods = [head["template"]["spec"], workers["template"]["spec"]]
    for pod in pods:
        (container,) = pod["containers"]
        assert container["image"] == "reg.example/liftgate:7"
        assert {"name": HOME_ENV, "value": POD_HOME} in container["env"]
        assert set(container["resources"]) == {"requests", "limits"}
        (mount,) = container["volumeMounts"]
        (volume,) = pod["volumes"]
        assert mount == {"name": volume["name"], "mountPath": POD_HOME}
        assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    ports = {p["name"]: p["containerPort"] for p in pods[0]["containers"][0]["ports"]}
    assert ports["serve"] == CONFIG.serving.port


def test_autoscaling_lets_kuberay_add_workers() -> None:
    scaling = AutoscalingSettings(min_replicas=1, max_replicas=6)
    config = with_serving(CONFIG, autoscaling=scaling)
    _, service = rayservice_manifest(config, KubeRaySpec(image="i", workers=2), 8000, "fused")
    cluster = service["spec"]["rayClusterConfig"]
    assert cluster["enableInTreeAutoscaling"] is True
    assert cluster["workerGroupSpecs"][0]["maxReplicas"] == 6


def test_an_unwritable_file_is_named_without_a_traceback(
    home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "missing-folder" / "serve.yaml"
    result = export(home, path, monkeypatch=monkeypatch)
    assert result.exit_code == 2
    assert f"--export-config: cannot write {path}" in result.output
    assert "Traceback" not in result.output
