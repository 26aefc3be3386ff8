"""The rollout controller: start, step, pause, promote, abort and roll back; the guard's tick.

A rollout moves through the steps of its YAML (`configs/rollouts/`). Each tick of the guard
observes the logs (`observe`), asks the pure verdict (`verdict.judge_interval`) and acts:

- PROMOTE: the next step's weight; after the last step the challenger becomes champion
  (the old one stays as `previous`) and the canary weight goes to 0 — one transition;
- ROLLBACK: the canary weight to 0 and the challenger alias removed — one transition;
- HOLD: nothing (a drift hold raises an alert once per drift episode);
- INCONCLUSIVE: what `on_inconclusive` says.

Weights and aliases change together through `transition.apply_transition` (retried, or
compensated). Every verdict and action is written to the audit log; rollbacks,
promotions, drift and failures raise an alert (webhook + LIFTGATE_HOME/alerts.jsonl). In
`dry_run`, the guard analyses and alerts what it would do, and never acts.
"""

from __future__ import annotations

import logging
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
from liftgate.core.vocabulary import (
    CHALLENGER,
    CHAMPION,
    PREVIOUS,
    TAG_REPLACED_VERSION,
    TAG_ROLLED_BACK_AT,
    TAG_ROLLED_BACK_WHY,
)
from liftgate.guard import state as records
from liftgate.guard.alerts import record_alert, webhook_url
from liftgate.guard.observe import observe
from liftgate.guard.state import RolloutRecord
from liftgate.guard.transition import Transition, TransitionFailed, apply_transition
from liftgate.guard.verdict import DriftObservation, Verdict, VerdictKind, judge_interval

logger = logging.getLogger(__name__)

GUARD = "guard"


class RolloutError(LiftgateError, ValueError):
    """A rollout command that cannot be carried out: refused in the rollout's status (exit 1,
    the default), or about a rollout that is not defined or never started (``BAD_INPUT``)."""


class FileWeights:
    """The serving weights file as the transition's weights part."""

    def __init__(self, home: Home):
        self.home = home

    def get(self) -> CanarySplit | None:
        return read_split(self.home)[0]

    def set(self, split: CanarySplit | None) -> None:
        write_split(self.home, split)


class RegistryAliases:
    """The registry's aliases of one model as the transition's aliases part."""

    def __init__(self, registry, model: str, who: str, why: str):
        self.registry, self.model, self.who, self.why = registry, model, who, why

    def snapshot(self, names: list[str]) -> dict[str, str | None]:
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


