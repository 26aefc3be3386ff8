"""Waiting until the box is free for a measurement: the two cores are shared with any other
work (tests, builds), and HAProxy binds fixed ports (one Ray Serve app at a time)."""

from __future__ import annotations

import os
import subprocess
import time

from harness.tables import say

SERVE_COMMAND = "liftgate.app.cli.main serve"


def pgrep(pattern: str) -> list[int]:
    """Pids of the processes whose command line matches `pattern` (not this one)."""
    done = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return sorted(int(pid) for pid in done.stdout.split() if int(pid) != os.getpid())


def wait_quiet(limit_pct: float = 30.0, timeout_s: float = 60.0) -> None:
    """Before a measured run, wait until all cores together are busy less than `limit_pct`
    % of one core (at most `timeout_s`; then say so and go on)."""
    import psutil

    cores = psutil.cpu_count() or 1
    deadline = time.monotonic() + timeout_s
    while True:
        busy = psutil.cpu_percent(interval=0.5) * cores
        if busy < limit_pct:
            return
        if time.monotonic() > deadline:
            say(f"  (the box stayed busy: {busy:.0f} % of a core before the run)")
            return


def wait_for_no_serve(timeout_s: float) -> None:
    """Until no other `liftgate serve` runs (SystemExit after `timeout_s`)."""
    deadline = time.monotonic() + timeout_s
    while busy := pgrep(SERVE_COMMAND):
        if time.monotonic() > deadline:
            raise SystemExit(f"another `{SERVE_COMMAND}` is still running: pids {busy}")
        say(f"waiting: another `{SERVE_COMMAND}` is running (pids {busy}) ...")
        time.sleep(10)
