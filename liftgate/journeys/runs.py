"""A journey run: the steps of one (journey, customer, trigger event), as a durable workflow.

`JourneyRuns.execute` is the workflow's body. Everything that reads the world — the clock,
the decision service, the commit checks, the journeys' state — happens inside an engine
`step`, whose result is kept: a run recovered after a crash replays the kept results and
takes the same path, then goes on from where it was. What it does between steps is a pure
function of those results (`liftgate.journeys.plan`).

- A `wait` waits for messages (the customer's events, sent by the worker) until its end:
  an event of the journey's `exit_on` ends the run at once, the awaited event ends the wait.
- `decide` and `act` are held out of the journey's quiet hours, and `act` while the journey
  is paused (checked inside the commit's step: a pause stops the next send at once).
- `act` commits through the same checks as `POST /v1/actions` with the idempotency key
  ``journey:<run>:<step>``: a send whose step reruns after a crash gets the stored answer,
  so it is queued once.
- The journey's configuration travels in the run's input: a changed YAML applies to new
  runs only.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

import numpy as np

from configs.journey_schema import JourneyConfig, Step
from experiments.bandits.base import mc_argmax_distribution
from liftgate.journeys import plan
from liftgate.journeys.state import COMPLETED, EXITED, PAUSED, JourneyState

#: How often (journey time) a run held by a pause looks again.
PAUSE_POLL: Final = dt.timedelta(minutes=5)
#: Statuses of an act besides the action store's (queued, dry_run, refused): nothing to
#: send, or held (paused journey, quiet hours) and tried again.
SKIPPED, HELD = "skipped", "held"
SLOT_DRAWS: Final = 2_000


class Engine(Protocol):
    async def step(self, name: str, function: Callable[..., Any], *args: Any) -> Any: ...

    async def receive(self, timeout_s: float) -> dict[str, Any] | None: ...


Decide = Callable[[str, list[str], str], Awaitable[dict[str, Any]]]
Commit = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Ports:
    """What a run reaches outside itself: the decision service (`decide(customer, candidates,
    trace_id)` → the answer), the commit checks (`commit(request)`: an `ActionRequest`'s
    fields → the stored answer), the action catalogue's channels and the clock."""

    decide: Decide
    commit: Commit
    channel_of: Mapping[str, str]
    now: Callable[[], dt.datetime]
    real_seconds: Callable[[dt.timedelta], float]


class _Exit(Exception):  # noqa: N818 — control flow inside a run, never seen outside
    def __init__(self, reason: str):
        self.reason = reason


class _Run:
    """The state of one execution of a run's workflow (rebuilt identically on replay)."""

    def __init__(self, payload: dict[str, Any]):
        self.run_id: str = payload["run_id"]
        self.journey = JourneyConfig.model_validate(payload["journey"])
        self.customer_id: str = payload["customer_id"]
        self.arm: str = payload["arm"]
        self.started = dt.datetime.fromisoformat(payload["started_at"])
        self.deadline = self.started + self.journey.max_duration
        trigger = payload["event"]
        self.facts = plan.Facts(events={trigger["type"]: trigger})
        self.seq = 0
        self.slots: dict[str, str] = {}  # decide step → chosen slot

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq


