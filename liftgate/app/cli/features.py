"""`liftgate features push`: customer features into the online store that serving reads
(serving.feature_push; README: Serving)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from liftgate.app.cli.common import ConfigDirOption, JsonOption, session
from liftgate.app.cli.group import CommandGroup
from liftgate.app.cli.output import emit, progress_bar

app = CommandGroup(help="The online feature store: what serving knows of each customer.")


@app.command("push")
def push(
    ctx: typer.Context,
    source: Annotated[
        Path,
        typer.Option(
            "--from",
            help="Parquet file of customers: customer_id and their raw attributes "
            "(a world's customers.parquet).",
        ),
    ],
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="redis://HOST:PORT/DB. Default: the store serving.yaml `online_store` "
            "names (embedded: the file under LIFTGATE_HOME).",
        ),
    ] = None,
    _config_dir: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Load customer features into the online store that `liftgate serve` reads.

    The file must hold `customer_id` and a column for each stored feature of the contract
    and each attribute an eligibility rule tests; values are repaired by the contract as
    in training. The embedded store's file is replaced atomically; Redis is written in
    pipelined batches (customers not in the file keep their keys).

    **Examples:**

    * `liftgate features push --from world/customers.parquet`
    * `liftgate features push --from customers.parquet --to redis://127.0.0.1:6379/0 --json`
    """
    from liftgate.core.catalogue import ActionCatalogue
    from liftgate.core.contract import FeatureContract
    from liftgate.core.errors import InputError
    from serving.feature_push import push as push_rows
    from serving.feature_push import read_customers
    from serving.feature_stores import customers_path

    cli = session(ctx)
    config = cli.config
    if to is not None and not to.startswith(("redis://", "rediss://")):
        raise InputError(f"expected redis://HOST:PORT/DB; got {to!r}", parameter="to")
    settings = config.serving.online_store
    redis_url = to or (settings.url if settings.kind == "redis" else None)
    contract = FeatureContract(config.features)
    catalogue = ActionCatalogue(config.actions)
    started = time.perf_counter()
    table = read_customers(source, contract, catalogue)
    with progress_bar(show=not as_json) as start_bar:
        store = push_rows(
            table,
            contract,
            catalogue,
            customers_path(config, cli.home),
            redis_url,
            start_bar(table.num_rows),
        )
    summary = {
        "pushed": table.num_rows,
        "store": store,
        "seconds": round(time.perf_counter() - started, 3),
    }
    emit(
        summary,
        as_json,
        lambda: typer.echo(
            f"pushed {summary['pushed']:,} customers to {store} in {summary['seconds']:.1f} s"
        ),
    )
