"""`liftgate keys …`: the API keys that callers of the HTTP API send (README: Security).

A key is shown once, when it is created; the store under LIFTGATE_HOME keeps a salted hash
of it. Creating and revoking are audit-logged with the OS user.
"""

from __future__ import annotations

from typing import Annotated

import typer

from liftgate.app.cli.common import JsonOption, session
from liftgate.app.cli.group import CommandGroup
from liftgate.app.cli.output import emit, print_table, say, table_of
from serving.api_keys import ApiKey, KeyStore, Role

app = CommandGroup(help="API keys for the HTTP API: create, list, revoke.")


def _store(ctx: typer.Context) -> KeyStore:
    return KeyStore.for_home(session(ctx).home)


@app.command("create")
def create(
    ctx: typer.Context,
    role: Annotated[
        Role,
        typer.Option(
            "--role",
            help="app: decide and report outcomes; operator: rollout state; admin: /metrics "
            "too; analyst: the API's documentation.",
        ),
    ],
    name: Annotated[
        str | None, typer.Option("--name", help="What the key is for (shown by `list`).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a key and print it, once: only its hash is stored.

    Callers send it as `Authorization: Bearer <key>`.

    **Examples:**

    * `liftgate keys create --role app --name checkout`
    * `liftgate keys create --role admin --json`
    """
    new = _store(ctx).create(role, name=name)
    record = new.record
    document = {"key": new.key, "key_id": record.key_id, "role": record.role, "name": record.name}

    def render() -> None:
        typer.echo(new.key)
        say(
            f"API key {record.key_id} (role {record.role}) created; it is shown only now: "
            "keep it in your secret store"
        )

    emit(document, as_json, render)


def _print_keys(keys: list[ApiKey]) -> None:
    if not keys:
        typer.echo("no API keys (create one with `liftgate keys create --role app`)")
        return
    rows = table_of("key id", "role", "name", "created", "created by", "revoked", "revoked by")
    for key in keys:
        rows.add_row(
            key.key_id,
            key.role,
            key.name or "-",
            key.created_at,
            key.created_by,
            key.revoked_at or "-",
            key.revoked_by or "-",
        )
    print_table(rows)


@app.command("list")
def list_keys(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Every key, revoked ones too: id, role, name, who created or revoked it and when.

    **Examples:**

    * `liftgate keys list`
    * `liftgate keys list --json`
    """
    keys = _store(ctx).list()
    emit([key.to_json() for key in keys], as_json, lambda: _print_keys(keys))


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(help="The key's id (`liftgate keys list`).")],
    as_json: JsonOption = False,
) -> None:
    """Revoke a key: every replica refuses it within `serving.auth.key_cache_s` (1 s).

    **Examples:**

    * `liftgate keys revoke 3f9a0c1b2d4e`
    * `liftgate keys revoke 3f9a0c1b2d4e --json`
    """
    record = _store(ctx).revoke(key_id)
    emit(
        record.to_json(),
        as_json,
        lambda: typer.echo(
            f"API key {record.key_id} (role {record.role}) revoked at {record.revoked_at} "
            f"by {record.revoked_by}"
        ),
    )
