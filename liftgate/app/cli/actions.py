"""`liftgate actions …`: committed actions (``POST /v1/actions``): deliver them, show one,
count them (README: Delivery).

`liftgate serve` delivers in the background (``serving.actions.worker``); `deliver` runs the
same outbox worker in the foreground, or one round of it (cron). Workers in several
processes may run at once: each leases the entries it delivers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from liftgate.app.cli.common import ConfigDirOption, JsonOption, session
from liftgate.app.cli.group import CommandGroup
from liftgate.app.cli.output import emit, print_table, say, table_of
from liftgate.core.errors import InputError

if TYPE_CHECKING:
    from liftgate.governance.action_store import ActionStore

app = CommandGroup(help="Committed actions: deliver them, show one, count them.")


def _store(ctx: typer.Context) -> ActionStore:
    from liftgate.governance.action_store import ActionStore

    return ActionStore(session(ctx).home.actions)


@app.command("deliver")
def deliver(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="One round, then exit (cron).")] = False,
    _config_dir: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Deliver the due actions through their channels' connectors, every `poll_s` until
    interrupted, or one round with `--once`.

    A failed attempt that may pass later is retried with exponential backoff, up to
    `max_attempts` (serving.yaml `actions.delivery`); an action past its expiry is failed
    unsent. Prints what the rounds did: delivered, retried, failed, expired.

    **Examples:**

    * `liftgate actions deliver --once`
    * `liftgate actions deliver --once --json`
    * `liftgate actions deliver`
    """
    import contextlib
    import threading

    from liftgate.governance.outbox import DeliveryRound, delivery_worker

    with delivery_worker(session(ctx).config, session(ctx).home) as worker:
        if once:
            done = worker.run_once()
        else:
            say("delivering; stop with Ctrl-C")
            rounds: list[DeliveryRound] = []

            def report(round_: DeliveryRound) -> None:
                rounds.append(round_)
                say(f"delivery: {round_}")

            with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: the rounds so far
                worker.run(threading.Event(), report)
            done = sum(rounds, DeliveryRound())
    emit(done.to_json(), as_json, lambda: typer.echo(str(done)))


def _print_action(action: dict) -> None:
    typer.echo(f"action {action['action_id']}: {action['status']}")
    for field in ("action", "channel", "campaign_id", "creative_id", "decision_id"):
        if action[field] is not None:
            typer.echo(f"  {field}: {action[field]}")
    typer.echo(f"  idempotency key: {action['idempotency_key']}")
    if action["check"] is not None:
        typer.echo(f"  refused by the {action['check']} check: {action['detail']}")
    rows = table_of("time", "status", "detail")
    for event in action["history"]:
        rows.add_row(event["ts"], event["status"], event["detail"] or "")
    print_table(rows, indent=2)


@app.command("show")
def show(
    ctx: typer.Context,
    action_id: Annotated[str, typer.Argument(help="The action's id (from POST /v1/actions).")],
    as_json: JsonOption = False,
) -> None:
    """An action's status (queued, delivered, failed, refused, dry_run) and its history:
    the commit and every delivery attempt.

    **Examples:**

    * `liftgate actions show 3f9a0c1b2d4e4f60a1b2c3d4e5f60718`
    * `liftgate actions show 3f9a0c1b2d4e4f60a1b2c3d4e5f60718 --json`
    """
    store = _store(ctx)
    try:
        action = store.get(action_id)
    finally:
        store.close()
    if action is None:
        raise InputError(f"no action {action_id!r} in {session(ctx).home.actions}")
    emit(action, as_json, lambda: _print_action(action))


def _print_stats(stats: dict) -> None:
    rows = table_of("status", "actions", numeric=["actions"])
    for status, count in stats["by_status"].items():
        rows.add_row(status, f"{count:,}")
    print_table(rows)
    if stats["refusals_by_check"]:
        typer.echo("")
        refusals = table_of("refused by", "actions", numeric=["actions"])
        for check, count in stats["refusals_by_check"].items():
            refusals.add_row(check, f"{count:,}")
        print_table(refusals)


@app.command("stats")
def stats(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """How many actions have each status, and how many each check refused.

    **Examples:**

    * `liftgate actions stats`
    * `liftgate actions stats --json`
    """
    store = _store(ctx)
    try:
        document = {
            "by_status": store.counts_by_status(),
            "refusals_by_check": store.refusals_by_check(),
        }
    finally:
        store.close()
    emit(document, as_json, lambda: _print_stats(document))
