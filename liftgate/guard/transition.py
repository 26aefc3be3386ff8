"""Carry a transition through the serving weights and the registry aliases.

A rollout's state lives in two systems: the serving weights (the canary split the
replicas apply) and the MLflow registry aliases (which version is champion, challenger,
previous). A rollback or a promotion moves both, and they must end up agreeing: a
rolled-back challenger that keeps its alias would be served again by the next rollout; a
promoted champion whose canary weight is still up would be compared with itself.

The caller first writes the transition's intent (`liftgate.guard.state.Intent`) into the
rollout record, durably. Then: weights first (a rollback stops the harm at once, without
the registry), then aliases. Each part reads what its system shows, takes only the step
still missing (`liftgate.guard.reconcile`), and is retried (`tenacity`: `retries`
attempts in all, `pause_s`, 2 `pause_s`, … apart, on any exception). Nothing is undone:
if a part still fails, `TransitionFailed` says which, the intent stays in the record, and
the guard's next tick carries it on from where it stopped — the forward recovery of sagas
(Garcia-Molina & Salem 1987, "Sagas"). So a rollback never puts the canary back, whatever
fails after its weights moved.

>>> class Weights:
...     weight = 0.25
...     def get(self): return self.weight
...     def set(self, weight): self.weight = weight
>>> class Aliases:
...     def __init__(self):
...         self.state, self.failures = {"champion": "1", "challenger": "2"}, 1
...     def get(self, names): return {n: self.state.get(n) for n in names}
...     def apply(self, target):
...         if self.failures:
...             self.failures -= 1
...             raise ConnectionError("registry unreachable")
...         self.state.update(target)
>>> weights, aliases = Weights(), Aliases()
>>> rollback = Intent(action="rollback", weight=0.0, aliases={"challenger": None})
>>> apply_transition(weights, aliases, rollback, pause_s=0).attempts
2
>>> weights.weight, aliases.state["challenger"]
(0.0, None)
>>> weights, aliases = Weights(), Aliases()
>>> aliases.failures = 100  # a lasting outage: the weight stays at 0
>>> apply_transition(weights, aliases, rollback, pause_s=0)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
liftgate.guard.transition.TransitionFailed: moving the registry aliases failed after 3 ...
>>> weights.weight
0.0
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from tenacity import Retrying, stop_after_attempt, wait_incrementing

from liftgate.guard.reconcile import alias_steps, weight_step
from liftgate.guard.state import Intent


class WeightsPort(Protocol):
    def get(self) -> float | None: ...  # the rollout's canary weight served (None: unreadable)

    def set(self, weight: float) -> None: ...


class AliasesPort(Protocol):
    def get(self, names: list[str]) -> dict[str, str | None]: ...  # raises if unreadable

    def apply(self, target: dict[str, str | None]) -> None: ...


@dataclass(frozen=True)
class TransitionResult:
    weights_s: float  # seconds to set the weights, retries included
    aliases_s: float
    attempts: int  # of the part that needed the most

    @property
    def elapsed_s(self) -> float:
        return self.weights_s + self.aliases_s

    def to_dict(self) -> dict[str, float | int]:
        return {
            "weights_s": round(self.weights_s, 4),
            "aliases_s": round(self.aliases_s, 4),
            "elapsed_s": round(self.elapsed_s, 4),
            "attempts": self.attempts,
        }


class TransitionFailed(RuntimeError):
    """A part could not be completed; what was done stays done, and the intent pending."""


def _retry(action: Callable[[], None], retries: int, pause_s: float) -> int:
    """Run `action` until it succeeds, at most `retries` times; the number of attempts it
    took. The last attempt's exception propagates."""
    for attempt in Retrying(
        stop=stop_after_attempt(retries),
        wait=wait_incrementing(start=pause_s, increment=pause_s),
        reraise=True,
    ):
        with attempt:
            action()
    return attempt.retry_state.attempt_number


def apply_transition(
    weights: WeightsPort,
    aliases: AliasesPort,
    intent: Intent,
    retries: int = 3,
    pause_s: float = 0.1,
) -> TransitionResult:
    """Weights first, then aliases: each part reads its system and takes the step still
    missing, retried; a part that still fails raises `TransitionFailed`, undoing nothing."""

    def set_weight() -> None:
        weight = weight_step(intent, weights.get())
        if weight is not None:
            weights.set(weight)

    def move_aliases() -> None:
        if intent.aliases:  # a weights-only transition needs no registry
            target = alias_steps(intent, aliases.get(list(intent.aliases)))
            if target:
                aliases.apply(target)

    started = time.perf_counter()
    try:
        weight_attempts = _retry(set_weight, retries, pause_s)
    except Exception as exc:
        raise TransitionFailed(
            f"setting the serving weights failed after {retries} attempts ({exc})"
        ) from exc
    weights_s = time.perf_counter() - started
    started = time.perf_counter()
    try:
        alias_attempts = _retry(move_aliases, retries, pause_s)
    except Exception as exc:
        raise TransitionFailed(
            f"moving the registry aliases failed after {retries} attempts ({exc}); "
            f"the canary weight is {intent.weight:.0%}"
        ) from exc
    return TransitionResult(
        weights_s, time.perf_counter() - started, max(weight_attempts, alias_attempts)
    )
