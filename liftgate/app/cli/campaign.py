"""`liftgate campaign run FILE`: a bulk campaign — a segment of the customers decided for in
batch by the served models, its actions queued through the checks of `/v1/actions` at the
file's rate (README: Bulk campaigns; `liftgate.journeys.campaign_run`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from liftgate.app.cli.common import ConfigDirOption, JsonOption, session
from liftgate.app.cli.group import CommandGroup
from liftgate.app.cli.output import emit, print_table, progress_bar, table_of
from liftgate.core.errors import InputError

app = CommandGroup(
    help="Bulk campaigns: a segment decided for in batch, its actions queued through the checks."
)


@contextmanager
def _progress_bar(show: bool) -> Iterator[tuple[Any, Any]]:
    """`(on_start, on_customer)` callbacks of the campaign run drawing a progress bar on
    stderr (or nothing): the run says its total, resumed runs how many were done."""
    with progress_bar(show) as start_bar:
        advance = None

        def on_start(total: int, done: int) -> None:
            nonlocal advance
            advance = start_bar(total, done)

        def on_customer() -> None:
            if advance is not None:
                advance(1)

        yield on_start, on_customer


def _print_summary(summary: dict[str, Any]) -> None:
    mode = "dry run: nothing queued" if summary["dry_run"] else "queued for the outbox"
    typer.echo(
        f"{summary['customers_in_segment']:,} customers in the segment, "
        f"{summary['skipped_already_done']:,} already done; {mode}"
    )
    rows = table_of("", "customers", numeric=["customers"])
    for key in ("decided", "resumed", "queued", "would_queue", "refused"):
        rows.add_row(key.replace("_", " "), f"{summary[key]:,}")
    for check, count in summary["refused_by_check"].items():
        rows.add_row(f"  refused by {check}", f"{count:,}")
    for key in ("no_action", "not_eligible"):
        rows.add_row(key.replace("_", " "), f"{summary[key]:,}")
    print_table(rows)
    pace = "not paced" if summary["dry_run"] else f"paced at {summary['rate_per_s']:g} commits/s"
    typer.echo(f"{summary['seconds']:.1f} s, {pace}")


@app.command("run")
def run(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The campaign's YAML file (CampaignConfig).")],
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Decide and run every check; queue nothing."),
    ] = False,
    _config_dir: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Decide for every customer of the campaign's segment, exactly as `/v1/decide` would
    (logged with propensities), and queue each chosen action through the checks of
    `/v1/actions` at the file's `rate_per_s`, for the outbox worker of `liftgate serve` to
    deliver.

    Run it again after a crash or Ctrl-C: customers already done are skipped, and no action
    is queued twice (one idempotency key per campaign and customer). `--dry-run` says what
    would be sent and what refused, and queues nothing.

    **Examples:**

    * `liftgate campaign run configs/campaigns/winback.yaml --dry-run`
    * `liftgate campaign run configs/campaigns/winback.yaml`
    * `liftgate campaign run configs/campaigns/winback.yaml --json`
    """
    from configs.loader import ConfigError
    from liftgate.journeys.campaign import load_campaign
    from liftgate.journeys.campaign_run import run_campaign

    current = session(ctx)
    try:
        campaign = load_campaign(file, current.config)
    except ConfigError as exc:
        raise InputError("the campaign file is invalid:\n  " + "\n  ".join(exc.problems)) from None
    with _progress_bar(show=not as_json) as (on_start, on_customer):
        summary = run_campaign(
            current.config,
            current.home,
            campaign,
            source=file,
            dry_run=dry_run,
            on_start=on_start,
            on_customer=on_customer,
        )
    emit(summary, as_json, lambda: _print_summary(summary))
