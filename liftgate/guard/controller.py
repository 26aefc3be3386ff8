"""The rollout controller: start, step, pause, promote, abort and roll back; the guard's tick.

A rollout moves through the steps of its YAML (`configs/rollouts/`). Each tick of the guard
observes the logs (`observe`), asks the pure verdict (`verdict.judge_interval`) and acts:

- PROMOTE: the next step's weight; after the last step the challenger becomes champion
  (the old one stays as `previous`) and the canary weight goes to 0 — one transition.
  Where models.yaml requires approval for a champion, it waits at the last step (alerting)
  until someone approves who neither trained the challenger nor started the rollout;
- ROLLBACK: the canary weight to 0 and the challenger alias removed — one transition;
- HOLD: nothing (a drift hold raises an alert once per drift episode);
- INCONCLUSIVE: what `on_inconclusive` says.

Weights and aliases change together: the transition's intent is written into the rollout
record first (durably), then `transition.apply_transition` moves weights, then aliases
(retried). If a registry outage or a crash stops it midway, the intent stays in the record
and every tick first finishes it (`reconcile`), so weights, aliases and record agree again
before the guard judges anything; a rollback's intent ends at weight 0 and is never
promoted. Every verdict and action is written to the audit log; rollbacks, promotions,
drift and failures raise an alert (webhook + LIFTGATE_HOME/alerts.jsonl), and so does a
rollout record the guard cannot read (it skips that rollout and keeps guarding the
others). In `dry_run`, the guard analyses and alerts what it would do, and never acts.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from configs.loader import LiftgateConfig
from configs.schema import RolloutConfig
from experiments.canary import CanarySplit
from experiments.canary_state import read_split, write_split
from liftgate.core import audit
from liftgate.core.errors import BAD_INPUT, LiftgateError
from liftgate.core.home import Home
from liftgate.core.jsonstate import UnreadableDocument
from liftgate.core.vocabulary import CHALLENGER, CHAMPION, PREVIOUS, TAG_REPLACED_VERSION
from liftgate.guard import state as records
from liftgate.guard.alerts import deliver_alert, record_alert, webhook_url
from liftgate.guard.observe import observe
from liftgate.guard.reconcile import rollback_of
from liftgate.guard.state import Intent, RolloutRecord
from liftgate.guard.transition import apply_transition
from liftgate.guard.verdict import DriftObservation, Verdict, VerdictKind, judge_interval
from registry.errors import RegistryError

logger = logging.getLogger(__name__)

GUARD = "guard"


class RolloutError(LiftgateError, ValueError):
    """A rollout command that cannot be carried out: refused in the rollout's status (exit 1,
    the default), or about a rollout that is not defined or never started (``BAD_INPUT``)."""


class FileWeights:
    """The serving weights file as the transition's weights part: one rollout's canary
    weight (0 while the file serves no split of that rollout)."""

    def __init__(self, home: Home, rollout: RolloutConfig, challenger: str):
        self.home, self.rollout, self.challenger = home, rollout, challenger

    def get(self) -> float | None:
        """The weight served; None if the file cannot be read (the next step rewrites it)."""
        try:
            split, _ = read_split(self.home)
        except UnreadableDocument:
            return None
        return split.weight if split is not None and split.rollout == self.rollout.name else 0.0

    def set(self, weight: float) -> None:
        split = None
        if weight > 0:
            split = CanarySplit(
                rollout=self.rollout.name,
                salt=self.rollout.salt_value,
                weight=weight,
                baseline=self.rollout.baseline,
                challenger=self.challenger,
            )
        write_split(self.home, split)


class RegistryAliases:
    """The registry's aliases of one model as the transition's aliases part."""

    def __init__(self, registry, model: str, who: str, why: str):
        self.registry, self.model, self.who, self.why = registry, model, who, why

    def get(self, names: list[str]) -> dict[str, str | None]:
        aliases = self.registry.aliases(self.model)
        return {name: aliases.get(name) for name in names}

    def apply(self, target: dict[str, str | None]) -> None:
        self.registry.set_aliases(self.model, target, who=self.who, why=self.why)


def drifting(rollout: RolloutConfig, drift: DriftObservation | None) -> bool:
    return (
        drift is not None
        and drift.checked
        and (drift.dataset_drift or drift.drift_share >= rollout.drift.max_drift_share)
    )


def _parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment)


def _refused(name: str, record: RolloutRecord | None, why: str) -> RolloutError:
    """A command refused in the rollout's status (exit 1); never started is bad input (2)."""
    if record is None:
        return RolloutError(
            f"rollout {name!r} was never started (liftgate rollout start)", exit_code=BAD_INPUT
        )
    return RolloutError(f"rollout {name!r} is {record.status}{why}")


