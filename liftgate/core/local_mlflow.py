"""A throwaway `mlflow server` on 127.0.0.1, for the end-to-end tests and the benchmark
that run the registry against a tracking server (registry.store: ``registry.tracking_uri``).

`LocalMlflowServer` starts ``mlflow server`` (the one installed beside this Python) on a
free port with the given backend store (``sqlite:///…`` or ``postgresql+psycopg://…``),
artifacts served through it and kept under ``root/artifacts``, waits until ``/health``
answers, and on exit stops it and its workers (its process group). Its output goes to
``root/server.log``.

    >>> root = Path("/tmp/mlflow-server")
    >>> with LocalMlflowServer(f"sqlite:///{root}/mlflow.db", root) as server:  # doctest: +SKIP
    ...     server.url  # http://127.0.0.1:PORT
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Final

from liftgate.core.local_services import free_loopback_port

#: A server's first start migrates its database (PostgreSQL: a minute on a busy machine).
START_TIMEOUT_S: Final = 180.0
STOP_TIMEOUT_S: Final = 30.0


class LocalMlflowServer:
    """`mlflow server` on 127.0.0.1 for the duration of a `with` block."""

    def __init__(self, backend_store_uri: str, root: Path):
        self.backend_store_uri = backend_store_uri
        self.root = root
        self.url = f"http://127.0.0.1:{free_loopback_port()}"
        self._process: subprocess.Popen | None = None

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as answer:
                return answer.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def __enter__(self) -> LocalMlflowServer:
        self.root.mkdir(parents=True, exist_ok=True)
        # MLflow sets MLFLOW_TRACKING_URI in a process that used it; the server needs none.
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_TRACKING")}
        env["MLFLOW_ENABLE_TELEMETRY"] = "false"
        port = self.url.rsplit(":", 1)[1]
        with self.log.open("w") as log:
            self._process = subprocess.Popen(
                [
                    str(Path(sys.executable).with_name("mlflow")),
                    "server",
                    *("--host", "127.0.0.1", "--port", port, "--workers", "1"),
                    *("--backend-store-uri", self.backend_store_uri),
                    *("--artifacts-destination", str(self.artifacts)),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # its workers are stopped with its process group
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.healthy():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"mlflow server did not start:\n{self.log.read_text()}")
            time.sleep(0.2)
        return self

    def __exit__(self, *exc_info: object) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait()


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the server and its workers are gone
        os.killpg(pid, signum)
