"""CPU and memory of a server's process tree, and of the whole box, during a measured run."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from harness.servers import Server


class RssSampler(threading.Thread):
    """The peak resident memory of a server's tree, sampled every `every_s` until stop()."""

    def __init__(self, server: Server, every_s: float = 0.2):
        super().__init__(daemon=True)
        self.server = server
        self.every_s = every_s
        self.peak = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, self.server.rss_bytes())
            self._stop_event.wait(self.every_s)

    def stop(self) -> int:
        """Stop sampling; the peak in bytes."""
        self._stop_event.set()
        self.join()
        self.peak = max(self.peak, self.server.rss_bytes())
        return self.peak


@dataclass(frozen=True)
class CpuSnapshot:
    """CPU seconds so far of each process of a server's tree, and of the box by kind."""

    server: dict[int, float]
    box: Any  # psutil.cpu_times(): user, system, idle, iowait, steal, ...

    @classmethod
    def of(cls, server: Server) -> CpuSnapshot:
        import psutil

        return cls(server.cpu_seconds(), psutil.cpu_times())


def cpu_between(before: CpuSnapshot, after: CpuSnapshot, client_cpu_s: float) -> dict[str, float]:
    """The server tree's CPU seconds between two snapshots, and the share of all cores used
    by other processes (not the server, not the load client, not interrupts) and stolen by
    the host, in %."""
    server_s = sum(after.server[pid] - before.server.get(pid, 0.0) for pid in after.server)
    elapsed = {  # guest time is already counted in user time
        name: getattr(after.box, name) - getattr(before.box, name)
        for name in after.box._fields
        if not name.startswith("guest")
    }
    wall_cpu = sum(elapsed.values()) or 1.0  # all cores
    busy = wall_cpu - elapsed.get("idle", 0.0) - elapsed.get("iowait", 0.0)
    busy -= elapsed.get("steal", 0.0) + elapsed.get("irq", 0.0) + elapsed.get("softirq", 0.0)
    other = max(busy - server_s - client_cpu_s, 0.0)  # also the benchmark's own process
    return {
        "server_s": server_s,
        "other_pct": round(100 * other / wall_cpu, 1),
        "steal_pct": round(100 * elapsed.get("steal", 0.0) / wall_cpu, 1),
    }