@dataclass(frozen=True)
class RolloutStatus:
    """What `liftgate rollout status` shows: the record, the split the replicas serve (if it
    is this rollout's) with the weights file's revision, and the model's aliases."""

    record: RolloutRecord
    serving: dict[str, Any] | None
    serving_revision: int
    aliases: dict[str, str]

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
        weights=None,
        drift_check: Callable[[RolloutConfig], DriftObservation | None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.config = config
        self.home = home
        self._registry = registry
        self.weights = weights or FileWeights(home)
        self.clock = clock
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
        return RolloutStatus(record, serving, revision, self.registry.aliases(self.model))

    def active(self) -> list[str]:
        return [record.name for record in records.all_records(self.home) if record.active]

    # --- commands --------------------------------------------------------------------------

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
        )
        with records.locked_record(self.home, name, new=new) as record:
            if ope is not None and not ope["passed"]:
                record.status = records.ABORTED
                record.add_event("ope_failed", **ope)
                self._alert(record, "rollout_blocked", "critical", ope["reason"], evidence=ope)
                self._audit("rollout_blocked", record, who, reason=ope["reason"])
                return record
            record.add_event("started", step=0, weight=record.weight, who=who)
            if not rollout.dry_run:
                apply_transition(
                    self.weights,
                    self._aliases(who, "rollout started"),
                    Transition(self._split(rollout, record)),
                )
            self._audit("rollout_started", record, who)
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

    def promote(self, name: str, who: str | None = None, full: bool = False) -> RolloutRecord:
        """Advance one step now (or, with `full`, promote to champion), skipping analysis."""
        rollout = self.rollout(name)
        who = who or audit.current_user()
        with records.locked_record(self.home, name) as record:
            self._require_active(record, name)
            target = len(rollout.steps) if full else record.step + 1
            self._advance(rollout, record, target, who, why=f"manual promote by {who}")
            return record

    def abort(self, name: str, who: str | None = None, why: str = "aborted") -> RolloutRecord:
        rollout = self.rollout(name)
        who = who or audit.current_user()
        with records.locked_record(self.home, name) as record:
            self._require_active(record, name)
            self._roll_back(rollout, record, who, why, status=records.ABORTED)
            return record

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

    def tick(self, name: str) -> dict[str, Any]:
        """One analysis interval of a running rollout: observe, judge, act."""
        rollout = self.rollout(name)
        with records.locked_record(self.home, name) as record:
            status = record.status if record else None
            if status != records.RUNNING:
                return {"rollout": name, "status": status, "verdict": None}
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
        results = []
        for name in self.active():
            try:
                results.append(self.tick(name))
            except Exception as exc:  # one rollout's failure must not stop the others
                logger.exception("guard tick of %s failed", name)
                results.append({"rollout": name, "error": str(exc)})
        return results

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
            return self._promote_to_champion(record, who, why, verdict)
        record.step = target
        record.weight = rollout.steps[target].weight
        record.step_started_at = self.clock().isoformat()
        result = apply_transition(
            self.weights, self._aliases(who, why), Transition(self._split(rollout, record))
        )
        record.add_event("step", step=target, weight=record.weight, why=why)
        self._audit("rollout_step", record, who, why=why, transition=result.to_dict())
        return {"action": "step", "step": target, "weight": record.weight, **result.to_dict()}

    def _promote_to_champion(self, record, who: str, why: str, verdict=None) -> dict:
        aliases = {CHAMPION: record.challenger, PREVIOUS: record.champion, CHALLENGER: None}
        try:
            result = apply_transition(
                self.weights, self._aliases(who, why), Transition(None, aliases)
            )
        except TransitionFailed as exc:
            return self._transition_failed(record, "promotion", exc, verdict)
        self.registry.tag_version(
            self.model, record.challenger, {TAG_REPLACED_VERSION: record.champion}
        )
        record.status, record.weight = records.PROMOTED, 0.0
        record.add_event("promoted", why=why, transition=result.to_dict())
        self._audit("rollout_promoted", record, who, why=why, transition=result.to_dict())
        self._alert(
            record,
            "rollout_promoted",
            "info",
            f"{self.model} v{record.challenger} is champion (v{record.champion} kept as "
            f"previous): {why}",
            evidence=verdict.to_dict() if verdict else None,
            action=result.to_dict(),
        )
        return {"action": "promoted", **result.to_dict()}

    def _roll_back(
        self, rollout, record, who, why, verdict=None, decided=None, status=records.ROLLED_BACK
    ) -> dict:
        try:
            result = apply_transition(
                self.weights, self._aliases(who, why), Transition(None, {CHALLENGER: None})
            )
        except TransitionFailed as exc:
            return self._transition_failed(record, "rollback", exc, verdict)
        since_verdict = time.perf_counter() - decided if decided is not None else None
        self.registry.tag_version(
            self.model,
            record.challenger,
            {
                TAG_ROLLED_BACK_AT: self.clock().isoformat(),
                TAG_ROLLED_BACK_WHY: why[:500],
            },
        )
        record.status, record.weight = status, 0.0
        action = {
            "action": "rollback",
            **result.to_dict(),
            "seconds_after_verdict": None if since_verdict is None else round(since_verdict, 4),
        }
        record.add_event(status, why=why, transition=action)
        self._audit(f"rollout_{status}", record, who, why=why, transition=action)
        self._alert(
            record,
            "rollout_rolled_back",
            "critical",
            f"{why} — rolled back: {self.model} v{record.challenger} now gets 0 % of traffic "
            f"and lost the challenger alias; v{record.champion} serves everyone",
            evidence=verdict.to_dict() if verdict else None,
            action=action,
        )
        return action

    def _transition_failed(self, record, what: str, exc: Exception, verdict) -> dict:
        record.add_event(f"{what}_failed", error=str(exc))
        self._audit(f"rollout_{what}_failed", record, GUARD, error=str(exc))
        self._alert(
            record,
            f"rollout_{what}_failed",
            "critical",
            f"{what} of {record.name} failed and was compensated: {exc}; "
            "the guard retries at its next interval",
            evidence=verdict.to_dict() if verdict else None,
        )
        return {"action": f"{what}_failed", "error": str(exc)}

    # --- helpers ---------------------------------------------------------------------------

    def _split(self, rollout: RolloutConfig, record: RolloutRecord) -> CanarySplit:
        return CanarySplit(
            rollout=rollout.name,
            salt=rollout.salt_value,
            weight=record.weight,
            baseline=rollout.baseline,
            challenger=record.challenger,
        )

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
        document = record_alert(self.home, payload, webhook_url(rollout.webhook_url))
        record.add_event("alert", alert=alert, delivered=document["delivery"]["delivered"])
        return document
