"""A Ray cluster from one config (`liftgate serve --export-config FILE`).

Two shapes of the same Serve config (`serving.ray_app.deploy_config`, what `liftgate serve`
deploys): the Serve config YAML that `serve deploy FILE` takes, and a KubeRay `RayService`
manifest whose `serveConfigV2` is that document, beside the volume that holds
LIFTGATE_HOME in every pod (the one log root the analysis reads).

>>> from configs.loader import load_config
>>> spec = KubeRaySpec(image="registry.example/liftgate:1", workers=2)
>>> claim, service = rayservice_manifest(load_config(), spec, port=8000, topology="fused")
>>> claim["kind"], service["kind"], service["apiVersion"]
('PersistentVolumeClaim', 'RayService', 'ray.io/v1')
>>> yaml.safe_load(service["spec"]["serveConfigV2"])["applications"][0]["args"]["home_root"]
'/var/lib/liftgate'
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Literal

import yaml

from configs.loader import LiftgateConfig
from liftgate.core.errors import InputError
from liftgate.core.home import HOME_ENV, Home

ExportFormat = Literal["serve", "kuberay"]

#: Where every pod mounts the LIFTGATE_HOME volume (the Serve config's `home_root`).
POD_HOME = "/var/lib/liftgate"
#: Where the image holds the configuration directory (the Serve config's `config_dir`).
POD_CONFIG_DIR = "/app/configs"
#: A pod's Serve proxy listens on its pod address; the Kubernetes Service reaches it there.
POD_HOST = "0.0.0.0"
#: The volume's name in the pod templates.
HOME_VOLUME = "liftgate-home"


@dataclass(frozen=True)
class KubeRaySpec:
    """What the manifest needs beyond serving.yaml: the image (liftgate installed, its
    configuration at POD_CONFIG_DIR) and each Ray node's pod size."""

    image: str
    workers: int = 2
    cpus: str = "2"
    memory: str = "4Gi"
    storage: str = "20Gi"
    name: str = "liftgate"


class _BlockText(yaml.SafeDumper):
    """Multi-line strings as YAML literal blocks: `serveConfigV2` reads as YAML."""


_BlockText.add_representer(
    str,
    lambda dumper, text: dumper.represent_scalar(
        "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None
    ),
)


def serve_config_text(document: dict) -> str:
    """The Serve config as YAML, keys in the document's order (as `serve build` writes)."""
    return yaml.safe_dump(document, sort_keys=False)


def rayservice_manifest(
    config: LiftgateConfig,
    spec: KubeRaySpec,
    port: int,
    topology: str,
    host: str = POD_HOST,
) -> list[dict]:
    """A ReadWriteMany volume claim for LIFTGATE_HOME and a `RayService` (ray.io/v1) with a
    head and one worker group. Replicas go to the workers (the head offers no CPUs); the
    decision deployment's autoscaling, if set, lets KubeRay add worker pods up to one per
    replica at most."""
    from liftgate.app.serve_app import IMPORT_PATH
    from serving.ray_app import canary_user_config, deploy_config

    document = deploy_config(
        config.serving,
        POD_CONFIG_DIR,
        POD_HOME,
        host,
        port,
        topology,
        canary_user_config(None, 0),
        import_path=IMPORT_PATH,  # with the rollouts' supervisor: no driver on a cluster
    )
    claim_name = f"{spec.name}-home"
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": claim_name},
        "spec": {
            # Every node's replicas append to the same log root: a shared (RWX) volume.
            "accessModes": ["ReadWriteMany"],
            "resources": {"requests": {"storage": spec.storage}},
        },
    }
    autoscaling = config.serving.autoscaling
    most_workers = (
        spec.workers if autoscaling is None else max(spec.workers, autoscaling.max_replicas)
    )
    service = {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": spec.name},
        "spec": {
            "serveConfigV2": serve_config_text(document),
            "rayClusterConfig": {
                "rayVersion": version("ray"),
                "enableInTreeAutoscaling": autoscaling is not None,
                "headGroupSpec": {
                    "rayStartParams": {"dashboard-host": "0.0.0.0", "num-cpus": "0"},
                    "template": _pod(spec, "ray-head", claim_name, ports=_head_ports(port)),
                },
                "workerGroupSpecs": [
                    {
                        "groupName": "workers",
                        "replicas": spec.workers,
                        "minReplicas": spec.workers,
                        "maxReplicas": most_workers,
                        "rayStartParams": {},
                        "template": _pod(spec, "ray-worker", claim_name, ports=[]),
                    }
                ],
            },
        },
    }
    return [claim, service]


def _head_ports(serve_port: int) -> list[dict]:
    return [
        {"containerPort": 6379, "name": "gcs-server"},
        {"containerPort": 8265, "name": "dashboard"},
        {"containerPort": 10001, "name": "client"},
        {"containerPort": serve_port, "name": "serve"},
    ]


def _pod(spec: KubeRaySpec, container: str, claim_name: str, ports: list[dict]) -> dict:
    size = {"cpu": spec.cpus, "memory": spec.memory}
    return {
        "spec": {
            "containers": [
                {
                    "name": container,
                    "image": spec.image,
                    "env": [
                        {"name": HOME_ENV, "value": POD_HOME},
                        {"name": "RAY_USAGE_STATS_ENABLED", "value": "0"},
                    ],
                    "resources": {"requests": dict(size), "limits": dict(size)},
                    **({"ports": ports} if ports else {}),
                    "volumeMounts": [{"name": HOME_VOLUME, "mountPath": POD_HOME}],
                }
            ],
            "volumes": [{"name": HOME_VOLUME, "persistentVolumeClaim": {"claimName": claim_name}}],
        }
    }


def export_config_file(
    config: LiftgateConfig,
    home: Home,
    path: Path,
    export_format: ExportFormat,
    host: str | None,
    port: int,
    topology: str,
    spec: KubeRaySpec,
) -> dict:
    """Write the Serve config (`serve`) or the KubeRay manifest (`kuberay`) to `path`; what
    was written, for the command's output. A `serve` config names this machine's paths
    (the configuration directory, LIFTGATE_HOME): every node must see them at the same
    place. `host` None: serving.yaml's, or POD_HOST in a pod."""
    from liftgate.app.runner import serve_document
    from serving.ray_app import canary_user_config

    if export_format == "serve":
        host = host or config.serving.host
        document = serve_document(config, home, host, port, topology, canary_user_config(None, 0))
        text = serve_config_text(document)
    else:
        host = host or POD_HOST
        manifest = rayservice_manifest(config, spec, port, topology, host)
        text = yaml.dump_all(manifest, Dumper=_BlockText, sort_keys=False)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(
            f"cannot write {path}: {exc.strerror}", parameter="export_config"
        ) from None
    return {
        "path": str(path),
        "format": export_format,
        "host": host,
        "port": port,
        "topology": topology,
    }
