"""`liftgate serve` and `liftgate stop`: the decision API on Ray Serve."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from configs.loader import LiftgateConfig
from configs.schema import ServingConfig
from liftgate.app.cli.common import ConfigDirOption, JsonOption, session
from liftgate.app.cli.group import CommandGroup
from liftgate.app.cli.output import emit, say
from liftgate.app.cluster_config import ExportFormat
from liftgate.core.home import Home

# serving.yaml's choices, one spelling.
Topology = ServingConfig.model_fields["topology"].annotation

app = CommandGroup()


@app.command("serve")
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option("--host", help="Default: serving.yaml.")] = None,
    port: Annotated[
        int | None, typer.Option("--port", min=1, max=65535, help="Default: serving.yaml.")
    ] = None,
    topology: Annotated[
        Topology | None,
        typer.Option("--topology", help="One deployment, or one per stage (serving.yaml)."),
    ] = None,
    detach: Annotated[
        bool, typer.Option("--detach", help="Run in the background; return when ready.")
    ] = False,
    export_config: Annotated[
        Path | None,
        typer.Option(
            "--export-config",
            help="Write the cluster's config to this file and exit; nothing is started.",
        ),
    ] = None,
    export_format: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            help="serve: the Serve config `serve deploy` takes; kuberay: a RayService manifest.",
        ),
    ] = "serve",
    image: Annotated[
        str, typer.Option("--image", help="kuberay: the image holding liftgate.")
    ] = "liftgate:latest",
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="kuberay: worker pods (Ray nodes).")
    ] = 2,
    node_cpus: Annotated[str, typer.Option("--node-cpus", help="kuberay: CPUs a pod.")] = "2",
    node_memory: Annotated[
        str, typer.Option("--node-memory", help="kuberay: memory a pod.")
    ] = "4Gi",
    _config_dir: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Serve the decision API with Ray Serve (default 127.0.0.1:8000, from serving.yaml).

    In the foreground until interrupted, or with `--detach` in the background, returning once
    `/readyz` answers; `liftgate stop` stops it. With `--export-config FILE` it writes the
    same application as a Serve config for `serve deploy FILE` on a Ray cluster (or, with
    `--format kuberay`, a KubeRay RayService manifest) and exits.

    **Examples:**

    * `liftgate serve`
    * `liftgate serve --detach --port 8080 --json`
    * `liftgate serve --export-config serve.yaml`
    * `liftgate serve --export-config liftgate.k8s.yaml --format kuberay --image REG/liftgate:1`
    """
    from liftgate.app import runner
    from serving.access import OFF_WARNING, auth_enabled
    from serving.feature_stores import check_online_store

    cli = session(ctx)
    config = cli.config
    if export_config is not None:
        from liftgate.app.cluster_config import KubeRaySpec, export_config_file

        spec = KubeRaySpec(image=image, workers=workers, cpus=node_cpus, memory=node_memory)
        written = export_config_file(
            config,
            cli.home,
            export_config,
            export_format,
            host,
            port or config.serving.port,
            topology or config.serving.topology,
            spec,
        )
        emit(written, as_json, lambda: typer.echo(f"wrote {written['path']} ({export_format})"))
        return
    host = host or config.serving.host
    port = port or config.serving.port
    topology = topology or config.serving.topology
    # At once, before Ray: a bad LIFTGATE_AUTH (exit 2), then a missing or empty online
    # store, then no model under the served alias, each naming itself and what fixes it.
    auth = auth_enabled(config.serving.auth, os.environ)
    check_online_store(config, cli.home)
    check_served_model(config, cli.home)
    if not detach:
        runner.serve_foreground(config, cli.home, host, port, topology)
        return
    if not auth:
        say(f"WARNING: {OFF_WARNING}")
    info = runner.serve_detached(cli.home, host, port, topology, config.directory)
    emit(
        info,
        as_json,
        lambda: typer.echo(
            f"liftgate serving on {info['url']} ({topology}), pid {info['pid']}; "
            f"log {info['log']}; stop with `liftgate stop`"
        ),
    )


def check_served_model(config: LiftgateConfig, home: Home) -> None:
    """An InputError naming the model, the alias and the command that registers one, unless
    the registry has a version under the alias serving.yaml serves."""
    from liftgate.core.errors import InputError
    from registry.client import ModelRegistry

    name, alias = config.models.scorer.name, config.serving.model_alias
    registry = ModelRegistry(home, config.models.registry)
    if registry.alias_version(name, alias) is None:
        raise InputError(
            f"no model to serve: {name!r} has no {alias!r} alias in the registry "
            f"({registry.store.uri}); train and register one with "
            "`liftgate train --data WORLD_DIR` (a world: `liftgate world generate --out WORLD_DIR`)"
        )


@app.command("stop")
def stop(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Stop the service that `liftgate serve --detach` started under this LIFTGATE_HOME.

    **Examples:**

    * `liftgate stop`
    * `liftgate stop --json`
    """
    from liftgate.app import runner

    info = runner.stop_service(session(ctx).home)
    emit(
        {"stopped": info},
        as_json,
        lambda: typer.echo(
            f"stopped {info['url']} (pid {info['pid']})"
            if info
            else "no service running under this LIFTGATE_HOME"
        ),
    )
