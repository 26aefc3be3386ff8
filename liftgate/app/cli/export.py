"""`liftgate export bento`: one model version as a BentoML service, for teams without Ray.

The version's scoring model, the configuration and the online store's snapshot go into the
BentoML model store (`serving.bento_bundle`), and a bento is built around them whose
service (`serving.bento_app`) answers POST /v1/decide as `liftgate serve` does. Both stores
are BentoML's own: BENTOML_HOME (default ~/bentoml).
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path
from typing import Annotated

import typer

from liftgate.app.cli.common import ConfigDirOption, JsonOption, session
from liftgate.app.cli.group import CommandGroup
from liftgate.app.cli.output import emit, say
from liftgate.core.errors import InputError
from liftgate.core.vocabulary import CHAMPION

app = CommandGroup(help="Export a model version to serve it elsewhere.")

SERVICE = "serving.bento_app:LiftgateDecision"
BENTO_NAME = "liftgate-decide"
#: The packages of the project the bento's source carries (its service imports them).
PACKAGES = ("configs", "drift", "experiments", "liftgate", "registry", "serving")
LEFT_OUT = (
    "experiments and bandits, the canary split, outcomes, actions, events and the offers "
    "index (they need LIFTGATE_HOME's state); consent only from LIFTGATE_CONSENT_DB "
    "(unset: nobody has consent), decision log only to LIFTGATE_DECISION_LOG (unset: none)"
)


def bentoml_name(name: str) -> str:
    """A name BentoML accepts for a tag: lowercase letters, digits, `-`, `_` and `.`.

    >>> bentoml_name("Liftgate Scorer")
    'liftgate-scorer'
    """
    return re.sub(r"[^a-z0-9_.-]+", "-", name.lower()).strip("-")


def _requirements() -> list[str]:
    """The project's own dependencies (without extras), for the bento's environment."""
    return [r for r in metadata.requires("liftgate") or [] if "extra ==" not in r]


@app.command("bento")
def bento(
    ctx: typer.Context,
    alias: Annotated[
        str, typer.Option("--alias", help="The registry alias (or version number) to export.")
    ] = CHAMPION,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Also write the bento as an archive (`bentoml import`) here."),
    ] = None,
    _config_dir: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Build a BentoML service for one model version: POST /v1/decide, same contract,
    scorer and answer as `liftgate serve`, without experiments, bandits or the canary.

    Prints the bento's tag and path and the `bentoml serve` command that runs it.

    **Examples:**

    * `liftgate export bento --alias champion`
    * `liftgate export bento --alias 3 --out dist --json`
    """
    from registry.client import ModelRegistry
    from serving.bento_bundle import BundleInfo, write_bundle
    from serving.feature_stores import customers_path, missing_store_message

    cli = session(ctx)
    config, home = cli.config, cli.home
    name = config.models.scorer.name
    registry = ModelRegistry(home, config.models.registry)
    version, _ = registry.resolve(name, alias)  # unknown alias: exit 2 naming both
    customers = None  # a Redis store is read where it is, by the bento too
    if config.serving.online_store.kind == "embedded":
        customers = customers_path(config, home)
        if not customers.exists():
            raise InputError(missing_store_message(customers))
    import bentoml  # slow to import: once the input is known to be good

    loaded = registry.load(name, version=version)
    info = BundleInfo(name, loaded.version, alias)
    say(f"storing {name} v{loaded.version} ({alias}) in the BentoML model store")
    with bentoml.models.create(
        bentoml_name(name), labels=info.to_dict(), metadata=info.to_dict()
    ) as stored:
        write_bundle(Path(stored.path), loaded.model, config.directory, customers)
    say(f"building the bento around {stored.tag}")
    built = bentoml.build(
        SERVICE,
        name=BENTO_NAME,
        labels=info.to_dict(),
        description=f"liftgate /v1/decide for {name} v{loaded.version} ({alias})",
        include=[f"{package}/**" for package in PACKAGES],
        exclude=["**/__pycache__/**", "**/*.pyc"],
        python={"packages": _requirements(), "lock_packages": False},
        models=[str(stored.tag)],
        build_ctx=str(Path(__file__).resolve().parents[3]),  # the project's root
        args={"model": str(stored.tag)},
    )
    archive = None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        archive = bentoml.bentos.export_bento(
            built.tag, str(out / f"{BENTO_NAME}-{built.tag.version}.bento")
        )
    serve = f"bentoml serve {built.tag} --host 127.0.0.1 --port 3000"
    document = {
        **info.to_dict(),
        "bento": str(built.tag),
        "path": str(built.path),
        "bentoml_model": str(stored.tag),
        "archive": archive,
        "serve": serve,
        "left_out": LEFT_OUT,
    }

    def render() -> None:
        typer.echo(f"bento {built.tag} ({name} v{loaded.version}, {alias}) at {built.path}")
        if archive:
            typer.echo(f"archive: {archive} (`bentoml import` it elsewhere)")
        typer.echo(f"serve it: {serve}")
        typer.echo(f"left out: {LEFT_OUT}")

    emit(document, as_json, render)
