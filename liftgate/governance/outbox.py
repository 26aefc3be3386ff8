"""The outbox worker: delivers committed actions, retries with backoff, records each attempt.

`POST /v1/actions` commits an action and its outbox entry in one transaction of the action
store (`liftgate.governance.action_store`); this worker delivers them. Each round it
*claims* the due entries for `lease_s` (`ActionStore.claim_due`: an entry is due once its
``send_at`` and its next attempt's time have come), so that workers in other processes
leave them alone, and for each one:

- past its ``expires_at``: failed, ``expired``, never sent;
- otherwise handed to its channel's connector (`liftgate.governance.connectors`), and the
  attempt recorded (`ActionStore.record_attempt`) and logged (the action log): delivered;
  or, if the connector says it may pass later, attempts remain and the action has not
  expired by then, retried after `retry_delay`; or failed.

A worker killed after claiming loses nothing: once the lease expires, any worker claims the
entry again and delivers it. It may then be delivered twice (the first delivery may have
reached the receiver before the kill), so delivery is at least once, and receivers drop
repeats by the idempotency key that every payload carries.

`retry_delay` is the backoff: doubling from `backoff_s`, capped at `max_backoff_s`, each
delay drawn in its upper half from a hash of the action id (workers retrying a burst of
failures do not return all at once, yet a delay replays exactly); None once `max_attempts`
attempts were made.

>>> from configs.schema import DeliverySettings
>>> settings = DeliverySettings(backoff_s=1, max_backoff_s=10, max_attempts=6)
>>> [round(retry_delay(n, settings, "a1"), 2) for n in range(1, 6)]  # after attempt n
[0.59, 1.61, 3.59, 4.99, 6.86]
>>> retry_delay(6, settings, "a1") is None
True
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from configs.schema import DeliverySettings
from experiments.logs.schema import ActionRecord
from experiments.logs.wal import LogUnavailable
from experiments.logs.writer import LogWriter
from liftgate.core.allocation import unit_draw
from liftgate.core.clock import utc_now
from liftgate.core.home import Home
from liftgate.governance.action_log import attempt_record
from liftgate.governance.action_store import (
    ATTEMPT_FAILED,
    DELIVERED,
    FAILED,
    ActionStore,
    Delivery,
)
from liftgate.governance.connectors import Connector, DeliveryFailed, connectors_for, payload_of
from liftgate.governance.creatives import CreativeStore

if TYPE_CHECKING:
    from configs.loader import LiftgateConfig

logger = logging.getLogger(__name__)

#: What became of one attempt: a counter of `DeliveryRound`.
Outcome = Literal["delivered", "retried", "failed", "expired"]
#: The action log's (and the store history's) status of each outcome.
LOGGED_STATUS: dict[Outcome, str] = {
    "delivered": DELIVERED,
    "retried": ATTEMPT_FAILED,
    "failed": FAILED,
    "expired": FAILED,
}

#: A round stops handing out deliveries after this share of the lease, so that no entry it
#: claimed is claimed again by another worker while it is still being delivered here.
LEASE_SHARE_PER_ROUND = 0.5


def retry_delay(attempts: int, settings: DeliverySettings, action_id: str) -> float | None:
    """Seconds to wait after `attempts` failed attempts of `action_id`, or None when
    `settings.max_attempts` were made: in (ceiling / 2, ceiling], where the ceiling is
    ``backoff_s · 2^(attempts − 1)``, at most `max_backoff_s`."""
    if attempts >= settings.max_attempts:
        return None
    ceiling = min(settings.backoff_s * 2.0 ** (attempts - 1), settings.max_backoff_s)
    return ceiling * (1.0 - unit_draw(f"{action_id}:{attempts}") / 2.0)


@dataclass
class DeliveryRound:
    """What one or more rounds did: entries claimed, and what became of them."""

    claimed: int = 0
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    expired: int = 0
    left: int = 0  # not tried: the round ran out of lease; claimed again once it expires

    def count(self, outcome: Outcome) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)

    def __add__(self, other: DeliveryRound) -> DeliveryRound:
        return DeliveryRound(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        )

    def to_json(self) -> dict[str, int]:
        return asdict(self)

    def __str__(self) -> str:
        counts = [f"{name} {value}" for name, value in asdict(self).items() if value]
        return ", ".join(counts) or "nothing due"


class OutboxWorker:
    """Delivers the store's due outbox entries through `connectors` (by channel).

    `log` receives an action log record per attempt; `creative_text` finds the text of a
    creative by id (None: payloads carry the creative's id alone); `clock` tells the time
    of a round that is not given one."""

    def __init__(
        self,
        store: ActionStore,
        connectors: Mapping[str, Connector],
        settings: DeliverySettings,
        log: LogWriter[ActionRecord] | None = None,
        clock: Callable[[], datetime] = utc_now,
        creative_text: Callable[[str], str | None] | None = None,
    ):
        self.store = store
        self.connectors = connectors
        self.settings = settings
        self.log = log
        self.clock = clock
        self.creative_text = creative_text

    def run_once(self, now: datetime | None = None) -> DeliveryRound:
        """One round at `now` (default: the clock): claim the due entries, deliver each."""
        now = self.clock() if now is None else now
        claimed = self.store.claim_due(now, self.settings.batch_size, self.settings.lease_s)
        done = DeliveryRound(claimed=len(claimed))
        deadline = time.monotonic() + self.settings.lease_s * LEASE_SHARE_PER_ROUND
        for delivery in claimed:
            if time.monotonic() > deadline:
                done.left += 1
            else:
                done.count(self._attempt(delivery, now))
        return done

    def run(
        self, stop: threading.Event, report: Callable[[DeliveryRound], None] = lambda done: None
    ) -> None:
        """Rounds until `stop` is set: at once after a full batch, else every `poll_s`;
        `report` gets each round that claimed something. A round that fails (the store busy
        beyond its timeout, say) is logged and the next one tries again."""
        while not stop.is_set():
            try:
                done = self.run_once()
            except Exception:  # keep delivering; the next round retries
                logger.exception("outbox round failed")
                stop.wait(self.settings.poll_s)
                continue
            if done.claimed:
                report(done)
            if done.claimed < self.settings.batch_size:
                stop.wait(self.settings.poll_s)

    def _attempt(self, delivery: Delivery, now: datetime) -> Outcome:
        if delivery.expires_at <= now:
            return self._record(delivery, now, "expired", "expired", None)
        connector = self.connectors.get(delivery.channel)
        if connector is None:
            detail = f"no connector for channel {delivery.channel!r}"
            return self._failed(delivery, now, detail, retryable=False)
        try:
            connector.deliver(delivery, self._payload(delivery))
        except DeliveryFailed as exc:
            return self._failed(delivery, now, exc.detail, exc.retryable)
        except Exception as exc:  # a connector's bug must not stop delivery of the others
            logger.exception("the connector of %r failed", delivery.channel)
            return self._failed(delivery, now, f"{type(exc).__name__}: {exc}", retryable=True)
        return self._record(delivery, now, "delivered", "delivered", None)

    def _failed(self, delivery: Delivery, now: datetime, detail: str, retryable: bool) -> Outcome:
        attempts = delivery.attempts + 1
        delay = retry_delay(attempts, self.settings, delivery.action_id) if retryable else None
        if delay is None:
            why = "retries exhausted" if retryable else "not retryable"
            return self._record(delivery, now, "failed", f"{detail} ({why})", None)
        retry_at = now + timedelta(seconds=delay)
        if retry_at >= delivery.expires_at:
            return self._record(delivery, now, "failed", f"{detail} (expires before a retry)", None)
        return self._record(delivery, now, "retried", detail, retry_at)

    def _record(
        self,
        delivery: Delivery,
        now: datetime,
        outcome: Outcome,
        detail: str,
        retry_at: datetime | None,
    ) -> Outcome:
        """The store first: it is the truth a retry and `GET /v1/actions` read."""
        ok = outcome == "delivered"
        self.store.record_attempt(
            delivery.action_id, ok=ok, detail=detail, now=now, retry_at=retry_at
        )
        if self.log is not None:
            record = attempt_record(delivery, status=LOGGED_STATUS[outcome], detail=detail, ts=now)
            try:
                self.log.append(record)
            except LogUnavailable:  # the store has the attempt; the log is its copy
                logger.exception("the action log refused the attempt of %s", delivery.action_id)
        return outcome

    def _payload(self, delivery: Delivery) -> dict:
        text = None
        if delivery.creative_id is not None and self.creative_text is not None:
            text = self.creative_text(delivery.creative_id)
        return payload_of(delivery, text)


@contextmanager
def delivery_worker(
    config: LiftgateConfig, home: Home, clock: Callable[[], datetime] = utc_now
) -> Iterator[OutboxWorker]:
    """The worker of `liftgate serve` and `liftgate actions deliver`: the home's action
    store, each channel's configured connector, the text of creatives, and the action log
    (with the decision log's settings), flushed and closed when the block ends; on `clock`
    (a journey demo's compressed one: its actions expire in journey time)."""
    log_settings = config.serving.decision_log
    log = LogWriter(
        home.action_log,
        ActionRecord,
        max_rows=log_settings.max_rows,
        max_age_s=log_settings.max_age_s,
        fsync=log_settings.fsync,
        group_commit_ms=log_settings.group_commit_ms,
        max_buffered_rows=log_settings.max_buffered_rows,
    ).start()
    store, creatives = ActionStore(home.actions), CreativeStore(home.creatives)

    def creative_text(creative_id: str) -> str | None:
        creative = creatives.get(creative_id)
        return None if creative is None else creative.text

    connectors = connectors_for(config.actions, home)
    delivery = config.serving.actions.delivery
    try:
        yield OutboxWorker(
            store, connectors, delivery, log, creative_text=creative_text, clock=clock
        )
    finally:
        log.close()
        store.close()
        creatives.close()
