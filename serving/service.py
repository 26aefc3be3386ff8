"""The decision service: feature fetch → scoring → allocation → log, as a plain class.

`DecisionService` is what the HTTP layer calls, in the Ray Serve ingress and in the plain
FastAPI baseline alike. Its stages are async callables, so the same code runs them
in-process (the fused topology) or through Ray Serve deployment handles (composed).

A decision is always answerable: if the features, the model or the scoring time budget
fail, it answers from the rules-based fallback (the first eligible action in the
catalogue's fallback order), flags it, logs it and counts it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from configs.schema import ArmConfig, OutcomeSettings
from experiments.canary import CanarySplit
from experiments.logs.schema import DecisionRecord, OutcomeRecord
from experiments.logs.writer import LogWriter
from experiments.router import Assignment, ExperimentRouter
from liftgate.core.allocation import epsilon_greedy, ranked_order, unit_draw
from liftgate.core.catalogue import ActionCatalogue
from liftgate.core.contract import FeatureContract
from liftgate.core.model import CONFIDENCE_LEVEL, CONFIDENCE_METHOD
from liftgate.core.scoring import Scores
from liftgate.core.vocabulary import CANARY, EPSILON_GREEDY, RULES, RULES_FALLBACK, UNIFORM_RANDOM
from liftgate.governance.offers import OfferWriter
from serving.api_models import DecideRequest, OutcomeRequest
from serving.decision_ids import DecisionIds
from serving.metrics import ServingMetrics
from serving.online_store import FeatureLookup
from serving.outcome_ledger import OutcomeLedger
from serving.outcome_rules import OutcomeRules

logger = logging.getLogger(__name__)


class InvalidRequest(ValueError):
    """Input the service can describe: answered with 422 and these field errors."""

    def __init__(self, errors: list[dict[str, Any]]):
        super().__init__(errors)
        self.errors = errors


class ModelUnavailable(RuntimeError):
    """No scoring model is loaded (registry down, alias missing)."""


@dataclass(frozen=True)
class ServedModel:
    name: str
    version: str | None
    alias: str


@dataclass(frozen=True)
class Allocation:
    """What an arm policy chose: a position among the eligible candidates, the exact
    probability it had, and (optionally) every candidate's probability, aligned."""

    index: int
    propensity: float
    propensities: np.ndarray | None = None


class ArmPolicy(Protocol):
    """An arm's allocation policy beyond the built-in ones (a served bandit, uplift targeting).

    `name` is what the response and the log carry as `policy`. With `needs_scores` the
    scoring stage runs first and a scoring failure falls back to the rules, as for the
    built-in policies; without it, `scores` is None and scoring is skipped.
    """

    name: str
    needs_scores: bool

    def allocate(
        self, decision_id: str, features: np.ndarray, eligible: np.ndarray, scores: Scores | None
    ) -> Allocation: ...


Fetch = Callable[[str, dict | None], Awaitable[FeatureLookup]]
#: The channels a customer has granted, read from the consent store on every decision
#: (liftgate.governance.consent.ConsentReader.granted_channels): a revocation applies to
#: the next decision on every replica.
ConsentLookup = Callable[[str], frozenset[str]]
#: (features, candidate codes, model: an alias or version, None for the service's default)
Score = Callable[[np.ndarray, np.ndarray, str | None], Awaitable[tuple[Scores, ServedModel]]]
NO_EXPERIMENTS = ExperimentRouter([])
DEFAULT_OUTCOME_RULES = OutcomeRules(OutcomeSettings())  # serving.yaml's defaults


BUILT_IN_POLICIES = (EPSILON_GREEDY, UNIFORM_RANDOM, RULES)


def no_arm_policy(assignment: Assignment) -> ArmPolicy | None:
    return None


def no_canary() -> CanarySplit | None:
    return None


async def _always_ready() -> dict[str, bool]:
    return {}


def field_error(loc: list, msg: str, kind: str = "value_error") -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "type": kind}


