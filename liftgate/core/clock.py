"""One clock for journeys, their decisions and their sends, which can run faster than real time.

`CompressedClock` maps real time to journey time: it started at `origin_real`, showing
`origin` then, and runs `speed` times faster. At speed 1 with both origins equal it is the
wall clock; tests and the demo run hours in seconds. A durable wait of a journey-time
duration sleeps `real_seconds(duration)` of real time, and the mapping is kept in a file so
that a restarted worker reads the same time (a run's sleep resumes where it was).

>>> start = dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC)
>>> clock = CompressedClock(origin=start, origin_real=100.0, speed=3600.0, real=lambda: 102.5)
>>> clock.now().isoformat()
'2026-03-01T11:30:00+00:00'
>>> clock.real_seconds(dt.timedelta(hours=1))
1.0
>>> CompressedClock.from_document(clock.to_document(), real=lambda: 102.5).now() == clock.now()
True
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field


def utc_now() -> dt.datetime:
    """The wall clock, with its zone: every component's default clock."""
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class CompressedClock:
    origin: dt.datetime
    origin_real: float
    speed: float = 1.0
    real: Callable[[], float] = field(default=time.time, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.speed > 0:
            raise ValueError(f"speed: expected a positive number; found {self.speed!r}")
        if self.origin.tzinfo is None:
            raise ValueError("origin: expected an aware datetime (UTC)")

    @classmethod
    def wall(cls) -> CompressedClock:
        """Real time."""
        now = time.time()
        return cls(origin=dt.datetime.fromtimestamp(now, dt.UTC), origin_real=now)

    @classmethod
    def starting(cls, origin: dt.datetime, speed: float) -> CompressedClock:
        """Showing `origin` now, running `speed` times faster than real time."""
        return cls(origin=origin, origin_real=time.time(), speed=speed)

    def now(self) -> dt.datetime:
        return self.origin + dt.timedelta(seconds=(self.real() - self.origin_real) * self.speed)

    def real_seconds(self, duration: dt.timedelta) -> float:
        """How long `duration` of this clock's time lasts in real time."""
        return duration.total_seconds() / self.speed

    def to_document(self) -> dict[str, str | float]:
        """The mapping as a JSON document (`liftgate.journeys.clock_file` keeps it)."""
        return {
            "origin": self.origin.isoformat(),
            "origin_real": self.origin_real,
            "speed": self.speed,
        }

    @classmethod
    def from_document(cls, data: dict, real: Callable[[], float] = time.time) -> CompressedClock:
        return cls(
            origin=dt.datetime.fromisoformat(data["origin"]),
            origin_real=float(data["origin_real"]),
            speed=float(data["speed"]),
            real=real,
        )
