"""Running a bulk campaign: every customer of its segment decided for by the decision
service, and the chosen action committed through the checks of `/v1/actions`.

Served decisions and campaign decisions are the same: each goes through
`DecisionService.decide` (the contract, the models, the experiments and the canary split,
consent, ε-greedy with its exact propensity), is logged to the decision log and recorded as
an offer; `request_id` is ``campaign:<name>``. Each chosen action that contacts someone is
committed by `ActionService.commit` with the campaign's TTL and the key
``campaign:<name>:<customer_id>``, at most `rate_per_s` commits a second; the outbox worker
of `liftgate serve` (or `liftgate actions deliver`) delivers them.

Resumable: a batch's decisions are recorded in the campaign's progress before any of them
is committed, and its customers marked finished once all are. A run stopped anywhere is
resumed by running it again: finished customers are skipped, and a decided one is committed
again with its first decision (the same request: the action store answers what it stored,
or commits it now) — no customer is decided for twice, and none queued twice.

A dry run decides (logged like any decision) and runs every check with `dry_run` commits:
nothing is queued and no progress is recorded; its keys carry a token of its own.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from configs.journey_schema import CampaignConfig
from configs.loader import LiftgateConfig
from experiments.logs.wal import LogUnavailable
from liftgate.core.errors import CheckFailed
from liftgate.core.home import Home
from liftgate.governance.action_store import DRY_RUN, QUEUED
from liftgate.journeys.campaign import (
    NO_ACTION,
    NOT_ELIGIBLE,
    CampaignProgress,
    Decided,
    Finished,
    Pacer,
    idempotency_key,
    read_segment,
)
from serving.actions import ActionService
from serving.api_models import ActionRequest, DecideRequest
from serving.components import READY_WAIT_S, build_action_service, build_service
from serving.feature_stores import customers_path
from serving.service import DecisionService, InvalidRequest

#: Decisions made at once: their log writes share an fsync (group commit).
BATCH_SIZE = 32
#: The channel of actions that contact no one.
NO_CHANNEL = "none"


@dataclass
class Tally:
    """What a run did, customer by customer."""

    customers_in_segment: int
    skipped_already_done: int
    decided: int = 0
    resumed: int = 0  # decided for by a stopped run, committed by this one
    queued: int = 0
    would_queue: int = 0  # a dry run's: every check passed
    refused: int = 0
    refused_by_check: Counter[str] = field(default_factory=Counter)
    no_action: int = 0
    not_eligible: int = 0

    def count(self, status: str, check: str | None) -> None:
        if status == QUEUED:
            self.queued += 1
        elif status == DRY_RUN:
            self.would_queue += 1
        elif status == NO_ACTION:
            self.no_action += 1
        elif status == NOT_ELIGIBLE:
            self.not_eligible += 1
        else:
            self.refused += 1
            self.refused_by_check[check or "unknown"] += 1

    def summary(self, *, dry_run: bool, seconds: float, rate_per_s: float) -> dict[str, Any]:
        return {
            "customers_in_segment": self.customers_in_segment,
            "skipped_already_done": self.skipped_already_done,
            "decided": self.decided,
            "resumed": self.resumed,
            "queued": self.queued,
            "would_queue": self.would_queue,
            "refused": self.refused,
            "refused_by_check": dict(sorted(self.refused_by_check.items())),
            "no_action": self.no_action,
            "not_eligible": self.not_eligible,
            "dry_run": dry_run,
            "seconds": round(seconds, 3),
            "rate_per_s": rate_per_s,
        }


class CampaignRunner:
    """One run of `campaign` over a list of customers, through `decisions` and `actions`.

    `on_customer` is called once a customer's turn has ended (a progress bar); `clock` and
    `sleep` pace the commits (a test's own, to run without waiting).
    """

    def __init__(
        self,
        campaign: CampaignConfig,
        decisions: DecisionService,
        actions: ActionService,
        progress: CampaignProgress,
        *,
        dry_run: bool = False,
        on_customer: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        batch_size: int = BATCH_SIZE,
    ):
        self.campaign = campaign
        self.decisions = decisions
        self.actions = actions
        self.progress = progress
        self.dry_run = dry_run
        self.on_customer = on_customer
        self.clock = clock
        self.sleep = sleep
        self.batch_size = batch_size
        self.pacer = Pacer(campaign.rate_per_s)
        self.channel_of = actions.channel_of
        self.dry_run_token = secrets.token_hex(4) if dry_run else None

    async def run(self, customers: Sequence[str]) -> dict[str, Any]:
        started = self.clock()
        done = self.progress.done()
        pending = self.progress.pending()
        todo = [customer for customer in customers if customer not in done]
        tally = Tally(len(customers), len(customers) - len(todo))
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start : start + self.batch_size]
            decided = await self._decide(batch, pending, tally)
            finished = []
            for customer_id in batch:
                status, check = await self._commit(decided.get(customer_id), customer_id)
                tally.count(status, check)
                finished.append(Finished(customer_id, status, check))
                self.on_customer()
            if not self.dry_run:
                self.progress.record_finished(finished)
        seconds = self.clock() - started
        return tally.summary(
            dry_run=self.dry_run, seconds=seconds, rate_per_s=self.campaign.rate_per_s
        )

    async def _decide(
        self, batch: Sequence[str], pending: dict[str, Decided], tally: Tally
    ) -> dict[str, Decided]:
        """The batch's decisions (none for a customer no candidate is eligible for): the
        pending ones of a stopped run, the others made now, recorded before any commit."""
        resumed = {c: pending[c] for c in batch if c in pending}
        new = [c for c in batch if c not in pending]
        made = await asyncio.gather(*(self._decide_one(c) for c in new))
        fresh = [d for d in made if d is not None]
        if not self.dry_run:
            self.progress.record_decided(fresh)
        tally.decided += len(fresh)
        tally.resumed += len(resumed)
        return {**resumed, **{d.customer_id: d for d in fresh}}

    async def _decide_one(self, customer_id: str) -> Decided | None:
        request = DecideRequest(
            customer_id=customer_id,
            candidates=list(self.campaign.candidates),
            request_id=f"campaign:{self.campaign.name}",
        )
        try:
            answer = await self.decisions.decide(request, secrets.token_hex(16))
        except InvalidRequest:  # no candidate eligible for this customer (consent, rules)
            return None
        return Decided(customer_id, answer["decision_id"], answer["chosen"])

    async def _commit(self, decided: Decided | None, customer_id: str) -> tuple[str, str | None]:
        if decided is None:
            return NOT_ELIGIBLE, None
        channel = self.channel_of[decided.action]
        if channel == NO_CHANNEL:
            return NO_ACTION, None
        if not self.dry_run:
            wait = self.pacer.wait(self.clock())
            if wait > 0:
                await self.sleep(wait)
        request = ActionRequest(
            decision_id=decided.decision_id,
            action=decided.action,
            channel=channel,
            campaign_id=self.campaign.name,
            idempotency_key=idempotency_key(
                self.campaign.name, customer_id, dry_run_token=self.dry_run_token
            ),
            ttl_seconds=self.campaign.ttl.total_seconds(),
            dry_run=self.dry_run,
        )
        commit = await self.actions.commit(request, who=f"campaign:{self.campaign.name}")
        return commit.status, commit.check


def run_campaign(
    config: LiftgateConfig,
    home: Home,
    campaign: CampaignConfig,
    *,
    source: Path,
    dry_run: bool = False,
    on_start: Callable[[int, int], None] = lambda total, done: None,
    on_customer: Callable[[], None] = lambda: None,
    wait_s: float = READY_WAIT_S,
) -> dict[str, Any]:
    """Run `campaign` (read from `source`) on `home` with in-process services: the summary.

    `on_start(total, done)` is called once the segment and the progress are known;
    `CheckFailed` if the models or the features do not load within `wait_s`, or a log
    cannot be written (the run stops; run it again to resume).
    """
    customers = read_segment(customers_path(config, home), campaign.segment, source)
    decisions, components = build_service(config, home, wait_s=wait_s)
    try:
        missing = [part for part, ready in components.ready().items() if not ready]
        if missing:
            raise CheckFailed(
                f"the decision service is not ready ({', '.join(missing)} not loaded within "
                f"{wait_s:g} s): a campaign is scored by the served models, never the fallback"
            )
        actions = build_action_service(config, home, decisions.metrics)
        try:
            with closing(CampaignProgress.open(home, campaign.name)) as progress:
                on_start(len(customers), len(progress.done() & set(customers)))
                runner = CampaignRunner(
                    campaign, decisions, actions, progress, dry_run=dry_run, on_customer=on_customer
                )
                return asyncio.run(runner.run(customers))
        except LogUnavailable as exc:
            raise CheckFailed(
                f"{exc}: the campaign stopped; run it again to resume where it stopped"
            ) from None
        finally:
            actions.close()
    finally:
        decisions.close()
        components.close()
