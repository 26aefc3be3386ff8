"""`liftgate journey …`: run the journey worker, and operate journeys (README: Journeys).

`worker` is the process that turns customer events into durable journey runs and executes
them (`liftgate.journeys.worker`); the other commands read and change the journeys' state
(`liftgate.journeys.state`, one SQLite file under the home), which a running worker follows.
They never launch the workflow engine: in this process it would execute runs.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

import typer

from liftgate.app.cli.common import ConfigDirOption, JsonOption, session
from liftgate.app.cli.group import CommandGroup
from liftgate.app.cli.output import emit, print_table, say, table_of
from liftgate.core.errors import InputError

if TYPE_CHECKING:
    from configs.journey_schema import JourneyConfig
    from configs.loader import LiftgateConfig
    from liftgate.core.home import Home
    from liftgate.journeys.state import JourneyState

app = CommandGroup(help="Journeys: event-triggered, multi-step, durable campaigns.")

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="LIFTGATE_JOURNEYS_DATABASE_URL",
        help="The workflow engine's database: postgresql://… (default: SQLite under the home).",
    ),
]


@app.command("worker")
def worker(
    ctx: typer.Context,
    database_url: DatabaseOption = None,
    config_dir: ConfigDirOption = None,
) -> None:
    """Dispatch customer events to journeys and execute their runs, until SIGTERM or Ctrl-C.

    Runs a killed worker left pending resume when the next one starts.

    **Examples:**

    * `liftgate journey worker`
    * `liftgate journey worker --database-url postgresql://liftgate@127.0.0.1/journeys`
    """
    from liftgate.journeys.worker import JourneyWorker

    s = session(ctx)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        journey_worker = JourneyWorker(s.config, s.home, database_url)
        say(f"journey worker: {len(s.config.journeys)} journeys; home {s.home.root}")
        await journey_worker.serve(stop)

    asyncio.run(main())


# --- operating journeys -----------------------------------------------------------------------

NameArgument = Annotated[str, typer.Argument(help="The journey's name (configs/journeys/).")]
WhoOption = Annotated[str | None, typer.Option("--by", help="Who (default: the OS user).")]
NEVER_STARTED = "never started"


@contextmanager
def _state(home: Home) -> Iterator[JourneyState]:
    from liftgate.journeys.state import JourneyState

    state = JourneyState(home.journey_state)
    try:
        yield state
    finally:
        state.close()


def _find_journey(config: LiftgateConfig, name: str) -> JourneyConfig:
    if name not in config.journeys:
        known = ", ".join(sorted(config.journeys)) or "none"
        raise InputError(
            f"no journey {name!r} in {config.directory / 'journeys'} (defined: {known})"
        )
    return config.journeys[name]


def _runs_by_status(counts: dict[str, int]) -> dict[str, int]:
    from liftgate.journeys.state import RUN_STATUSES

    return {status: counts[status] for status in RUN_STATUSES}


def _open_runs(runs: dict[str, int]) -> int:
    from liftgate.journeys.state import OPEN_STATUSES

    return sum(runs[status] for status in OPEN_STATUSES)


@app.command("list")
def list_journeys(
    ctx: typer.Context, _config_dir: ConfigDirOption = None, as_json: JsonOption = False
) -> None:
    """Every journey of the configuration: its status, trigger, arms, steps and runs.

    **Examples:**

    * `liftgate journey list`
    * `liftgate journey list --json`
    """
    cli = session(ctx)
    with _state(cli.home) as state:
        statuses = state.statuses()
        rows = [
            {
                "name": name,
                "status": statuses.get(name, NEVER_STARTED),
                "trigger": journey.trigger.event,
                "arms": {arm.name: arm.weight for arm in journey.arms},
                "steps": len(journey.steps),
                "runs": _runs_by_status(state.counts(name)),
            }
            for name, journey in sorted(cli.config.journeys.items())
        ]

    def render() -> None:
        if not rows:
            typer.echo(f"no journeys defined in {cli.config.directory / 'journeys'}")
            return
        numbers = ["steps", "running", "completed", "exited", "failed"]
        listed = table_of("journey", "status", "trigger", "arms", *numbers, numeric=numbers)
        for r in rows:
            arms = ", ".join(f"{arm} {weight:g}" for arm, weight in r["arms"].items())
            runs = r["runs"]
            listed.add_row(
                r["name"],
                r["status"],
                r["trigger"],
                arms,
                str(r["steps"]),
                *(f"{n:,}" for n in (_open_runs(runs), *(runs[s] for s in numbers[2:]))),
            )
        print_table(listed)

    emit(rows, as_json, render)


def _change_status(
    ctx: typer.Context,
    name: str,
    to: str,
    audit_action: str,
    who: str | None,
    as_json: bool,
    *,
    once_started: bool,
) -> None:
    """Set the journey's status (a running worker follows at its next event, a run at its
    next send), audited; `once_started`: refused for a journey never started."""
    from liftgate.core import audit
    from liftgate.journeys.clock_file import read_clock

    cli = session(ctx)
    _find_journey(cli.config, name)
    home = cli.home.ensure()
    with _state(home) as state:
        previous = state.status(name)
        if previous is None and once_started:
            raise InputError(
                f"journey {name!r} was never started: start it with `liftgate journey start {name}`"
            )
        state.set_status(name, to, read_clock(home).now())
    audit.append(home.audit_log, audit_action, who=who, journey=name)
    document = {"journey": name, "status": to, "previous": previous or NEVER_STARTED}
    emit(document, as_json, lambda: typer.echo(f"{name}: {document['previous']} → {to}"))


@app.command("start")
def start(
    ctx: typer.Context,
    name: NameArgument,
    who: WhoOption = None,
    _config_dir: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start a journey: the worker starts a run for each of its trigger events from now on.

    Runs start with the journey's YAML as it is then; a later change applies to new runs only.

    **Examples:**

    * `liftgate journey start cart-abandonment`
    * `liftgate journey start cart-abandonment --by alice --json`
    """
    from liftgate.journeys.state import ACTIVE

    _change_status(ctx, name, ACTIVE, "journey_started", who, as_json, once_started=False)


