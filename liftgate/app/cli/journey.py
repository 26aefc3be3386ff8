"""`liftgate journey …`: run the journey worker, and operate journeys (README: Journeys).

`worker` is the process that turns customer events into durable journey runs and executes
them (`liftgate.journeys.worker`); the other commands read and change the journeys' state,
which a running worker follows.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated

import typer

from liftgate.app.cli.common import ConfigDirOption, session
from liftgate.app.cli.group import CommandGroup
from liftgate.app.cli.output import say

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