class JourneyRuns:
    def __init__(self, engine: Engine, state: JourneyState, ports: Ports):
        self.engine = engine
        self.state = state
        self.ports = ports

    async def execute(self, payload: dict[str, Any]) -> dict[str, Any]:
        run = _Run(payload)
        await self._note(run, "entered", None, {"arm": run.arm, "event": payload["event"]})
        if run.arm in run.journey.holdout_arms:
            return await self._finish(run, COMPLETED, "holdout")
        index = 0
        try:
            while index < len(run.journey.steps):
                step = run.journey.steps[index]
                now = await self._tick(run, step.id)
                if now >= run.deadline:
                    raise _Exit("max_duration")
                if step.exit is not None:
                    return await self._finish(run, EXITED, step.exit.reason)
                await self._do(run, step, now)
                index = plan.next_index(run.journey, index, run.facts)
        except _Exit as exit_:
            return await self._finish(run, EXITED, exit_.reason)
        return await self._finish(run, COMPLETED, "finished")

    async def _do(self, run: _Run, step: Step, now: dt.datetime) -> None:
        if step.wait is not None:
            wait = step.wait
            if wait.duration is not None:
                await self._wait_until(run, now + wait.duration)
            elif wait.event is not None:
                await self._wait_until(run, now + wait.timeout, for_event=wait.event)
            else:
                slot = run.slots.get(wait.slot)
                zone = run.journey.quiet_hours.timezone if run.journey.quiet_hours else "UTC"
                if slot is not None:
                    await self._wait_until(run, plan.next_time_of_day(now, slot, zone))
        elif step.decide is not None:
            await self._out_of_quiet_hours(run, now)
            if step.decide.candidates is not None:
                facts = await self.engine.step(
                    f"decide:{step.id}",
                    self._decide,
                    run.run_id,
                    run.next_seq(),
                    step.id,
                    run.customer_id,
                    step.decide.candidates,
                )
            else:
                facts = await self.engine.step(
                    f"slot:{step.id}",
                    self._choose_slot,
                    run.run_id,
                    run.next_seq(),
                    run.journey.name,
                    step.id,
                    step.decide.slots,
                )
                run.slots[step.id] = facts["chosen"]
            run.facts.decisions[step.id] = facts
        elif step.act is not None:
            run.facts.acts[step.id] = await self._act(run, step, now)
        elif step.handoff is not None:
            decision = run.facts.decisions.get(step.handoff.decision)
            if decision is not None:
                await self.engine.step(
                    f"handoff:{step.id}",
                    self._hand_off,
                    run.run_id,
                    run.next_seq(),
                    step.id,
                    step.handoff.queue,
                    run.customer_id,
                    decision,
                )

    # --- waiting ------------------------------------------------------------------------------

    async def _wait_until(
        self, run: _Run, until: dt.datetime, for_event: str | None = None
    ) -> bool:
        """Receive the customer's events until `until` (or the run's deadline): True when
        `for_event` arrived; an `exit_on` event ends the run."""
        until = min(until, run.deadline)
        while True:
            now = await self._tick(run, None)
            if now >= until:
                return False
            message = await self.engine.receive(self.ports.real_seconds(until - now))
            if message is None:
                continue
            run.facts.events[message["type"]] = message
            await self._note(run, "event", None, {"event": message})
            if message["type"] in run.journey.exit_on:
                raise _Exit(message["type"])
            if message["type"] == for_event:
                return True

    async def _out_of_quiet_hours(self, run: _Run, now: dt.datetime) -> None:
        until = plan.quiet_until(now, run.journey.quiet_hours)
        if until is not None:
            await self._note(run, "quiet_hours", None, {"until": until.isoformat()})
            await self._wait_until(run, until)

    # --- acting -------------------------------------------------------------------------------

    async def _act(self, run: _Run, step: Step, now: dt.datetime) -> str:
        decision = run.facts.decisions.get(step.act.decision)
        channel = None if decision is None else self.ports.channel_of.get(decision["chosen"])
        if decision is None or channel in (None, "none"):
            await self._note(run, "act", step.id, {"status": SKIPPED})
            return SKIPPED
        request = {
            "decision_id": decision["decision_id"],
            "action": decision["chosen"],
            "channel": channel,
            "campaign_id": step.act.campaign or run.journey.name,
            "idempotency_key": f"journey:{run.run_id}:{step.id}",
            "ttl_seconds": step.act.ttl.total_seconds() if step.act.ttl else None,
        }
        while True:
            answer = await self.engine.step(
                f"act:{step.id}",
                self._commit,
                run.run_id,
                run.next_seq(),
                step.id,
                run.journey,
                request,
            )
            if answer["status"] != HELD:
                return answer["status"]
            until = answer.get("until")
            await self._wait_until(
                run, dt.datetime.fromisoformat(until) if until else now + PAUSE_POLL
            )
            now = await self._tick(run, step.id)

    # --- steps (each runs once per run; a rerun after a crash rewrites the same rows) ---------

    async def _tick(self, run: _Run, step_id: str | None) -> dt.datetime:
        """The journey clock's time, kept; with a step id, the run is now at that step."""
        at = await self.engine.step("now", self._now, run.run_id, step_id)
        return dt.datetime.fromisoformat(at)

    def _now(self, run_id: str, step_id: str | None) -> str:
        now = self.ports.now()
        if step_id is not None:
            self.state.move(run_id, step_id, now)
        return now.isoformat()

    async def _note(self, run: _Run, kind: str, step_id: str | None, detail: dict) -> None:
        await self.engine.step(
            f"note:{kind}", self._record, run.run_id, run.next_seq(), kind, step_id, detail
        )

    def _record(self, run_id: str, seq: int, kind: str, step_id: str | None, detail: dict) -> None:
        self.state.record(run_id, seq, kind, step_id, detail, self.ports.now())

    async def _decide(
        self, run_id: str, seq: int, step_id: str, customer_id: str, candidates: list[str]
    ) -> dict[str, Any]:
        answer = await self.ports.decide(customer_id, candidates, run_id)
        facts = plan.decision_facts(answer)
        self.state.record(run_id, seq, "decision", step_id, facts, self.ports.now())
        return facts

    def _choose_slot(
        self, run_id: str, seq: int, journey: str, step_id: str, slots: list[str]
    ) -> dict[str, Any]:
        """Thompson sampling over the slots' Beta(1 + successes, 1 + failures) posteriors
        (Chapelle & Li 2011); the propensity is the Monte Carlo share of posterior draws in
        which the chosen slot is best, as the served bandits log it."""
        counts = np.asarray(self.state.slot_counts(journey, step_id, slots), dtype=float)
        rng = np.random.default_rng(zlib.crc32(f"{run_id}:{step_id}".encode()))
        draws = rng.beta(1 + counts[:, 0], 1 + counts[:, 1], size=(SLOT_DRAWS, len(slots)))
        shares, _ = mc_argmax_distribution(draws)
        chosen = int(np.argmax(rng.beta(1 + counts[:, 0], 1 + counts[:, 1])))
        facts = {
            "decision_id": f"{run_id}:{step_id}",
            "chosen": slots[chosen],
            "propensity": float(shares[chosen]),
            "policy": "thompson_slots",
        }
        self.state.record(run_id, seq, "decision", step_id, facts, self.ports.now())
        return facts

    async def _commit(
        self, run_id: str, seq: int, step_id: str, journey: JourneyConfig, request: dict
    ) -> dict[str, Any]:
        """The commit, unless the journey is paused or in its quiet hours at this moment
        (checked here, in the step, on the clock the commit checks read): then held."""
        if self.state.status(journey.name) == PAUSED:
            return {"status": HELD, "reason": PAUSED}
        until = plan.quiet_until(self.ports.now(), journey.quiet_hours)
        if until is not None:
            return {"status": HELD, "reason": "quiet_hours", "until": until.isoformat()}
        answer = await self.ports.commit(request)
        self.state.record(run_id, seq, "act", step_id, answer, self.ports.now())
        return answer

    def _hand_off(
        self, run_id: str, seq: int, step_id: str, queue: str, customer_id: str, decision: dict
    ) -> None:
        now = self.ports.now()
        self.state.hand_off(run_id, step_id, queue, customer_id, decision, now)
        self.state.record(run_id, seq, "handoff", step_id, {"queue": queue, **decision}, now)

    async def _finish(self, run: _Run, status: str, reason: str) -> dict[str, Any]:
        converted = run.journey.goal is not None and run.journey.goal.event in run.facts.events
        await self.engine.step(
            "finish",
            self._close,
            run.run_id,
            run.next_seq(),
            run.journey.name,
            status,
            reason,
            dict(run.slots),
            converted,
        )
        return {"run_id": run.run_id, "status": status, "reason": reason}

    def _close(
        self,
        run_id: str,
        seq: int,
        journey: str,
        status: str,
        reason: str,
        slots: dict[str, str],
        converted: bool,
    ) -> None:
        now = self.ports.now()
        for step_id, slot in slots.items():  # the send-time bandits learn from the goal
            self.state.reward_slot(journey, step_id, slot, converted)
        self.state.record(run_id, seq, status, None, {"reason": reason}, now)
        self.state.finish(run_id, status, reason, now)
