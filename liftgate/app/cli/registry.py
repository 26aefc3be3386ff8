"""`liftgate registry …`: the registered model versions, their aliases and approvals."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from configs.schema import ServedAlias
from liftgate.app.cli.common import ConfigDirOption, JsonOption, session
from liftgate.app.cli.group import CommandGroup
from liftgate.app.cli.output import emit, print_table, table_of

if TYPE_CHECKING:
    from registry.client import ModelRegistry

app = CommandGroup(help="Model versions, aliases, approval.")

NameArgument = Annotated[str, typer.Argument(help="The registered model (models.yaml).")]
VersionArgument = Annotated[str, typer.Argument(help="Its version number.")]
WhyOption = Annotated[str, typer.Option("--why", help="Why, for the audit log.")]


def _registry(ctx: typer.Context) -> ModelRegistry:
    from registry.client import ModelRegistry

    cli = session(ctx)
    return ModelRegistry(cli.home, cli.config.models.registry)


def _print_models(models: list[dict]) -> None:
    if not models:
        typer.echo("no registered models")
        return
    rows = table_of("model", "version", "created", "gate", "aliases", numeric=["version"])
    for model in models:
        for v in model["versions"]:
            gate = v["tags"].get("liftgate.gate.passed", "?")
            rows.add_row(
                model["name"], v["version"], v["created"], gate, ", ".join(v["aliases"]) or "-"
            )
    print_table(rows)


def _print_records(records: list[dict]) -> None:
    for r in records:
        if r is not None:
            typer.echo(
                f"{r['model']}: {r['action']} {r.get('alias', '')} "
                f"{r.get('from_version')} -> {r.get('to_version', r.get('version'))} ({r['who']})"
            )


@app.command("list")
def list_models(
    ctx: typer.Context, _config_dir: ConfigDirOption = None, as_json: JsonOption = False
) -> None:
    """Registered models with their versions, aliases and tags.

    **Examples:**

    * `liftgate registry list`
    * `liftgate registry list --json`
    """
    models = _registry(ctx).list()
    emit(models, as_json, lambda: _print_models(models))


@app.command("promote")
def promote(
    ctx: typer.Context,
    name: NameArgument,
    version: VersionArgument,
    alias: Annotated[ServedAlias, typer.Option("--alias", help="The alias to move.")],
    who: Annotated[str | None, typer.Option("--by", help="Who asks (default: $USER).")] = None,
    why: WhyOption = "manual promotion",
    _config_dir: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Move an alias to a version; the champion it replaces becomes `previous`.

    Refused (exit 1) for a version that failed the validation gate, and for champion without
    an approval when models.yaml requires one (by someone other than who trained it).

    **Examples:**

    * `liftgate registry promote liftgate-scorer 2 --alias challenger`
    * `liftgate registry promote liftgate-scorer 2 --alias champion --by alice --why "won the test"`
    """
    records = _registry(ctx).promote(name, version, alias, who=who, why=why)
    emit(records, as_json, lambda: _print_records(records))


def _rollout_starter(ctx: typer.Context, name: str, version: str) -> str | None:
    """Who started the active rollout of `version`, if one is under way."""
    from liftgate.guard.state import all_records

    active = all_records(session(ctx).home).readable
    return next(
        (r.started_by for r in active if r.active and (r.model, r.challenger) == (name, version)),
        None,
    )


@app.command("approve")
def approve(
    ctx: typer.Context,
    name: NameArgument,
    version: VersionArgument,
    who: Annotated[
        str | None, typer.Option("--by", help="Who approves (default: the OS user).")
    ] = None,
    _config_dir: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record an approval, required before promotion to champion when models.yaml says so.

    Four eyes, where models.yaml requires approval: refused (exit 1) if the approver (the
    `--by` name or the OS user running the command) trained the version or started the
    rollout that promotes it.

    **Examples:**

    * `liftgate registry approve liftgate-scorer 2`
    * `liftgate registry approve liftgate-scorer 2 --by alice --json`
    """
    started_by = _rollout_starter(ctx, name, version)
    record = _registry(ctx).approve(name, version, who, started_by=started_by)
    emit(record, as_json, lambda: typer.echo(f"{name} v{version} approved by {record['who']}"))


@app.command("rollback")
def rollback(
    ctx: typer.Context,
    name: NameArgument,
    who: Annotated[str | None, typer.Option("--by", help="Who asks (default: $USER).")] = None,
    why: WhyOption = "manual rollback",
    _config_dir: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Give the champion alias back to the previous champion.

    **Examples:**

    * `liftgate registry rollback liftgate-scorer --why "conversion fell"`
    """
    records = _registry(ctx).rollback(name, who=who, why=why)
    emit(records, as_json, lambda: _print_records(records))
