"""A clock that tests move by hand: pass it where code takes a `now` or `monotonic` callable."""

from __future__ import annotations


class ManualClock:
    """Returns `now` until a test sets another.

    >>> clock = ManualClock(0.0)
    >>> clock.now += 1.5
    >>> clock()
    1.5
    """

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
