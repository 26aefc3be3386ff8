"""The guard's loop: every analysis interval, a tick of each active rollout.

`liftgate serve` runs it in a background thread of the application's driver process (so a
rollback's new weights reach the replicas within one weights poll); `liftgate guard run`
runs it in the foreground, and `liftgate guard run --once` is one iteration for cron. Its
first iteration, as it starts, finishes any transition a crash left half done. Nothing
stops the loop but `stop`: an iteration that fails (an unreadable file, a registry outage)
is logged and the next interval tries again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from liftgate.guard.controller import RolloutController

logger = logging.getLogger(__name__)

IDLE_POLL_S = 2.0  # how often an idle guard looks for a started rollout


def next_interval_s(controller: RolloutController) -> float:
    intervals = [
        controller.rollout(name).analysis.interval_s
        for name in controller.active()
        if name in controller.config.rollouts
    ]
    return min(intervals, default=IDLE_POLL_S)


def guard_loop(
    controller: RolloutController,
    stop: threading.Event,
    report: Callable[[list[dict]], None] = lambda results: None,
) -> None:
    while not stop.is_set():
        interval_s = IDLE_POLL_S
        try:
            results = controller.guard_once()
            if results:
                report(results)
            interval_s = next_interval_s(controller)
        except Exception:  # keep guarding; the next interval retries
            logger.exception("guard iteration failed")
        stop.wait(interval_s)
