"""Change the serving weights and the registry aliases as one operation.

A rollout's state lives in two systems: the serving weights (the canary split the
replicas apply) and the MLflow registry aliases (which version is champion, challenger,
previous). A rollback or a promotion must move both, and they must never disagree: a
rolled-back challenger that keeps its alias would be served again by the next rollout; a
promoted champion whose canary weight is still up would be compared with itself.

Each part is idempotent (set the split; point aliases at versions), so a failed part is
retried (`tenacity`: `retries` attempts in all, `pause_s`, 2 `pause_s`, … apart, on any
exception). If it still fails, the parts already done are compensated — set back to the
snapshot taken before — and the operation raises: both systems are then as they were,
which the guard reports and retries at its next interval (the saga pattern, Garcia-Molina
& Salem 1987, "Sagas").

>>> class Weights:
...     split = "old"
...     def get(self): return self.split
...     def set(self, split): self.split = split
>>> class Aliases:
...     state = {"champion": "1", "challenger": "2"}
...     fail = 1  # the first attempt fails
...     def snapshot(self, names): return {n: self.state.get(n) for n in names}
...     def apply(self, target):
...         if self.fail:
...             self.fail -= 1
...             raise ConnectionError("registry unreachable")
...         self.state.update(target)
>>> weights, aliases = Weights(), Aliases()
>>> result = apply_transition(weights, aliases, Transition(None, {"challenger": None}), pause_s=0)
>>> weights.split, aliases.state["challenger"], result.attempts
(None, None, 2)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from tenacity import Retrying, stop_after_attempt, wait_incrementing


class WeightsPort(Protocol):
    def get(self) -> Any: ...

    def set(self, split: Any) -> None: ...


class AliasesPort(Protocol):
    def snapshot(self, names: list[str]) -> dict[str, str | None]: ...

    def apply(self, target: dict[str, str | None]) -> None: ...


@dataclass(frozen=True)
class Transition:
    split: Any  # the new canary split (None: the champion serves everyone)
    aliases: dict[str, str | None] = field(default_factory=dict)  # alias → version; None removes


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
    """Neither part could be completed; both were set back to where they were."""


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
    transition: Transition,
    retries: int = 3,
    pause_s: float = 0.1,
) -> TransitionResult:
    """Weights first (a rollback stops the harm at once), then aliases; retried, and on
    failure compensated so that both parts are as before."""
    before_split = weights.get()
    before_aliases = aliases.snapshot(list(transition.aliases))
    started = time.perf_counter()
    try:
        weight_attempts = _retry(lambda: weights.set(transition.split), retries, pause_s)
    except Exception as exc:
        _compensate(weights, before_split, aliases, {}, retries, pause_s)
        raise TransitionFailed(f"setting the serving weights failed: {exc}") from exc
    weights_s = time.perf_counter() - started
    started = time.perf_counter()
    try:
        alias_attempts = _retry(lambda: aliases.apply(transition.aliases), retries, pause_s)
    except Exception as exc:
        _compensate(weights, before_split, aliases, before_aliases, retries, pause_s)
        raise TransitionFailed(
            f"moving the registry aliases failed after {retries} attempts ({exc}); "
            "the serving weights were set back"
        ) from exc
    return TransitionResult(
        weights_s, time.perf_counter() - started, max(weight_attempts, alias_attempts)
    )


def _compensate(weights, split, aliases, alias_snapshot, retries, pause_s) -> None:
    """Set back what changed. If even this fails, the exception says so: the caller's
    record then shows the transition as failed and the guard retries it."""
    _retry(lambda: weights.set(split), retries, pause_s)
    if alias_snapshot and aliases.snapshot(list(alias_snapshot)) != alias_snapshot:
        _retry(lambda: aliases.apply(alias_snapshot), retries, pause_s)
