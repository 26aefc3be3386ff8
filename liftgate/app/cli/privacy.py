"""`liftgate privacy …`: erase a customer, apply the logs' retention (README: Privacy)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

import typer

from liftgate.app.cli.common import ConfigDirOption, JsonOption, session
from liftgate.app.cli.group import CommandGroup
from liftgate.app.cli.output import emit, print_table, table_of
from liftgate.core.errors import CheckFailed

if TYPE_CHECKING:
    from liftgate.app.privacy import ErasureReport

app = CommandGroup(help="Privacy: erase a customer, delete old log partitions.")


def _print_erasure(customer_id: str, report: ErasureReport) -> None:
    typer.echo(f"customer {customer_id} erased (pseudonym {report.customer} in the audit log)")
    rows = table_of(
        "where",
        "rows removed",
        "files rewritten",
        "files deleted",
        numeric=("rows removed", "files rewritten", "files deleted"),
    )
    for name, rewrite in (
        ("decision log", report.logs.decisions),
        ("outcome log", report.logs.outcomes),
        ("action log", report.logs.actions),
        ("event log", report.logs.events),
    ):
        rows.add_row(
            name, str(rewrite.rows), str(len(rewrite.rewritten)), str(len(rewrite.deleted))
        )
    for name, count in (
        ("online store", report.online_store_rows),
        ("outcome ledger", report.ledger_rows),
        ("action store", report.actions),
        ("offers index", report.offers),
        ("event inbox", report.inbox_events),
    ):
        rows.add_row(name, str(count), "-", "-")
    print_table(rows)
    typer.echo(f"consent: revoked on {report.consent_channels} channel(s), the revocation kept")


@app.command("erase")
def erase(
    ctx: typer.Context,
    customer_id: Annotated[str, typer.Argument(help="The customer's id, as the logs hold it.")],
    _config_dir: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Erase a customer: from the decision, outcome and action logs (the files holding
    their rows are rewritten atomically), the online store, the outcome ledger, the action
    store and the offers index; their consent is replaced by a revocation per channel. An
    audit record `customer_erased` keeps the counts and the customer's pseudonym.

    Rows that running services still hold in write-ahead segments are waited for (a few
    seconds: `serving.decision_log.max_age_s`). If a segment is not written in time (a
    failing disk), the command exits 1 naming it: run it again, it finishes the job.

    **Examples:**

    * `liftgate privacy erase customer-00042`
    * `liftgate privacy erase customer-00042 --json`
    """
    from liftgate.app.privacy import erase_customer, settle_seconds

    cli = session(ctx)
    report = erase_customer(cli.home, cli.config, customer_id)
    if not report.complete:
        segments = ", ".join(str(path) for path in report.unsettled)
        raise CheckFailed(
            f"customer {customer_id}: every store is erased, but log writers still hold rows "
            f"of theirs in write-ahead segments after {settle_seconds(cli.config):.0f} s "
            f"({segments}); once the service's logs are healthy, run "
            f"`liftgate privacy erase {customer_id}` again"
        )
    emit(report.to_json(), as_json, lambda: _print_erasure(customer_id, report))


@app.command("retention")
def retention(
    ctx: typer.Context,
    days: Annotated[
        int | None,
        typer.Option(
            "--days",
            min=1,
            help="Keep this many days before today (default: serving.privacy.retention_days).",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be deleted; delete nothing.")
    ] = False,
    _config_dir: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete the decision, outcome and action log partitions (one a UTC day) older than
    the retention: those dated before today minus N days. `liftgate serve` does it at
    start and daily when `serving.privacy.retention_days` is set.

    **Examples:**

    * `liftgate privacy retention --dry-run`
    * `liftgate privacy retention --days 90 --json`
    """
    from liftgate.app.privacy import apply_retention, retention_days
    from liftgate.governance.retention import oldest_kept

    cli = session(ctx)
    days = retention_days(cli.config, days)
    now = dt.datetime.now(dt.UTC)
    partitions = apply_retention(cli.home, days, now, dry_run=dry_run)
    names = [str(path.relative_to(cli.home.root)) for path in partitions]
    document = {
        "days": days,
        "oldest_kept": oldest_kept(now, days).isoformat(),
        "dry_run": dry_run,
        "partitions": names,
    }

    def render() -> None:
        verb = "would delete" if dry_run else "deleted"
        typer.echo(
            f"retention {days} days (keeping partitions from {document['oldest_kept']}): "
            f"{verb} {len(names)} partition(s)"
        )
        for name in names:
            typer.echo(f"  {name}")

    emit(document, as_json, render)