def _delivers_alerts_after(command: Callable) -> Callable:
    """A command that may raise alerts under a rollout's lock delivers them to the webhook
    when it returns (or raises), once the lock is released: a webhook that hangs never holds
    up another command. They are in alerts.jsonl already."""

    @functools.wraps(command)
    def run(self: RolloutController, *args: Any, **kwargs: Any) -> Any:
        if getattr(self._outbox, "alerts", None) is not None:  # within a command: it delivers
            return command(self, *args, **kwargs)
        self._outbox.alerts = outbox = []
        try:
            return command(self, *args, **kwargs)
        finally:
            self._outbox.alerts = None
            for document, url in outbox:
                deliver_alert(self.home, document, url)

    return run


@dataclass(frozen=True)
class RolloutStatus:
    """What `liftgate rollout status` shows: the record, the split the replicas serve (if it
    is this rollout's) with the weights file's revision, and the model's aliases."""

    record: RolloutRecord
    serving: dict[str, Any] | None
    serving_revision: int
    aliases: dict[str, str] | None  # None: the registry could not be read

    def to_json(self) -> dict[str, Any]:
        """The record's fields, then the serving split and aliases, then the last 10 events."""
        document = self.record.to_json()
        history = document.pop("history")
        return {
            **document,
            "serving": self.serving,
            "serving_revision": self.serving_revision,
            "aliases": self.aliases,
            "history": history[-10:],
        }


