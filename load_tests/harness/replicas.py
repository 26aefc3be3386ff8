"""Ray Serve ingress replicas of the app under test: pids, direct-ingress ports, settling.

With ``RAY_SERVE_THROUGHPUT_OPTIMIZED`` or HAProxy each ingress replica serves HTTP on its
own port (allocated, not fixed), and HAProxy reloads while replicas register."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable

from harness.machine import pgrep
from harness.probes import get

DIRECT_INGRESS_PORTS = range(30000, 31001)  # RAY_SERVE_DIRECT_INGRESS_MIN/MAX_HTTP_PORT
SETTLE_GRACE_S = 2.0
READY_STREAK = 5


def replica_pids() -> list[int]:
    """Every Serve replica process on the machine."""
    return pgrep("ServeReplica")


def direct_ports(pids: Iterable[int]) -> list[int]:
    """The direct-ingress HTTP ports the processes `pids` listen on."""
    import psutil

    ports = set()
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            for c in psutil.Process(pid).net_connections(kind="tcp"):
                if c.status == psutil.CONN_LISTEN and c.laddr.port in DIRECT_INGRESS_PORTS:
                    ports.add(c.laddr.port)
    return sorted(ports)


def settle(
    port: int, replicas: int, list_ports: Callable[[], list[int]], timeout_s: float = 90.0
) -> list[int]:
    """Until `list_ports()` finds `replicas` direct-ingress ports (0: none expected), then a
    grace for HAProxy's reloads, then until /readyz on `port` answers 200 five times in a
    row. Returns the direct ports found."""
    deadline = time.monotonic() + timeout_s
    ports = list_ports()
    while len(ports) < replicas and time.monotonic() < deadline:
        time.sleep(0.5)
        ports = list_ports()
    time.sleep(SETTLE_GRACE_S)
    ok = 0
    while ok < READY_STREAK and time.monotonic() < deadline:
        status, _ = get(port, "/readyz")
        ok = ok + 1 if status == 200 else 0
        time.sleep(0.2)
    return ports


def all_direct_ports() -> list[int]:
    """The direct-ingress ports of every Serve replica on the machine."""
    return direct_ports(replica_pids())
