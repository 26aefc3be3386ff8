"""A throwaway Redis server on 127.0.0.1, from the system packages (`apt-get install
redis-server`), for the tests and benchmarks of the Redis online store.

`LocalRedis` starts ``redis-server`` on a free port, on the loopback only, with no
persistence (no RDB snapshot, no append-only file) and its working directory a temporary
one, and on exit stops it and removes the directory.

    >>> with LocalRedis() as server:  # doctest: +SKIP
    ...     url = server.url()  # redis://127.0.0.1:PORT/0
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Final

from liftgate.core.local_services import ServiceUnavailable, free_loopback_port

INSTALL_HINT: Final = "apt-get update && apt-get install -y --no-install-recommends redis-server"
START_TIMEOUT_S: Final = 10.0


class RedisUnavailable(ServiceUnavailable):
    """The redis-server binary is not installed on this machine."""


class LocalRedis:
    """A Redis server of its own on 127.0.0.1 for the duration of a `with` block."""

    def __init__(self, port: int | None = None):
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisUnavailable(
                f"redis-server is not installed; install it with: {INSTALL_HINT}"
            )
        self.binary = binary
        self.port = port or free_loopback_port()
        self.root: Path | None = None
        self.process: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def __enter__(self) -> LocalRedis:
        import redis

        self.root = Path(tempfile.mkdtemp(prefix="lg-redis-"))
        command = [self.binary, "--bind", "127.0.0.1", "--port", str(self.port)]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.root)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        client = redis.Redis(host="127.0.0.1", port=self.port)
        deadline = time.monotonic() + START_TIMEOUT_S
        try:
            while True:  # ready once it answers
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        message = f"redis-server did not start on port {self.port}"
                        raise RuntimeError(message) from None
                    time.sleep(0.02)
        except BaseException:
            self.__exit__()
            raise
        finally:
            client.close()
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            if self.process is not None and self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        finally:
            if self.root is not None:
                shutil.rmtree(self.root, ignore_errors=True)