class RolloutController:
    def __init__(
        self,
        config: LiftgateConfig,
        home: Home,
        registry=None,
        drift_check: Callable[[RolloutConfig], DriftObservation | None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.config = config
        self.home = home
        self._registry = registry
        self.clock = clock
        self._unreadable: dict[str, str] = {}  # records alerted as unreadable: name → why
        self._outbox = threading.local()  # alerts a command of this thread delivers after it
        if drift_check is None:
            from liftgate.guard.drift_signal import drift_check as job_drift_check

            drift_check = job_drift_check(home, config, lambda: self.registry)
        self.drift_check = drift_check
        self.model = config.models.scorer.name

    @property
    def registry(self):
        if self._registry is None:
            from registry.client import ModelRegistry  # MLflow only where used

            self._registry = ModelRegistry(self.home, self.config.models.registry)
        return self._registry

    # --- lookups -------------------------------------------------------------------------

    def rollout(self, name: str) -> RolloutConfig:
        if name not in self.config.rollouts:
            known = ", ".join(sorted(self.config.rollouts)) or "none"
            raise RolloutError(
                f"no rollout {name!r} in {self.config.directory / 'rollouts'} (defined: {known})",
                exit_code=BAD_INPUT,
            )
        return self.config.rollouts[name]

    def status(self, name: str) -> RolloutStatus:
        self.rollout(name)
        record = records.read_record(self.home, name)
        if record is None:
            raise _refused(name, record, "")
        split, revision = read_split(self.home)
        serving = split.to_dict() if split and split.rollout == name else None
        try:
            aliases = self.registry.aliases(self.model)
        except RegistryError as exc:  # an outage: the record and its pending intent still show
            logger.warning("status of %s without the aliases: %s", name, exc)
            aliases = None
        return RolloutStatus(record, serving, revision, aliases)

    def active(self) -> list[str]:
        return [r.name for r in records.all_records(self.home).readable if r.active]

    # --- commands --------------------------------------------------------------------------

    @_delivers_alerts_after
    def start(self, name: str, who: str | None = None) -> RolloutRecord:
        rollout = self.rollout(name)
        who = who or audit.current_user()
        others = [n for n in self.active() if n != name]
        if others:
            raise RolloutError(f"rollout {others[0]!r} is active; one rollout at a time")
        aliases = self.registry.aliases(self.model)
        champion = aliases.get(CHAMPION)
        challenger = (
            rollout.challenger if rollout.challenger.isdigit() else aliases.get(rollout.challenger)
        )
        if champion is None or challenger is None:
            raise RolloutError(
                f"{self.model} needs a champion and a {rollout.challenger!r} version to roll out "
                f"(aliases now: {aliases or 'none'}); train one with `liftgate train`"
            )
        if champion == challenger:
            raise RolloutError(f"{self.model} v{challenger} is already the champion")
        existing = records.read_record(self.home, name)
        if existing and existing.active:
            raise RolloutError(f"rollout {name!r} is already {existing.status}")
        now = self.clock()
        ope = self._check_ope(rollout, challenger)
        new = RolloutRecord(
            name=name,
            model=self.model,
            champion=champion,
            challenger=challenger,
            status=records.RUNNING,
            step=0,
            weight=rollout.steps[0].weight,
            started_at=now.isoformat(),
            step_started_at=now.isoformat(),
            dry_run=rollout.dry_run,
            ope=ope,
            started_by=who,
        )
        with records.locked_record(self.home, name, new=new) as record:
            if ope is not None and not ope["passed"]:
                record.status = records.ABORTED
                record.add_event("ope_failed", **ope)
                self._alert(record, "rollout_blocked", "critical", ope["reason"], evidence=ope)
                self._audit("rollout_blocked", record, who, reason=ope["reason"])
                return record
            intent = Intent(
                action=records.START,
                weight=record.weight,
                step=0,
                who=who,
                why="rollout started",
                at=now.isoformat(),
            )
            if rollout.dry_run:  # analyse and alert only: nothing moves
                self._finished(record, intent, {})
            else:
                self._carry_out(rollout, record, intent)
            return record

    def pause(self, name: str, who: str | None = None) -> RolloutRecord:
        return self._set_status(name, records.RUNNING, records.PAUSED, who)

    def resume(self, name: str, who: str | None = None) -> RolloutRecord:
        return self._set_status(name, records.PAUSED, records.RUNNING, who)

    def _set_status(self, name: str, expected: str, status: str, who: str | None) -> RolloutRecord:
        self.rollout(name)
        with records.locked_record(self.home, name) as record:
            if record is None or record.status != expected:
                raise _refused(name, record, f", not {expected}")
            record.status = status
            if status == records.RUNNING:  # a resumed step starts its clock again
                record.step_started_at = self.clock().isoformat()
            record.add_event(status, who=who or audit.current_user())
            self._audit(f"rollout_{status}", record, who)
            return record

    @_delivers_alerts_after
    def promote(self, name: str, who: str | None = None, full: bool = False) -> RolloutRecord:
        """Advance one step now (or, with `full`, promote to champion), skipping analysis."""
        rollout = self.rollout(name)
        who = who or audit.current_user()
        with records.locked_record(self.home, name) as record:
            self._require_active(record, name)
            if record.pending is not None:
                raise _refused(
                    name,
                    record,
                    f" with a {record.pending.action} under way since {record.pending.at}; "
                    "the guard finishes it at its next interval",
                )
            target = len(rollout.steps) if full else record.step + 1
            self._advance(rollout, record, target, who, why=f"manual promote by {who}")
            return record

    @_delivers_alerts_after
    def abort(self, name: str, who: str | None = None, why: str = "aborted") -> RolloutRecord:
        rollout = self.rollout(name)
        who = who or audit.current_user()
        with records.locked_record(self.home, name) as record:
            self._require_active(record, name)
            self._roll_back(rollout, record, who, why, status=records.ABORTED)
            return record

    @_delivers_alerts_after
    def rollback(self, name: str, who: str | None = None) -> RolloutRecord:
        """One command: an active rollout is rolled back; a promoted one is undone (the
        champion goes back to `previous`)."""
        rollout = self.rollout(name)
        who = who or audit.current_user()
        with records.locked_record(self.home, name) as record:
            status = record.status if record else None
            if status in records.ACTIVE:
                self._roll_back(rollout, record, who, f"manual rollback by {who}")
            elif status == records.PROMOTED:
                changes = self.registry.rollback(self.model, who=who, why=f"undo rollout {name}")
                record.status = records.ROLLED_BACK
                record.add_event("promotion_undone", who=who, changes=changes)
                self._audit("rollout_promotion_undone", record, who)
            else:
                raise _refused(name, record, ": nothing to undo")
            return record

    # --- the guard -------------------------------------------------------------------------

    @_delivers_alerts_after
    def tick(self, name: str) -> dict[str, Any]:
        """One analysis interval of a running rollout: observe, judge, act."""
        rollout = self.rollout(name)
        with records.locked_record(self.home, name) as record:
            if record is None or not record.active:
                return {"rollout": name, "status": record and record.status, "verdict": None}
            action = self._reconcile(rollout, record)
            if action is not None or record.status != records.RUNNING:
                return {"rollout": name, "status": record.status, "verdict": None, "action": action}
            now = self.clock()
            started = time.perf_counter()
            observation = observe(
                self.home,
                rollout,
                _parse(record.started_at),
                record.step,
                _parse(record.step_started_at),
                now,
            )
            observed = time.perf_counter()
            drift = self._drift(rollout, record, now)
            drift_checked = time.perf_counter()
            verdict = judge_interval(
                rollout,
                observation.progress,
                observation.kpis,
                observation.operations,
                drift,
                record.operation_failures,
            )
            decided = time.perf_counter()
            record.operation_failures = verdict.operation_failures
            record.last_verdict = {
                **verdict.to_dict(),
                "at": now.isoformat(),
                "decisions": observation.decisions,
                "units": observation.units,
                "seconds": {
                    "observe": round(observed - started, 3),
                    "drift": round(drift_checked - observed, 3),
                    "judge": round(decided - drift_checked, 4),
                },
            }
            self._audit(
                "guard_verdict", record, GUARD, verdict=verdict.kind.value, summary=verdict.summary
            )
            action = self._act(rollout, record, verdict, drift, decided)
            return {
                "rollout": name,
                "status": record.status,
                "step": record.step,
                "verdict": record.last_verdict,
                "action": action,
            }

    def guard_once(self) -> list[dict[str, Any]]:
        """A tick of every active rollout; an unreadable record is reported (and alerted
        once while it stays so), never a reason to stop guarding the others."""
        found = records.all_records(self.home)
        self._unreadable = {
            name: why for name, why in self._unreadable.items() if found.unreadable.get(name) == why
        }
        results = [self._unreadable_record(name, why) for name, why in found.unreadable.items()]
        for record in found.readable:
            if not record.active:
                continue
            try:
                results.append(self.tick(record.name))
            except Exception as exc:  # one rollout's failure must not stop the others
                logger.exception("guard tick of %s failed", record.name)
                results.append({"rollout": record.name, "error": str(exc)})
        return results

    def _unreadable_record(self, name: str, why: str) -> dict[str, Any]:
        if self._unreadable.get(name) != why:
            self._unreadable[name] = why
            rollout = self.config.rollouts.get(name)
            audit.append(
                self.home.audit_log, "rollout_record_unreadable", who=GUARD, rollout=name, error=why
            )
            payload = {
                "alert": "rollout_record_unreadable",
                "severity": "critical",
                "summary": f"the record of rollout {name} cannot be read: {why}. The guard "
                "skips this rollout, leaving its weights and aliases as they are, until the "
                "file is repaired",
                "rollout": name,
                "model": self.model,
                "ts": self.clock().isoformat(),
                "links": {
                    "record": str(self.home.rollout_record(name)),
                    "audit": str(self.home.audit_log),
                },
            }
            self._raise_alert(payload, webhook_url(rollout and rollout.webhook_url))
        return {"rollout": name, "error": why}

    def _act(self, rollout, record, verdict: Verdict, drift, decided: float) -> dict | None:
        kind = verdict.kind
        if kind == VerdictKind.INCONCLUSIVE:
            kind = {
                "hold": VerdictKind.HOLD,
                "rollback": VerdictKind.ROLLBACK,
                "promote": VerdictKind.PROMOTE,
            }[rollout.on_inconclusive]
        if drifting(rollout, drift):
            if not record.drift["alerted"]:
                record.drift["alerted"] = True
                self._alert(
                    record,
                    "drift_detected",
                    "warning",
                    verdict.summary,
                    evidence=verdict.to_dict(),
                    report=drift.report_path,
                )
        elif drift is not None and drift.checked:
            record.drift["alerted"] = False  # the episode ended
        if kind == VerdictKind.HOLD:
            return None
        if rollout.dry_run:
            record.add_event("dry_run", would=kind.value, summary=verdict.summary)
            self._alert(
                record,
                f"dry_run_would_{kind.value.lower()}",
                "info",
                verdict.summary,
                evidence=verdict.to_dict(),
            )
            return {"dry_run": True, "would": kind.value}
        if kind == VerdictKind.ROLLBACK:
            return self._roll_back(rollout, record, GUARD, verdict.summary, verdict, decided)
        return self._advance(rollout, record, record.step + 1, GUARD, verdict.summary, verdict)

    # --- actions ---------------------------------------------------------------------------

    def _advance(self, rollout, record, target: int, who: str, why: str, verdict=None) -> dict:
        last = target >= len(rollout.steps) or rollout.steps[target].weight >= 1.0
        if last:
            return self._promote_to_champion(rollout, record, who, why, verdict)
        intent = Intent(
            action=records.STEP,
            weight=rollout.steps[target].weight,
            step=target,
            who=who,
            why=why,
            at=self.clock().isoformat(),
        )
        return self._carry_out(rollout, record, intent, verdict)

    def _promote_to_champion(self, rollout, record, who: str, why: str, verdict=None) -> dict:
        if self.config.models.registry.require_approval_for_champion:
            try:  # four eyes: approved by someone who neither trained it nor started this
                self.registry.check_champion_approval(
                    self.model, record.challenger, started_by=record.started_by, who=who
                )
            except RegistryError as exc:
                if who != GUARD:  # a person asked: refused, and nothing changed
                    raise
                # The guard holds at the last step, and says why, until it is approved.
                return self._transition_failed(record, records.PROMOTE, who, exc, verdict, False)
        try:  # what an abort before the promotion is done would put back
            restore = self._aliases(who, why).get([CHAMPION, PREVIOUS, CHALLENGER])
        except Exception as exc:  # the registry does not answer: the promotion waits
            return self._transition_failed(record, records.PROMOTE, who, exc, verdict, False)
        intent = Intent(
            action=records.PROMOTE,
            weight=0.0,
            aliases={CHAMPION: record.challenger, PREVIOUS: record.champion, CHALLENGER: None},
            status=records.PROMOTED,
            tags={TAG_REPLACED_VERSION: record.champion},
            restore=restore,
            who=who,
            why=why,
            at=self.clock().isoformat(),
        )
        return self._carry_out(rollout, record, intent, verdict)

    def _roll_back(
        self, rollout, record, who, why, verdict=None, decided=None, status=records.ROLLED_BACK
    ) -> dict:
        """Weight 0 and no challenger alias; it replaces whatever transition is under way."""
        at = self.clock().isoformat()
        intent = rollback_of(record.pending, status=status, who=who, why=why, at=at)
        return self._carry_out(rollout, record, intent, verdict, decided)

    # --- transitions: intent first, then weights and aliases -------------------------------

    def _carry_out(self, rollout, record, intent: Intent, verdict=None, decided=None) -> dict:
        """Write `intent` into the record, on disk before anything moves; then carry it out."""
        record.pending = intent
        records.save(self.home, record)
        return self._finish_pending(rollout, record, verdict, decided)

    def _finish_pending(self, rollout, record, verdict=None, decided=None) -> dict:
        """Carry the pending intent on from wherever it stopped (each part reads what its
        system shows); if a part still fails, the intent stays for the next tick."""
        intent = record.pending
        try:
            result = apply_transition(
                FileWeights(self.home, rollout, record.challenger),
                self._aliases(intent.who, intent.why),
                intent,
            )
            if intent.tags:
                self.registry.tag_version(self.model, record.challenger, intent.tags)
        except Exception as exc:  # a registry outage, a full disk: retried at the next tick
            logger.warning("%s of %s did not finish: %s", intent.action, record.name, exc)
            return self._transition_failed(record, intent.action, intent.who, exc, verdict, True)
        return self._finished(record, intent, result.to_dict(), verdict, decided)

    def _reconcile(self, rollout, record) -> dict | None:
        """Bring weights and aliases to the record before anything else: finish a pending
        intent; with none, set a canary weight above the record's (or an unreadable weights
        file) to the record's. A weight below it is left: without an intent, the guard never
        raises a canary's exposure. None if nothing needed doing."""
        if record.pending is not None:
            return {**self._finish_pending(rollout, record), "reconciled": True}
        expected = 0.0 if record.dry_run else record.weight
        weights = FileWeights(self.home, rollout, record.challenger)
        found = weights.get()
        if found is not None and found <= expected:
            return None
        weights.set(expected)
        record.add_event("reconciled", weight=expected, found=found)
        self._audit("rollout_reconciled", record, GUARD, found=found)
        return {"action": "reconciled", "weight": expected, "found": found}

    def _finished(self, record, intent: Intent, transition: dict, verdict=None, decided=None):
        """The record takes the intent's step, weight and status; events, audit, alerts."""
        record.pending = None
        record.weight = intent.weight
        record.step = record.step if intent.step is None else intent.step
        record.status = intent.status or record.status
        who, why = intent.who, intent.why
        if intent.action == records.START:
            record.add_event("started", step=0, weight=record.weight, who=who)
            self._audit("rollout_started", record, who)
            return {"action": "started", **transition}
        if intent.action == records.STEP:
            record.step_started_at = intent.at
            record.add_event("step", step=record.step, weight=record.weight, why=why)
            self._audit("rollout_step", record, who, why=why, transition=transition)
            return {"action": "step", "step": record.step, "weight": record.weight, **transition}
        evidence = verdict.to_dict() if verdict else None
        if intent.action == records.PROMOTE:
            record.add_event("promoted", why=why, transition=transition)
            self._audit("rollout_promoted", record, who, why=why, transition=transition)
            self._alert(
                record,
                "rollout_promoted",
                "info",
                f"{self.model} v{record.challenger} is champion (v{record.champion} kept as "
                f"previous): {why}",
                evidence=evidence,
                action=transition,
            )
            return {"action": "promoted", **transition}
        since_verdict = time.perf_counter() - decided if decided is not None else None
        action = {
            "action": "rollback",
            **transition,
            "seconds_after_verdict": None if since_verdict is None else round(since_verdict, 4),
        }
        record.add_event(record.status, why=why, transition=action)
        self._audit(f"rollout_{record.status}", record, who, why=why, transition=action)
        self._alert(
            record,
            "rollout_rolled_back",
            "critical",
            f"{why} — rolled back: {self.model} v{record.challenger} now gets 0 % of traffic "
            f"and lost the challenger alias; v{record.champion} serves everyone",
            evidence=evidence,
            action=action,
        )
        return action

    def _transition_failed(
        self, record, what: str, who: str, exc: Exception, verdict, pending: bool
    ) -> dict:
        outcome = (
            "it stays pending (liftgate rollout status shows it) and the guard carries it on "
            "at its next interval"
            if pending
            else "nothing was changed"
        )
        record.add_event(f"{what}_failed", error=str(exc))
        self._audit(f"rollout_{what}_failed", record, who, error=str(exc))
        self._alert(
            record,
            f"rollout_{what}_failed",
            "critical",
            f"{what} of {record.name} did not finish: {exc}; {outcome}",
            evidence=verdict.to_dict() if verdict else None,
        )
        return {"action": f"{what}_failed", "error": str(exc)}

    # --- helpers ---------------------------------------------------------------------------

    def _aliases(self, who: str, why: str) -> RegistryAliases:
        return RegistryAliases(self.registry, self.model, who, why)

    def _require_active(self, record: RolloutRecord | None, name: str) -> None:
        if record is None or not record.active:
            raise _refused(name, record, "")

    def _drift(self, rollout, record, now: datetime) -> DriftObservation | None:
        if not rollout.drift.enabled:
            return None
        checked = record.drift.get("checked_at")
        if checked and (now - _parse(checked)).total_seconds() < rollout.drift.every_s:
            last = record.drift.get("last")
            return DriftObservation(**last) if last else None
        observation = self.drift_check(rollout)
        record.drift["checked_at"] = now.isoformat()
        record.drift["last"] = (
            None
            if observation is None
            else {
                "checked": observation.checked,
                "dataset_drift": observation.dataset_drift,
                "drift_share": observation.drift_share,
                "drifted_columns": list(observation.drifted_columns),
                "report_path": observation.report_path,
                "columns": observation.columns,
            }
        )
        return observation

    def _check_ope(self, rollout: RolloutConfig, challenger: str) -> dict | None:
        if rollout.require_ope is None:
            return None
        from experiments.ope.challenger import evaluate_challenger

        loaded = self.registry.load(self.model, version=challenger)
        return evaluate_challenger(
            self.home,
            self.config,
            loaded.model,
            rollout.require_ope,
            window_s=rollout.analysis.attribution_window_hours * 3600,
        ).to_dict()

    def _audit(self, action: str, record: RolloutRecord, who: str | None, **fields: Any) -> None:
        audit.append(
            self.home.audit_log,
            action,
            who=who,
            rollout=record.name,
            model=self.model,
            champion=record.champion,
            challenger=record.challenger,
            step=record.step,
            weight=record.weight,
            **fields,
        )

    def _alert(self, record, alert: str, severity: str, summary: str, **fields: Any) -> dict:
        rollout = self.config.rollouts[record.name]
        payload = {
            "alert": alert,
            "severity": severity,
            "summary": summary,
            "rollout": record.name,
            "model": self.model,
            "champion": record.champion,
            "challenger": record.challenger,
            "step": record.step,
            "weight": record.weight,
            "status": record.status,
            "dry_run": rollout.dry_run,
            "ts": self.clock().isoformat(),
            "links": {
                "status": f"liftgate rollout status {record.name}",
                "audit": str(self.home.audit_log),
            },
            **{k: v for k, v in fields.items() if v is not None},
        }
        document = self._raise_alert(payload, webhook_url(rollout.webhook_url))
        record.add_event("alert", alert=alert, alert_id=document["alert_id"])
        return document

    def _raise_alert(self, payload: dict[str, Any], url: str | None) -> dict[str, Any]:
        """Record the alert in alerts.jsonl now; deliver it when this thread's command has
        released the rollout's lock (`_delivers_alerts_after`), or now outside a command."""
        document = record_alert(self.home, payload)
        outbox = getattr(self._outbox, "alerts", None)
        if outbox is None:
            deliver_alert(self.home, document, url)
        else:
            outbox.append((document, url))
        return document
