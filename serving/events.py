"""The event service: take a customer event (``POST /v1/events``) once per `event_id`.

An event is logged (the event log, `experiments.logs.schema.EventRecord`) and kept in the
event inbox (`liftgate.governance.events.EventInbox`, shared by replicas), which the journey
worker reads, both before the answer. As for outcomes (serving/outcome_ledger.py), the
inbox is asked first, so a repeat gets the first event's answer and is not logged again,
and the log is written before the inbox, so a crash between the two loses nothing: the
retry is logged again and kept. Two requests that race with one new id (on one replica or
two) may both log it; the inbox keeps one, and readers of the log count an `event_id` once.
An event that cannot be logged is not acknowledged (`LogUnavailable`: 503), and nothing of
it is kept.

`ts` is taken within the outcomes' bounds around now (serving.yaml `outcomes`): at most
`max_clock_skew_s` ahead of now, at most `max_age_days` before it.

>>> import asyncio, tempfile
>>> from pathlib import Path
>>> from configs.loader import load_config
>>> from liftgate.core.home import Home
>>> body = EventRequest(event_id="e1", customer_id="c1", type="cart_abandoned",
...                     properties={"cart_value": 35.0})
>>> with tempfile.TemporaryDirectory() as root:
...     service = EventService.for_home(load_config(), Home(Path(root)), ServingMetrics(), None)
...     first, repeat = asyncio.run(service.accept(body)), asyncio.run(service.accept(body))
...     service.close()
>>> first["duplicate"], repeat["duplicate"], repeat["ts"] == first["ts"]
(False, True, True)
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any

from configs.loader import LiftgateConfig
from experiments.logs.schema import EventRecord
from experiments.logs.writer import LogWriter
from liftgate.core.clock import utc_now
from liftgate.core.home import Home
from liftgate.governance.events import CustomerEvent, EventInbox, log_record
from serving.api_models import EventRequest
from serving.metrics import ServingMetrics
from serving.outcome_rules import OutcomeRules
from serving.service import InvalidRequest, field_error


class EventService:
    def __init__(
        self,
        *,
        inbox: EventInbox,
        log: LogWriter[EventRecord] | None,
        rules: OutcomeRules,
        metrics: ServingMetrics,
        clock: Callable[[], dt.datetime] = utc_now,
    ):
        self.inbox = inbox
        self.log = log
        self.rules = rules
        self.metrics = metrics
        self.clock = clock

    @classmethod
    def for_home(
        cls,
        config: LiftgateConfig,
        home: Home,
        metrics: ServingMetrics,
        log: LogWriter[EventRecord] | None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> EventService:
        """A replica's service over the inbox under `home`, logging to `log`; events are
        received, and their `ts` judged, on `clock` (default: the wall clock)."""
        return cls(
            inbox=EventInbox.for_home(home),
            log=log,
            rules=OutcomeRules(config.serving.outcomes),
            metrics=metrics,
            clock=clock or utc_now,
        )

    async def accept(self, request: EventRequest) -> dict[str, Any]:
        """The answer to `request`: `InvalidRequest` naming `ts` outside its bounds,
        `experiments.logs.wal.LogUnavailable` when the event log cannot be written. No
        check of the log's health first: only a write finds out that the disk is back."""
        now = self.clock()
        ts = request.ts or now
        self._check_ts(ts, now)
        # SQLite (the inbox fsyncs every commit): off the event loop, which serves decisions.
        kept = await asyncio.to_thread(self.inbox.get, request.event_id)
        new = False
        if kept is None:
            event = CustomerEvent(
                event_id=request.event_id,
                customer_id=request.customer_id,
                type=request.type,
                properties=request.properties,
                ts=ts.astimezone(dt.UTC),  # within its bounds: no overflow
                received_ts=now,
            )
            if self.log is not None:
                await self.log.commit(log_record(event))
            kept, new = await asyncio.to_thread(self.inbox.add, event)
        self.metrics.events.labels("new" if new else "duplicate").inc()
        return {
            "event_id": kept.event_id,
            "accepted": True,
            "duplicate": not new,
            "ts": kept.ts.isoformat(),
        }

    def _check_ts(self, ts: dt.datetime, now: dt.datetime) -> None:
        if ts.tzinfo is None or ts.utcoffset() is None:
            raise InvalidRequest([field_error(["body", "ts"], "expected a timestamp with zone")])
        earliest, latest = self.rules.window(None, now)
        if not earliest <= ts <= latest:  # compared as given: never converted, never overflows
            settings = self.rules.settings
            expected = (
                f"expected a time from {earliest.isoformat()} to {latest.isoformat()}: at most "
                f"{settings.max_age_days:g} days before now and {settings.max_clock_skew_s:g} s "
                "after it (serving.yaml outcomes)"
            )
            raise InvalidRequest([field_error(["body", "ts"], expected)])

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
        self.inbox.close()
