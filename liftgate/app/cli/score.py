"""`liftgate score --input PARQUET --output DIR`: every customer of a customers table scored for
every action by one model version, with the online contract and scorer (README: Batch
scoring; `liftgate.core.batch_scoring`, `liftgate.app.batch_score`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from liftgate.app.cli.common import ConfigDirOption, JsonOption, session
from liftgate.app.cli.group import CommandGroup
from liftgate.app.cli.output import emit, progress_bar, say
from liftgate.core.vocabulary import CHAMPION

if TYPE_CHECKING:
    from liftgate.app.batch_score import ScoringJob

app = CommandGroup()

Engine = Literal["ray", "local"]


def _local_with_progress_bar(
    job: ScoringJob, source: Path, target: Path, customers: int, show: bool
) -> None:
    from liftgate.app.batch_score import score_locally

    with progress_bar(show) as start_bar:
        score_locally(job, source, target, on_batch=start_bar(customers))


@app.command("score")
def score(
    ctx: typer.Context,
    source: Annotated[
        Path, typer.Option("--input", help="Customers Parquet file (customers.parquet shape).")
    ],
    target: Annotated[
        Path, typer.Option("--output", help="New directory for the scores' Parquet files.")
    ],
    alias: Annotated[str, typer.Option("--alias", help="Registry alias of the model.")] = CHAMPION,
    actions: Annotated[
        str | None,
        typer.Option("--actions", help="Comma-separated action ids (default: the catalogue)."),
    ] = None,
    engine: Annotated[
        Engine, typer.Option("--engine", help="ray: Ray Data on this machine; local: one process.")
    ] = "ray",
    _config_dir: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Score every customer of `--input` for every action: one row per customer and action
    (customer_id, action, p_conversion, order_value, expected_value and its interval, rank,
    eligible, model, model_version), in Parquet files under `--output`.

    The same feature contract and scoring model as `/v1/decide` (the version `--alias` names
    when the run starts). Exits 2 when the input or a column of it is missing.

    **Examples:**

    * `liftgate score --input customers.parquet --output scores`
    * `liftgate score --input customers.parquet --output scores --alias challenger --engine local`
    * `liftgate score --input customers.parquet --output scores --actions email_10,no_action`
    """
    from liftgate.app.batch_score import (
        ScoringJob,
        check_input,
        check_output,
        score_with_ray,
    )
    from liftgate.core.batch_scoring import required_columns
    from liftgate.core.contract import FeatureContract

    cli = session(ctx)
    action_ids = [a.strip() for a in actions.split(",") if a.strip()] if actions else None
    check_output(target)
    customers = check_input(source, required_columns(FeatureContract(cli.config.features)))
    job = ScoringJob.resolve(cli.config, cli.home, alias, action_ids)  # loads the model
    say(
        f"scoring {customers:,} customers × {len(job.action_ids)} actions with "
        f"{job.model_name} v{job.model_version} ({engine})"
    )
    started = time.perf_counter()
    if engine == "ray":
        score_with_ray(job, source, target, cli.home, customers, progress=not as_json)
    else:
        _local_with_progress_bar(job, source, target, customers, show=not as_json)
    seconds = time.perf_counter() - started
    rows = customers * len(job.action_ids)
    summary = {
        "input": str(source),
        "output": str(target),
        "model": job.model_name,
        "model_version": job.model_version,
        "alias": alias,
        "engine": engine,
        "customers": customers,
        "actions": list(job.action_ids),
        "rows": rows,
        "seconds": round(seconds, 3),
        "rows_per_s": round(rows / seconds) if seconds > 0 else None,
    }
    emit(
        summary,
        as_json,
        lambda: typer.echo(
            f"{rows:,} scores ({customers:,} customers × {len(job.action_ids)} actions) by "
            f"{job.model_name} v{job.model_version} in {seconds:.1f} s → {target}"
        ),
    )
