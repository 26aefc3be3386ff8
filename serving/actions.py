"""The action service: commit a decision's action to a channel, through every check.

`/v1/decide` never contacts anyone; `ActionService.commit` (``POST /v1/actions``) is the path
that does. It finds what the decision offered (`liftgate.governance.offers`, written by the
decision service on any replica), asks the consent store — authoritative, not a cache — and
the creative store, runs the checks (`liftgate.governance.checks.evaluate`), and stores the
answer with the caps counted, the action and its delivery in one transaction of the action
store (`liftgate.governance.action_store`). Every new answer is audited (the customer only
as a pseudonym), logged to the action log and counted; a retry with the same idempotency
key gets the stored answer, before any check, so that it stays the same when the state
has moved on (the decision expired since, the consent was revoked).

The store's transaction, the lookups and the audit append (each fsynced) run on a worker
thread: a commit waiting for another replica's write lock does not stall the event loop.

An action whose commit is stored but whose action log row cannot be written is answered
503 (like a decision that cannot be logged); it stands, and its retry gets the stored
answer. A commit is refused 503 up front while the action log is not healthy.

>>> import asyncio, datetime as dt, tempfile
>>> from configs.loader import load_config
>>> from liftgate.core.home import Home
>>> from serving.api_models import ActionRequest
>>> config = load_config()
>>> with tempfile.TemporaryDirectory() as root:
...     home = Home(Path(root))
...     service = ActionService.for_home(config, home, ServingMetrics(), log=None)
...     request = ActionRequest(decision_id="forged", action="email_10", channel="email",
...                             campaign_id="spring", idempotency_key="k1")
...     answer = asyncio.run(service.commit(request, who="key:0123456789ab"))
...     state = service.get(answer.action_id)
...     service.close()
>>> answer.status, answer.check, state["history"][0]["status"]
('refused', 'decision', 'refused')
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from configs.loader import LiftgateConfig
from configs.schema import ActionsConfig, ActionSettings
from experiments.logs.schema import ActionRecord
from experiments.logs.wal import LogUnavailable
from experiments.logs.writer import LogWriter
from liftgate.core import audit
from liftgate.core.clock import utc_now
from liftgate.core.home import Home
from liftgate.governance.action_log import commit_record
from liftgate.governance.action_request import ActionRequestData
from liftgate.governance.action_store import DRY_RUN, QUEUED, ActionStore, Commit
from liftgate.governance.checks import IDEMPOTENCY, InvalidActionRequest, evaluate, expires_at
from liftgate.governance.consent import ConsentStore
from liftgate.governance.creatives import CreativeStore
from liftgate.governance.offers import OfferIndex, OfferReader
from liftgate.governance.pseudonyms import Pseudonyms
from serving.api_models import ActionRequest
from serving.decision_ids import DecisionIds
from serving.metrics import ServingMetrics
from serving.service import InvalidRequest, field_error

#: The audit record of each new answer, by its status.
AUDIT_ACTIONS = {QUEUED: "action_committed", DRY_RUN: "action_dry_run"}
AUDIT_REFUSED = "action_refused"


class ConsentLookup(Protocol):
    def is_granted(self, customer_id: str, channel: str) -> bool: ...

    def close(self) -> None: ...


class CreativeLookup(Protocol):
    def status(self, creative_id: str) -> str | None: ...

    def close(self) -> None: ...


class ActionService:
    def __init__(
        self,
        *,
        actions: ActionsConfig,
        settings: ActionSettings,
        decision_ids: DecisionIds,
        offers: OfferReader,
        consent: ConsentLookup,
        creatives: CreativeLookup,
        store: ActionStore,
        log: LogWriter[ActionRecord] | None,
        audit_log: Path,
        pseudonyms: Pseudonyms,
        metrics: ServingMetrics,
        clock: Callable[[], dt.datetime] = utc_now,
    ):
        self.actions = actions
        self.settings = settings
        self.decision_ids = decision_ids
        self.offers = offers
        self.consent = consent
        self.creatives = creatives
        self.store = store
        self.log = log
        self.audit_log = audit_log
        self.pseudonyms = pseudonyms
        self.metrics = metrics
        self.clock = clock
        self.channel_of = {action.id: action.channel for action in actions.actions}

    @classmethod
    def for_home(
        cls,
        config: LiftgateConfig,
        home: Home,
        metrics: ServingMetrics,
        log: LogWriter[ActionRecord] | None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> ActionService:
        """A replica's service over the stores under `home`, logging to `log`; checked on
        `clock` (default: the wall clock)."""
        return cls(
            actions=config.actions,
            settings=config.serving.actions,
            decision_ids=DecisionIds.for_home(home),
            offers=OfferIndex.reader(home.offers),
            consent=ConsentStore.reader(home.consent),
            creatives=CreativeStore(home.creatives),
            store=ActionStore(home.actions),
            log=log,
            audit_log=home.audit_log,
            pseudonyms=Pseudonyms.for_home(home),
            metrics=metrics,
            clock=clock or utc_now,
        )

    def _data(self, request: ActionRequest) -> ActionRequestData:
        ttl_seconds = request.ttl_seconds or self.settings.default_ttl_s
        return ActionRequestData(**{**request.model_dump(), "ttl_seconds": ttl_seconds})

    async def commit(self, request: ActionRequest, who: str) -> Commit:
        """The answer to `request` sent by `who` (its API key, for the audit log); the HTTP
        layer renders it (202, or 409 when refused). `InvalidRequest` for a body no state
        could accept; `LogUnavailable` when the action log cannot be written."""
        if self.log is not None and not self.log.healthy:
            raise LogUnavailable("the action log cannot be written now")
        data = self._data(request)
        now = self.clock()
        commit, customer_id = await asyncio.to_thread(self._commit, data, now, who)
        if not commit.replayed:
            self.metrics.actions.labels(commit.status, commit.check or "").inc()
        if self.log is not None and not commit.replayed and commit.check != IDEMPOTENCY:
            await self.log.commit(commit_record(data, commit, customer_id=customer_id, ts=now))
        return commit

    def _commit(
        self, data: ActionRequestData, now: dt.datetime, who: str
    ) -> tuple[Commit, str | None]:
        stored = self.store.answer_for(data)  # a retry: the first answer, whatever changed
        if stored is not None:
            return stored, None
        issued = self.decision_ids.issued(data.decision_id)  # a forged id: no lookup
        offer = self.offers.find(data.decision_id) if issued else None
        customer_id = offer.customer_id if offer else None
        policy = self.actions.channel_policy(data.channel)
        consent_granted = customer_id is not None and (
            not self.actions.needs_consent(data.channel)
            or self.consent.is_granted(customer_id, data.channel)
        )
        creative_status = self._creative_status(data)
        try:
            refusal = evaluate(
                data,
                offer,
                channel_of=self.channel_of,
                policy=policy,
                consent_granted=consent_granted,
                creative_status=creative_status,
                now=now,
                max_ttl_s=self.settings.max_ttl_s,
            )
        except InvalidActionRequest as invalid:
            raise InvalidRequest(
                [field_error(["body", name], f"expected {what}") for name, what in invalid.problems]
            ) from None
        commit = self.store.commit(
            data,
            customer_id=customer_id,
            expires_at=None if offer is None else expires_at(data, offer),
            refusal=refusal,
            caps=policy.caps,
            now=now,
        )
        if not commit.replayed and commit.check != IDEMPOTENCY:
            self._audit(data, commit, customer_id, who)
        return commit, customer_id

    def _creative_status(self, data: ActionRequestData) -> str | None:
        """The request's creative's review status; a creative of another action is not this
        action's, whatever its status (None: no creative given, or an unknown id)."""
        if data.creative_id is None:
            return None
        creative = self.creatives.get(data.creative_id)
        if creative is None:
            return None
        if creative.action != data.action:
            return f"registered for {creative.action}"
        return creative.status

    def _audit(
        self, data: ActionRequestData, commit: Commit, customer_id: str | None, who: str
    ) -> None:
        audit.append(
            self.audit_log,
            AUDIT_ACTIONS.get(commit.status, AUDIT_REFUSED),
            who=who,
            action_id=commit.action_id,
            decision_id=data.decision_id,
            campaign=data.campaign_id,
            channel=data.channel,
            check=commit.check,
            dry_run=data.dry_run,
            # Never the id: the chained audit log cannot be rewritten when a customer is erased.
            customer=None if customer_id is None else self.pseudonyms.of(customer_id),
        )

    def get(self, action_id: str) -> dict[str, Any] | None:
        """The action's status and history, or None for an unknown id."""
        return self.store.get(action_id)

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
        for part in (self.offers, self.consent, self.creatives, self.store):
            part.close()