@app.command("pause")
def pause(
    ctx: typer.Context,
    name: NameArgument,
    who: WhoOption = None,
    _config_dir: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Pause a journey: no new run starts, and running runs hold before their next send.

    **Examples:**

    * `liftgate journey pause cart-abandonment`
    * `liftgate journey pause cart-abandonment --by alice --json`
    """
    from liftgate.journeys.state import PAUSED

    _change_status(ctx, name, PAUSED, "journey_paused", who, as_json, once_started=True)


@app.command("resume")
def resume(
    ctx: typer.Context,
    name: NameArgument,
    who: WhoOption = None,
    _config_dir: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Resume a paused journey: new runs start again, and held runs carry on.

    **Examples:**

    * `liftgate journey resume cart-abandonment`
    * `liftgate journey resume cart-abandonment --json`
    """
    from liftgate.journeys.state import ACTIVE

    _change_status(ctx, name, ACTIVE, "journey_resumed", who, as_json, once_started=True)


@app.command("status")
def status(
    ctx: typer.Context,
    name: NameArgument,
    _config_dir: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """A journey's status and runs: by status, open runs by step and by arm, entries refused
    by reason, and how many customers wait on the agent queue.

    **Examples:**

    * `liftgate journey status cart-abandonment`
    * `liftgate journey status cart-abandonment --json`
    """
    cli = session(ctx)
    journey = _find_journey(cli.config, name)
    with _state(cli.home) as state:
        counts = state.counts(name)
        runs_of_journey = {run.run_id for run in state.runs(name)}
        document: dict[str, Any] = {
            "journey": name,
            "status": state.status(name) or NEVER_STARTED,
            "runs": _runs_by_status(counts),
            # In the journey's step order; every step shown, so a quiet one reads as 0.
            "open_runs_by_step": {s.id: counts.get(f"at:{s.id}", 0) for s in journey.steps},
            "runs_by_arm": {arm.name: counts.get(f"arm:{arm.name}", 0) for arm in journey.arms},
            "entries_refused": state.refused_entries(name),
            "agent_queue": sum(row["run_id"] in runs_of_journey for row in state.agent_queue()),
        }

    def render() -> None:
        runs = document["runs"]
        typer.echo(f"{name}: {document['status']}")
        typer.echo(
            "runs: "
            + ", ".join(f"{n:,} {status}" for status, n in runs.items())
            + f"; {document['agent_queue']:,} on the agent queue"
        )
        steps = table_of("step", "open runs", numeric=["open runs"])
        for step, n in document["open_runs_by_step"].items():
            steps.add_row(step, f"{n:,}")
        print_table(steps, indent=2)
        arms = ", ".join(f"{arm} {n:,}" for arm, n in document["runs_by_arm"].items())
        typer.echo(f"runs by arm: {arms}")
        refused = document["entries_refused"]
        typer.echo(
            "entries refused: "
            + (", ".join(f"{reason} {n:,}" for reason, n in sorted(refused.items())) or "none")
        )

    emit(document, as_json, render)


@app.command("inspect")
def inspect(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The run's id: JOURNEY:CUSTOMER:EVENT_ID.")],
    as_json: JsonOption = False,
) -> None:
    """One run: its journey, customer, arm, status and step, and its history in order —
    the events it received, its decisions, its actions with their ids, its waits.

    **Examples:**

    * `liftgate journey inspect cart-abandonment:c42:evt-7`
    * `liftgate journey inspect cart-abandonment:c42:evt-7 --json`
    """
    home = session(ctx).home
    with _state(home) as state:
        run = state.run(run_id)
        if run is None:
            raise InputError(f"no journey run {run_id!r} in {home.journey_state}")
        document = {
            "run": {**asdict(run), "started_at": run.started_at.isoformat()},
            "history": state.history(run_id),
        }

    def render() -> None:
        typer.echo(
            f"{run.run_id}: journey {run.journey}, customer {run.customer_id}, arm {run.arm}, "
            f"started {run.started_at.isoformat()}"
        )
        where = f"at {run.step}" if run.step else f"exit reason {run.exit_reason or '-'}"
        typer.echo(f"{run.status}, {where}")
        if not document["history"]:
            typer.echo("no history yet")
            return
        skip = {"seq", "at", "kind", "step"}
        rows = table_of("#", "at", "kind", "step", "details", numeric=["#"])
        for entry in document["history"]:
            details = ", ".join(f"{k}={v}" for k, v in entry.items() if k not in skip)
            rows.add_row(
                str(entry["seq"]), entry["at"], entry["kind"], entry["step"] or "", details
            )
        print_table(rows)

    emit(document, as_json, render)