class DecisionService:
    def __init__(
        self,
        *,
        contract: FeatureContract,
        catalogue: ActionCatalogue,
        fetch: Fetch,
        score: Score,
        model_name: str,
        model_alias: str,
        epsilon: float,
        scoring_budget_s: float,
        decision_log: LogWriter[DecisionRecord] | None,
        outcome_log: LogWriter[OutcomeRecord] | None,
        outcome_ledger: OutcomeLedger | None,
        decision_ids: DecisionIds,
        consent: ConsentLookup,
        metrics: ServingMetrics | None = None,
        max_candidates: int = 50,
        ready: Callable[[], Awaitable[dict[str, bool]]] | None = None,
        experiments: Callable[[], ExperimentRouter] = lambda: NO_EXPERIMENTS,
        arm_policies: Callable[[Assignment], ArmPolicy | None] = no_arm_policy,
        canary: Callable[[], CanarySplit | None] = no_canary,
        remote_scoring: bool = False,
        outcome_rules: OutcomeRules = DEFAULT_OUTCOME_RULES,
        offers: OfferWriter | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ):
        self.contract = contract
        self.catalogue = catalogue
        self.fetch = fetch
        self.score = score
        self.model_name = model_name
        self.model_alias = model_alias
        self.epsilon = epsilon
        self.scoring_budget_s = scoring_budget_s
        self.decision_log = decision_log
        self.outcome_log = outcome_log
        self.outcome_ledger = outcome_ledger
        self.decision_ids = decision_ids
        self.consent = consent
        self._consent_masks: dict[frozenset[str], np.ndarray] = {}
        self.metrics = metrics or ServingMetrics()
        self.max_candidates = max_candidates
        self._ready = ready or _always_ready
        self.experiments = experiments
        self.arm_policies = arm_policies
        self.canary = canary
        self.remote_scoring = remote_scoring
        self.outcome_rules = outcome_rules
        self.offers = offers  # what each decision offered, for POST /v1/actions
        # The time of decisions, their ids and offers; None: the wall clock, read the cheap
        # way. A journey worker passes its (compressed) clock, the one its sends are checked on.
        self.clock = clock
        self._fallback_rank = {
            catalogue.index[a]: rank for rank, a in enumerate(catalogue.fallback_order)
        }
        self._all_codes = np.arange(len(catalogue))
        self._defaults, _ = contract.transform_row({})
        self._default_eligible = catalogue.eligibility_mask({}, n_rows=1)[0]

    async def readiness(self) -> dict[str, bool]:
        """The stages' readiness, and whether each log can be written (a decision or an
        outcome that cannot be logged is not acknowledged: 503)."""
        parts = dict(await self._ready())
        for name, log in (("decision_log", self.decision_log), ("outcome_log", self.outcome_log)):
            if log is not None:
                parts[name] = log.healthy
        return parts

    # --- validation --------------------------------------------------------------------------

    def _candidate_codes(self, request: DecideRequest) -> np.ndarray:
        if request.candidates is None:
            return self._all_codes
        errors = [
            field_error(
                ["body", "candidates", i],
                f"unknown action id {a!r}; expected one of {list(self.catalogue.ids)}",
            )
            for i, a in enumerate(request.candidates)
            if a not in self.catalogue.index
        ]
        if len(request.candidates) > self.max_candidates:
            errors.append(
                field_error(["body", "candidates"], f"at most {self.max_candidates} candidates")
            )
        if errors:
            raise InvalidRequest(errors)
        codes = sorted({self.catalogue.index[a] for a in request.candidates})  # catalogue order
        return np.array(codes, dtype=np.int64)

    def _check_context(self, request: DecideRequest) -> None:
        errors = [
            field_error(["body", "context", key], f"expected {expected}")
            for key, expected in self.contract.context_errors(request.context or {})
        ]
        if errors:
            raise InvalidRequest(errors)

    # --- decide ------------------------------------------------------------------------------

    async def _fetch(
        self, request: DecideRequest, trace_id: str
    ) -> tuple[FeatureLookup, str | None]:
        started = time.perf_counter()
        try:
            lookup = await self.fetch(request.customer_id, request.context)
            reason = None
        except Exception:
            # The trace id, not the customer id: the decision log joins the two for those
            # who may read it; service logs go to more places.
            logger.exception("feature fetch failed (trace %s); contract defaults", trace_id)
            lookup = FeatureLookup(self._defaults.copy(), self._default_eligible.copy(), True)
            reason = "feature_store_error"
        self.metrics.observe("features", time.perf_counter() - started)
        if lookup.repairs is not None:
            for (feature, kind), n in lookup.repairs.counts.items():
                self.metrics.repaired(feature, kind, n)
        return lookup, reason

    async def _score(
        self, features, codes, model_ref: str | None
    ) -> tuple[Scores | None, ServedModel | None, str | None]:
        started = time.perf_counter()
        try:
            # A remote stage is cancelled at the budget. In-process scoring cannot be
            # pre-empted, and wrapping it in a task would hand the event loop to other
            # work mid-request, so its elapsed time is checked when it returns.
            call = self.score(features, codes, model_ref)
            if self.remote_scoring:
                call = asyncio.wait_for(call, timeout=self.scoring_budget_s)
            scores, model = await call
            if time.perf_counter() - started > self.scoring_budget_s:
                return None, None, "scoring_timeout"
            return scores, model, None
        except TimeoutError:
            return None, None, "scoring_timeout"
        except ModelUnavailable:
            return None, None, "model_unavailable"
        except Exception:
            logger.exception("scoring failed")
            self.metrics.errors.labels("scoring").inc()
            return None, None, "scoring_error"
        finally:
            self.metrics.observe("scoring", time.perf_counter() - started)

    def _consented(self, customer_id: str, trace_id: str) -> np.ndarray:
        """Per action: does the customer's consent allow offering it? A consent store that
        cannot be read allows only the actions that need no consent (fail closed)."""
        try:
            granted = self.consent(customer_id)
        except Exception:
            logger.exception("consent lookup failed (trace %s); no consented channel", trace_id)
            self.metrics.errors.labels("consent").inc()
            granted = frozenset()
        mask = self._consent_masks.get(granted)
        if mask is None:  # a handful of channel combinations: computed once each
            mask = self._consent_masks[granted] = self.catalogue.consent_mask(granted)
        return mask

    def _arm_codes(self, codes: np.ndarray, arm: ArmConfig | None) -> np.ndarray:
        if arm is None or arm.actions is None:
            return codes
        return codes[np.isin(codes, self.catalogue.codes(arm.actions))]

    def _rules_order(self, eligible: list[int]) -> list[int]:
        return sorted(eligible, key=self._fallback_rank.__getitem__)

    async def decide(self, request: DecideRequest, trace_id: str) -> dict[str, Any]:
        started = time.perf_counter()
        codes = self._candidate_codes(request)
        if request.context:
            self._check_context(request)
        issued_at = None if self.clock is None else self.clock()
        decision_id = self.decision_ids.new(issued_at)
        assignment = self.experiments().assign(request.customer_id)
        arm = assignment.arm if assignment else None
        model_ref = arm.model if arm else None
        experiment, arm_name = (assignment.experiment, assignment.arm_name) if arm else (None, None)
        split = self.canary() if assignment is None else None  # experiments decide their model
        if split is not None:
            experiment, arm_name = split.experiment, split.variant(request.customer_id)
            model_ref = split.challenger if arm_name == CANARY else None
        lookup, reason = await self._fetch(request, trace_id)
        eligible = self._arm_codes(codes, arm)
        # No offer without consent: masked before any policy, arm, bandit or canary sees it.
        allowed = lookup.eligible & self._consented(request.customer_id, trace_id)
        eligible = eligible[allowed[eligible]]
        if len(eligible) == 0:
            raise InvalidRequest(
                [
                    field_error(
                        ["body", "candidates"],
                        f"no candidate is eligible for customer {request.customer_id!r} "
                        "(eligibility rules of actions.yaml, the customer's consent per "
                        "channel, and the experiment arm's actions)",
                    )
                ]
            )
        custom = self.arm_policies(assignment) if assignment else None
        if custom is None and arm is not None and arm.policy not in BUILT_IN_POLICIES:
            reason = reason or "policy_unavailable"  # its state is not loaded (yet)
        policy = custom.name if custom else arm.policy if arm else EPSILON_GREEDY
        needs_scores = custom.needs_scores if custom else policy != RULES
        scores = model = None
        if reason is None and needs_scores:
            scores, model, reason = await self._score(lookup.features, eligible, model_ref)

        allocation_started = time.perf_counter()
        if reason is not None:
            self.metrics.fallbacks.labels(reason).inc()
            policy = RULES_FALLBACK
            custom = None
        # Plain Python from here: a decision's few candidates cost more in NumPy calls
        # than in arithmetic.
        candidates = eligible.tolist()
        values = scores.expected_value.tolist() if scores is not None else None
        if custom is not None:
            choice = custom.allocate(decision_id, lookup.features, eligible, scores)
            chosen_code, propensity = candidates[choice.index], choice.propensity
            if values is not None:
                order = ranked_order(values)
            elif choice.propensities is not None:
                order = ranked_order(choice.propensities)
            else:
                order = None
        elif values is not None:
            epsilon = 1.0 if policy == UNIFORM_RANDOM else self.epsilon
            if arm is not None and arm.epsilon is not None and policy != UNIFORM_RANDOM:
                epsilon = arm.epsilon
            order = ranked_order(values)
            choice = epsilon_greedy(values, epsilon, unit_draw(decision_id))
            chosen_code, propensity = candidates[choice.index], choice.propensity
        else:
            order = None
        if order is None:
            ranked_codes = self._rules_order(candidates)
        else:
            ranked_codes = [candidates[i] for i in order]
        if custom is None and scores is None:
            chosen_code, propensity = ranked_codes[0], 1.0
        if scores is not None:
            ranked = self._ranked_entries(scores, values, order)
        else:
            ranked = [self._unscored_entry(c) for c in ranked_codes]
            model = model or ServedModel(self.model_name, None, self.model_alias)
        self.metrics.observe("allocation", time.perf_counter() - allocation_started)

        latency_ms = (time.perf_counter() - started) * 1000
        response = {
            "decision_id": decision_id,
            "customer_id": request.customer_id,
            "ranked": ranked,
            "chosen": self.catalogue.ids[chosen_code],
            "propensity": propensity,
            "policy": policy,
            "model": {"name": model.name, "version": model.version, "alias": model.alias},
            "experiment": experiment,
            "arm": arm_name,
            "fallback": reason is not None,
            "fallback_reason": reason,
            "cold_start": lookup.cold_start,
            "trace_id": trace_id,
            "request_id": request.request_id,
            "latency_ms": round(latency_ms, 3),
        }
        await self._log(response, lookup, scores, ranked_codes, issued_at)
        self.metrics.observe("total", time.perf_counter() - started)
        return response

    def _unscored_entry(self, code: int) -> dict[str, Any]:
        return {
            "action": self.catalogue.ids[code],
            "expected_value": None,
            "conversion_probability": None,
            "order_value": None,
            "confidence": None,
        }

    def _ranked_entries(
        self, scores: Scores, values: list[float], order: list[int]
    ) -> list[dict[str, Any]]:
        """The scored candidates' entries, best first (`values`: the expected values as a
        list). Each column becomes Python floats in one `tolist`: converting value by value
        took 4.5 µs for five candidates, this 3.1."""
        ids = self.catalogue.ids
        candidates = list(
            zip(
                scores.action_codes.tolist(),
                values,
                scores.probability.tolist(),
                scores.order_value.tolist(),
                scores.low.tolist(),
                scores.high.tolist(),
                strict=True,
            )
        )
        return [
            {
                "action": ids[code],
                "expected_value": value,
                "conversion_probability": probability,
                "order_value": order_value,
                "confidence": {
                    "low": low,
                    "high": high,
                    "level": CONFIDENCE_LEVEL,
                    "method": CONFIDENCE_METHOD,
                },
            }
            for code, value, probability, order_value, low, high in map(
                candidates.__getitem__, order
            )
        ]

    async def _log(
        self, response: dict, lookup: FeatureLookup, scores, ranked_codes, ts: dt.datetime | None
    ) -> None:
        """Log the decision and record its offer at `ts` (None: now)."""
        started = time.perf_counter()
        ts = ts or dt.datetime.now(dt.UTC)
        ids = self.catalogue.ids
        actions = [ids[c] for c in ranked_codes]
        if self.decision_log is not None:
            ranked = response["ranked"]
            if scores is not None:
                values = [r["expected_value"] for r in ranked]
                probabilities = [r["conversion_probability"] for r in ranked]
            else:
                values = probabilities = [math.nan] * len(ranked)
            await self.decision_log.commit(
                DecisionRecord(
                    decision_id=response["decision_id"],
                    ts=ts,
                    customer_id=response["customer_id"],
                    features=lookup.features.tolist(),
                    contract_version=self.contract.version,
                    actions=actions,
                    scores=values,
                    probabilities=probabilities,
                    chosen=response["chosen"],
                    propensity=response["propensity"],
                    policy=response["policy"],
                    model_name=response["model"]["name"],
                    model_version=response["model"]["version"] or "",
                    model_alias=response["model"]["alias"],
                    experiment=response["experiment"],
                    arm=response["arm"],
                    fallback=response["fallback"],
                    fallback_reason=response["fallback_reason"],
                    cold_start=response["cold_start"],
                    latency_ms=response["latency_ms"],
                    trace_id=response["trace_id"],
                    request_id=response["request_id"],
                )
            )
        if self.offers is not None:
            # After the log: only a logged (acknowledged) decision can be committed.
            try:
                self.offers.record(response["decision_id"], response["customer_id"], actions, ts)
            except OSError:  # its commits are refused (`decision`); the answer stands
                logger.exception("recording the offer failed (trace %s)", response["trace_id"])
                self.metrics.errors.labels("offers").inc()
        self.metrics.observe("log", time.perf_counter() - started)

    # --- outcomes ----------------------------------------------------------------------------

    async def record_outcome(self, outcome: OutcomeRequest) -> dict[str, Any]:
        """Log an accepted outcome once per (decision_id, event); a repeat gets the first
        answer and is not logged again (serving/outcome_ledger.py)."""
        now = dt.datetime.now(dt.UTC)
        ts = outcome.ts or now
        decided = self.decision_ids.issued_at(outcome.decision_id)
        problems = self.outcome_rules.problems(outcome.event, outcome.value, ts, decided, now)
        if problems:
            raise InvalidRequest(
                [field_error(["body", key], f"expected {expected}") for key, expected in problems]
            )
        answer = {"decision_id": outcome.decision_id, "known_decision": decided is not None}
        ledger = self.outcome_ledger
        first = None if ledger is None else ledger.first(outcome.decision_id, outcome.event)
        if first is not None:
            return {"outcome_id": first, **answer}
        outcome_id = uuid.uuid4().hex
        if self.outcome_log is not None:
            await self.outcome_log.commit(
                OutcomeRecord(
                    outcome_id=outcome_id,
                    decision_id=outcome.decision_id,
                    ts=ts.astimezone(dt.UTC),  # within the window: no overflow
                    event=outcome.event,
                    value=outcome.value,
                    received_ts=now,
                    known_decision=decided is not None,
                )
            )
        if ledger is not None:
            outcome_id = ledger.record(outcome.decision_id, outcome.event, outcome_id)
        return {"outcome_id": outcome_id, **answer}

    def close(self) -> None:
        for log in (self.decision_log, self.outcome_log):
            if log is not None:
                log.close()
        for store in (self.outcome_ledger, self.offers):
            if store is not None:
                store.close()
