"""Erasing a customer from everything liftgate keeps, and the logs' retention
(`liftgate privacy`, and `liftgate serve` daily).

:func:`erase_customer` goes through every store that names the customer, in an order that
a crash at any point can be followed by a second run that finishes the job (each step is
idempotent, and the decision log, which links the customer to their decision ids, is
rewritten last):

1. the consent store: history and grants go, a revocation per channel stays (so that an
   old grant arriving later cannot restore consent), and from then on no action of theirs
   passes the consent check;
2. the action store (actions, their history, queued deliveries), the offers index and
   the event inbox (the customer's events, which journeys read);
3. the logs' write-ahead segments are waited for, and the decision ids collected
   (:func:`liftgate.governance.log_erasure.settle`);
4. the outcome ledger (by decision id), then the outcome, action, event and decision logs
   (:func:`liftgate.governance.log_erasure.erase_logs`) and the online store's table;
5. an audit record, ``customer_erased``, with the counts and the customer's pseudonym:
   the audit log is hash-chained and never rewritten, so it never holds a customer id.

The online store's file is rewritten, but running replicas keep the table they loaded
until they restart (or redeploy). The file connector's deliveries (``deliveries/``) are
the receiving channel's copy, like a webhook receiver's, and are not touched.

>>> import tempfile
>>> from configs.loader import load_config
>>> with tempfile.TemporaryDirectory() as tmp:
...     report = erase_customer(Home(Path(tmp)), load_config(), "c1", who="dpo", settle_s=0)
>>> report.complete, report.logs.decisions.rows, report.consent_channels
(True, 0, 0)
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from configs.loader import LiftgateConfig
from liftgate.core import audit
from liftgate.core.errors import InputError
from liftgate.core.home import Home
from liftgate.governance.action_store import ActionStore
from liftgate.governance.consent import ConsentStore
from liftgate.governance.erasure import erase_from_file
from liftgate.governance.events import EventInbox
from liftgate.governance.log_erasure import (
    CUSTOMER_COLUMN,
    LogErasure,
    erase_logs,
    logs_of,
    settle,
)
from liftgate.governance.offers import OfferIndex
from liftgate.governance.pseudonyms import Pseudonyms
from liftgate.governance.retention import delete_expired
from serving.outcome_ledger import OutcomeLedger

logger = logging.getLogger(__name__)

#: How often `liftgate serve` applies the retention.
RETENTION_INTERVAL_S = 86_400.0


@dataclass(frozen=True)
class ErasureReport:
    """What :func:`erase_customer` removed, store by store; ``unsettled`` names the
    write-ahead segments that still held rows of the customer (run it again)."""

    customer: str  # the pseudonym
    consent_channels: int  # channels left with a revocation
    actions: int
    offers: int
    inbox_events: int
    ledger_rows: int
    online_store_rows: int
    logs: LogErasure
    unsettled: tuple[Path, ...]

    @property
    def complete(self) -> bool:
        return not self.unsettled

    def counts(self) -> dict[str, int]:
        """Rows removed per store (what the audit record keeps)."""
        return {
            "decision_rows": self.logs.decisions.rows,
            "outcome_rows": self.logs.outcomes.rows,
            "action_log_rows": self.logs.actions.rows,
            "event_log_rows": self.logs.events.rows,
            "inbox_events": self.inbox_events,
            "actions": self.actions,
            "offers": self.offers,
            "ledger_rows": self.ledger_rows,
            "online_store_rows": self.online_store_rows,
            "consent_channels": self.consent_channels,
        }

    def to_json(self) -> dict:
        return {
            "customer": self.customer,
            "complete": self.complete,
            "counts": self.counts(),
            "logs": self.logs.to_json(),
            "unsettled_segments": [str(path) for path in self.unsettled],
        }


def settle_seconds(config: LiftgateConfig) -> float:
    """How long an erasure waits for the log writers' segments: a healthy writer writes
    its rows as Parquet within ``serving.decision_log.max_age_s``; three times that, plus
    five seconds for a loaded machine."""
    return 3 * config.serving.decision_log.max_age_s + 5.0


def erase_customer(
    home: Home,
    config: LiftgateConfig,
    customer_id: str,
    who: str | None = None,
    *,
    settle_s: float | None = None,
) -> ErasureReport:
    """Erase the customer from every store (see the module); the report says what went."""
    from serving.feature_stores import customers_path

    if not customer_id.strip():
        raise InputError("expected a customer id; got an empty one", parameter="customer_id")
    pseudonym = Pseudonyms.for_home(home).of(customer_id)
    with closing(ConsentStore(home.consent)) as consent:
        consent_channels = consent.erase(customer_id)
    with closing(ActionStore(home.actions)) as action_store:
        actions = action_store.erase(customer_id)
    with closing(OfferIndex.reader(home.offers)) as offers_index:
        offers = offers_index.erase(customer_id)
    with closing(EventInbox.for_home(home)) as inbox:
        inbox_events = inbox.erase(customer_id)
    settled = settle(
        home, customer_id, settle_s=settle_seconds(config) if settle_s is None else settle_s
    )
    with closing(OutcomeLedger(home.outcome_ledger)) as ledger:
        ledger_rows = ledger.erase(settled.decision_ids)
    logs = erase_logs(home, customer_id, settled.decision_ids)
    online_store_rows = erase_from_file(
        customers_path(config, home), CUSTOMER_COLUMN, {customer_id}
    )
    report = ErasureReport(
        customer=pseudonym,
        consent_channels=consent_channels,
        actions=actions,
        offers=offers,
        inbox_events=inbox_events,
        ledger_rows=ledger_rows,
        online_store_rows=online_store_rows,
        logs=logs,
        unsettled=settled.unsettled,
    )
    audit.append(
        home.audit_log,
        "customer_erased",
        who=who,
        customer=pseudonym,
        complete=report.complete,
        **report.counts(),
    )
    return report


def retention_days(config: LiftgateConfig, days: int | None) -> int:
    """``days`` if given, else ``serving.privacy.retention_days``; an InputError naming
    both if neither is set."""
    if days is not None:
        return days
    configured = config.serving.privacy.retention_days
    if configured is None:
        raise InputError(
            "no retention set: pass --days N, or set serving.privacy.retention_days in "
            f"{config.directory / 'serving.yaml'}",
            parameter="days",
        )
    return configured


def apply_retention(
    home: Home, days: int, now: dt.datetime, who: str | None = None, *, dry_run: bool = False
) -> list[Path]:
    """Delete the log partitions older than ``days`` (:mod:`liftgate.governance.retention`)
    and audit it; return them (with ``dry_run``: what would go, nothing deleted)."""
    logs = [directory for directory, _ in logs_of(home)]
    deleted = delete_expired(logs, days, now, dry_run=dry_run)
    if deleted and not dry_run:
        audit.append(
            home.audit_log,
            "log_retention",
            who=who,
            days=days,
            partitions=[str(path.relative_to(home.root)) for path in deleted],
        )
    return deleted


def prune_offers(home: Home, max_ttl_s: float, now: dt.datetime) -> int:
    """Delete the offers no commit can use any more (older than the largest TTL a commit
    may ask for: it would be refused as expired), and the empty shards of dead writers."""
    with closing(OfferIndex.reader(home.offers)) as offers:
        return offers.prune(now - dt.timedelta(seconds=max_ttl_s))


def housekeeping_loop(
    home: Home,
    days: int | None,
    max_ttl_s: float,
    stop: threading.Event,
    report: Callable[[list[Path]], None],
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    interval_s: float = RETENTION_INTERVAL_S,
) -> None:
    """Now and every ``interval_s`` until ``stop`` is set (the thread `liftgate serve`
    runs): prune the offers index and, with ``days``, apply the log retention (`report`
    gets the deleted partitions). A failure is logged, and retried at the next turn."""
    while True:
        try:
            prune_offers(home, max_ttl_s, now())
            if days is not None:
                report(apply_retention(home, days, now()))
        except Exception:
            logger.exception("housekeeping (offers, log retention of %s days) failed", days)
        if stop.wait(interval_s):
            return
