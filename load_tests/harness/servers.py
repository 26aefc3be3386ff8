"""A server under test as its own process tree: plain uvicorn, ``liftgate serve`` or any
command that serves HTTP on a port of this machine and stops on SIGTERM."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.probes import get
from harness.replicas import direct_ports

STOP_TIMEOUT_S = 90.0
LEFTOVER_GRACE_S = 15.0


@dataclass
class Server:
    """One server: its command, environment and log; `ray_temp` (the Ray temp dir on its
    command lines) also finds the Ray and HAProxy processes that were re-parented."""

    name: str
    topology: str
    port: int
    command: list[str]
    env: dict[str, str]
    log: Path
    cwd: Path
    ray_temp: str | None = None
    process: subprocess.Popen | None = None
    seen: dict[int, float] = field(default_factory=dict)  # pid -> create_time

    def start(self) -> None:
        """Start the command in its own session, output to the log."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout_s: float) -> None:
        """Until GET /readyz answers 200; the log's tail if the server exits first."""
        deadline = time.monotonic() + timeout_s
        last = None
        while time.monotonic() < deadline:
            if not self.alive():
                tail = self.log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{self.name} exited; {self.log}:\n{tail}")
            last, _ = get(self.port, "/readyz")
            if last == 200:
                return
            time.sleep(0.5)
        raise TimeoutError(f"{self.name} not ready after {timeout_s:.0f} s (last: {last})")

    def tree(self) -> list:
        """The server's processes now: its descendants, plus any Ray/haproxy process of this
        run that was re-parented (matched by the run's Ray temp dir)."""
        import psutil

        if not self.alive():
            return []
        try:
            root = psutil.Process(self.process.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
        pids = {p.pid for p in procs}
        if self.ray_temp:
            for p in psutil.process_iter(["pid", "cmdline", "create_time"]):
                cmdline = " ".join(p.info["cmdline"] or ())
                if p.pid not in pids and self.ray_temp in cmdline:
                    procs.append(p)
                    pids.add(p.pid)
        for p in procs:
            with contextlib.suppress(psutil.Error):
                self.seen.setdefault(p.pid, p.create_time())
        return procs

    def rss_bytes(self) -> int:
        """Resident memory of the whole tree."""
        import psutil

        total = 0
        for p in self.tree():
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total

    def cpu_seconds(self) -> dict[int, float]:
        """User + system CPU seconds so far of each process of the tree."""
        import psutil

        seconds = {}
        for p in self.tree():
            with contextlib.suppress(psutil.Error):
                times = p.cpu_times()
                seconds[p.pid] = times.user + times.system
        return seconds

    def direct_ports(self) -> list[int]:
        """Each Ray ingress replica's direct-ingress port (none for a plain server)."""
        return direct_ports(p.pid for p in self.tree())

    def metrics_ports(self) -> list[int]:
        """Where to scrape /metrics so every replica is scraped once: the direct-ingress
        ports, else the server's own port."""
        return self.direct_ports() or [self.port]

    def stop(self) -> list[str]:
        """SIGTERM the server (Serve and Ray shut down in its `finally`), then SIGKILL any
        process of its tree still alive. Returns the processes that had to be killed."""
        import psutil

        if self.process is None:
            return []
        self.tree()  # remember the latest tree before it goes
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        deadline = time.monotonic() + LEFTOVER_GRACE_S
        leftovers = self._leftovers()
        while leftovers and time.monotonic() < deadline:
            time.sleep(0.5)
            leftovers = self._leftovers()
        killed = []
        for p in leftovers:
            with contextlib.suppress(psutil.Error):
                name = " ".join(p.cmdline()[:2])[:60] or p.name()
                p.kill()
                killed.append(f"{p.pid} ({name})")
        return killed

    def _leftovers(self) -> list:
        import psutil

        alive = []
        for pid, created in self.seen.items():
            with contextlib.suppress(psutil.Error):
                p = psutil.Process(pid)
                if p.create_time() == created and p.status() != psutil.STATUS_ZOMBIE:
                    alive.append(p)
        return alive
