"""The journeys' clock kept under LIFTGATE_HOME, so that every process reads the same time.

The worker, `liftgate journey` commands and the demo read it; a restarted worker reads the
same mapping, so a run's durable sleep resumes where it was. No file: the wall clock.
"""

from __future__ import annotations

from liftgate.core.clock import CompressedClock
from liftgate.core.home import Home
from liftgate.core.jsonstate import read_json, write_json


def read_clock(home: Home) -> CompressedClock:
    """The journeys' clock kept under `home` (the wall clock if none was set)."""
    document = read_json(home.journey_clock)
    return CompressedClock.wall() if document is None else CompressedClock.from_document(document)


def write_clock(home: Home, clock: CompressedClock) -> None:
    """Keep `clock` for every process of `home` (replaced atomically)."""
    home.journey_clock.parent.mkdir(parents=True, exist_ok=True)
    write_json(home.journey_clock, clock.to_document())
