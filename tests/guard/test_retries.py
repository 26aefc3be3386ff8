"""The guard's retries: alert delivery and the weights/aliases transition, with injected
failures and a recorded (not slept) backoff."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from liftgate.guard import alerts
from liftgate.guard.state import Intent
from liftgate.guard.transition import TransitionFailed, apply_transition


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The backoff pauses, recorded instead of slept (tenacity sleeps with time.sleep)."""
    recorded: list[float] = []
    monkeypatch.setattr(time, "sleep", recorded.append)
    return recorded


def answers(monkeypatch: pytest.MonkeyPatch, *outcomes: int | Exception) -> list[int]:
    """Make the webhook answer `outcomes` in turn (a status, or an exception raised)."""
    calls: list[int] = []
    queue: Iterator[int | Exception] = iter(outcomes)

    def post(url: str, **_: object) -> httpx.Response:
        calls.append(1)
        outcome = next(queue)
        if isinstance(outcome, Exception):
            raise outcome
        return httpx.Response(outcome)

    monkeypatch.setattr(alerts.httpx, "post", post)
    return calls


def test_server_errors_are_retried_with_a_growing_pause(monkeypatch, waits) -> None:
    answers(monkeypatch, 503, 502, 200)
    delivery = alerts.send_alert("http://hook", {"alert": "a"})
    assert delivery == {"delivered": True, "status": 200, "attempts": 3}
    assert waits == [0.2, 0.4]


def test_connection_errors_are_retried_then_reported(monkeypatch, waits) -> None:
    answers(monkeypatch, *[httpx.ConnectError("refused")] * 3)
    delivery = alerts.send_alert("http://hook", {"alert": "a"})
    assert delivery == {"delivered": False, "status": "ConnectError: refused", "attempts": 3}
    assert waits == [0.2, 0.4]  # no pause after the last attempt


def test_a_client_error_is_an_answer_and_not_retried(monkeypatch, waits) -> None:
    calls = answers(monkeypatch, 404)
    assert alerts.send_alert("http://hook", {}) == {
        "delivered": False,
        "status": 404,
        "attempts": 1,
    }
    assert (len(calls), waits) == (1, [])


class Weights:
    def __init__(self) -> None:
        self.weight = 0.25
        self.written: list[float] = []

    def get(self) -> float:
        return self.weight

    def set(self, weight: float) -> None:
        self.weight = weight
        self.written.append(weight)


class Aliases:
    def __init__(self, failures: int) -> None:
        self.state = {"challenger": "2"}
        self.failures = failures

    def get(self, names: list[str]) -> dict[str, str | None]:
        return {name: self.state.get(name) for name in names}

    def apply(self, target: dict[str, str | None]) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("registry unreachable")
        self.state.update(target)


ROLLBACK = Intent(action="rollback", weight=0.0, aliases={"challenger": None})


def test_a_part_is_retried_with_a_linear_backoff(waits) -> None:
    weights, aliases = Weights(), Aliases(failures=2)
    result = apply_transition(weights, aliases, ROLLBACK)
    assert (result.attempts, weights.weight, aliases.state) == (3, 0.0, {"challenger": None})
    assert waits == [0.1, 0.2]


def test_a_lasting_failure_raises_and_never_puts_the_canary_back(waits) -> None:
    weights, aliases = Weights(), Aliases(failures=100)
    with pytest.raises(TransitionFailed, match="after 3 attempts"):
        apply_transition(weights, aliases, ROLLBACK, pause_s=0.5)
    assert weights.written == [0.0]  # set once, never set back to 0.25
    assert aliases.state == {"challenger": "2"} and aliases.failures == 97
    assert waits == [0.5, 1.0]
