"""The journey worker: events from the inbox to runs, and the runs themselves.

One process (`liftgate journey worker`) reads the event inbox in arrival order from its
cursor. Each event is sent to the customer's open runs (the idempotency key is the run and
the event: a resend after a crash is a no-op) and starts a run of every active journey it
triggers — after the entry rules, in the customer's sticky arm, with the run id
(journey, customer, event) as the workflow's id, so a redelivered event never starts a
second run. The cursor moves after the batch: a crash replays at most a batch, which the
ids make harmless.

The runs execute in this process's event loop on the workflow engine; a killed worker's
pending runs are recovered when the next one launches. Decisions and commits go through the
decision service and the commit checks of `/v1/actions` built in this process, on the
journeys' clock (`liftgate.core.clock`; compressed in tests and the demo).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import asdict
from typing import Any, Final

from configs.journey_schema import JourneyConfig
from configs.loader import LiftgateConfig
from liftgate.core.clock import CompressedClock
from liftgate.core.filters import matches
from liftgate.core.home import Home
from liftgate.governance.consent import ConsentReader, ConsentStore
from liftgate.governance.events import CustomerEvent, EventInbox
from liftgate.journeys import plan
from liftgate.journeys.clock_file import read_clock
from liftgate.journeys.engine import WorkflowEngine, sqlite_url
from liftgate.journeys.runs import JourneyRuns, Ports
from liftgate.journeys.state import PAUSED, STARTING, JourneyState, RunRow, run_id_of
from serving.api_models import ActionRequest, DecideRequest
from serving.components import build_action_service, build_service

logger = logging.getLogger(__name__)

POLL_S: Final = 0.2
BATCH: Final = 500
WHO: Final = "journey-worker"


def engine_url(home: Home, database_url: str | None) -> str:
    """PostgreSQL if given, else the SQLite file under `home` (the embedded default)."""
    return database_url or sqlite_url(home.journey_engine)


def event_message(event: CustomerEvent) -> dict[str, Any]:
    message = asdict(event)
    message["ts"], message["received_ts"] = event.ts.isoformat(), event.received_ts.isoformat()
    return message


class Dispatcher:
    """Events → runs: sends to open runs, entry rules, run starts (pure of the engine but
    for `start` and `send`)."""

    def __init__(
        self,
        journeys: dict[str, JourneyConfig],
        state: JourneyState,
        engine: WorkflowEngine,
        consent: ConsentReader,
        clock: CompressedClock,
    ):
        self.journeys = journeys
        self.state = state
        self.engine = engine
        self.consent = consent
        self.clock = clock

    async def dispatch(self, event: CustomerEvent) -> None:
        message = event_message(event)
        for run in self.state.open_runs_of(event.customer_id):
            if run.event_id != event.event_id:
                await self.engine.send(run.run_id, message, f"{run.run_id}:{event.event_id}")
        statuses = self.state.statuses()
        for journey in self.journeys.values():
            status = statuses.get(journey.name)
            if status is None or journey.trigger.event != event.type:
                continue
            if matches(journey.trigger.where, event.properties):
                await self._enter(journey, event, message, paused=status == PAUSED)

    async def _enter(
        self, journey: JourneyConfig, event: CustomerEvent, message: dict, paused: bool
    ) -> None:
        run_id = run_id_of(journey.name, event.customer_id, event.event_id)
        known = self.state.run(run_id)
        if known is None:
            now = self.clock.now()
            refusal = plan.entry_refusal(
                journey,
                at=now,
                consent_granted=journey.entry.consent is None
                or self.consent.is_granted(event.customer_id, journey.entry.consent),
                last_entry=self.state.last_entry(journey.name, event.customer_id),
                in_group=journey.group is not None
                and self.state.in_group(journey.group, event.customer_id),
                paused=paused,
            )
            if refusal is not None:
                self.state.refuse_entry(
                    journey.name, event.event_id, event.customer_id, refusal, now
                )
                return
            known = RunRow(
                run_id,
                journey.name,
                event.customer_id,
                event.event_id,
                plan.arm_for(journey, event.customer_id),
                journey.group,
                now,
            )
            self.state.add_run(known)
        if known.status == STARTING:  # also after a crash between the row and the start
            await self.engine.start(
                run_id,
                {
                    "run_id": run_id,
                    "journey": journey.model_dump(mode="json", by_alias=True),
                    "customer_id": event.customer_id,
                    "arm": known.arm,
                    "started_at": known.started_at.isoformat(),
                    "event": message,
                },
            )


class JourneyWorker:
    """The worker process's parts, built over `home` (see the module docstring)."""

    def __init__(self, config: LiftgateConfig, home: Home, database_url: str | None = None):
        self.config = config
        self.home = home
        self.clock = read_clock(home)
        self.state = JourneyState(home.journey_state)
        self.inbox = EventInbox.for_home(home)
        self.service, self.components = build_service(config, home, clock=self.clock.now)
        self.actions = build_action_service(config, home, self.service.metrics, self.clock.now)
        ports = Ports(
            decide=self._decide,
            commit=self._commit,
            channel_of={a.id: a.channel for a in config.actions.actions},
            now=self.clock.now,
            real_seconds=self.clock.real_seconds,
        )
        self.engine = WorkflowEngine(engine_url(home, database_url), self._execute)
        self.runs = JourneyRuns(self.engine, self.state, ports)
        self.consent = ConsentStore.reader(home.consent)
        self.dispatcher = Dispatcher(
            config.journeys, self.state, self.engine, self.consent, self.clock
        )

    async def _execute(self, payload: dict[str, Any]) -> dict[str, Any]:
        return await self.runs.execute(payload)

    async def _decide(self, customer_id: str, candidates: list[str], trace_id: str) -> dict:
        request = DecideRequest(customer_id=customer_id, candidates=candidates)
        return await self.service.decide(request, trace_id)

    async def _commit(self, request: dict[str, Any]) -> dict[str, Any]:
        commit = await self.actions.commit(ActionRequest(**request), who=WHO)
        return {
            "status": commit.status,
            "check": commit.check,
            "action_id": commit.action_id,
            "detail": commit.detail,
        }

    async def dispatch_once(self) -> int:
        """Dispatch the next batch of the inbox; how many events it held."""
        cursor = self.state.cursor()
        batch = self.inbox.after(cursor, BATCH)
        for rowid, event in batch:
            await self.dispatcher.dispatch(event)
            cursor = rowid
        if batch:
            self.state.set_cursor(cursor)
        return len(batch)

    async def serve(self, stop: asyncio.Event) -> None:
        """Launch the engine (recovering pending runs) and dispatch until `stop`."""
        self.engine.launch()
        logger.info("journey worker: engine launched; dispatching events")
        try:
            while not stop.is_set():
                if await self.dispatch_once() == 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), POLL_S)
        finally:
            self.close()

    def close(self) -> None:
        self.engine.shutdown()
        for part in (
            self.actions,
            self.service,
            self.components,
            self.state,
            self.inbox,
            self.consent,
        ):
            part.close()
