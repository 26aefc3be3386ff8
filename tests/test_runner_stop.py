"""`stop_process` ends every process of the service's session, whatever its process group."""

from __future__ import annotations

import subprocess
import sys

from liftgate.app.runner import session_members, stop_process

# A driver that ignores SIGTERM, with a child in a process group of its own (as Ray makes
# replicas) that ignores it too.
STUBBORN = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
DRIVER = f"""
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", {STUBBORN!r}], process_group=0)
print(child.pid, flush=True)
time.sleep(60)
"""


def test_stop_ends_processes_in_other_groups_of_the_session(wait_until) -> None:
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    child = int(driver.stdout.readline())
    assert set(session_members(driver.pid)) >= {driver.pid, child}
    stop_process(driver.pid, timeout_s=0.5)
    driver.wait(timeout=10)
    assert wait_until(lambda: child not in _alive(session_members(driver.pid)), timeout_s=10)


def _alive(pids: list[int]) -> list[int]:
    """Pids that are not zombies."""
    alive = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[1].split()[0] != "Z":
                    alive.append(pid)
        except OSError:
            pass
    return alive
