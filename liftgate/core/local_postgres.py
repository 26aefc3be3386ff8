"""A throwaway PostgreSQL server on 127.0.0.1, from the system packages (`apt-get install
postgresql`), for the end-to-end tests and benchmarks that run a part on PostgreSQL.

`LocalPostgres` makes a fresh cluster (`initdb`) in a directory of its own, starts it on a
free port, listening on the loopback only and with its socket in that directory, and on exit
stops it (`pg_ctl stop -m immediate`) and removes the directory. PostgreSQL refuses to run as
root, so under root (CI runs as root) its commands run as the `postgres` user the package
creates, which owns the directory. Authentication is `trust` for local connections: the
server is reachable only from this machine and lives as long as the test.

    >>> with LocalPostgres() as pg:  # doctest: +SKIP
    ...     url = pg.url("liftgate_journeys")  # postgresql://postgres@127.0.0.1:PORT/...
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Final

from liftgate.core.local_services import ServiceUnavailable, free_loopback_port

#: What a server's owner is called in the cluster, and the system user that runs it as root.
SUPERUSER: Final = "postgres"
INSTALL_HINT: Final = "apt-get update && apt-get install -y postgresql"


class PostgresUnavailable(ServiceUnavailable):
    """The PostgreSQL server binaries are not installed on this machine."""


def postgres_bindir() -> Path:
    """The directory of `initdb` and `pg_ctl`: on PATH, or the newest Debian/Ubuntu install."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(os.path.realpath(on_path)).parent
    installed = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4])
    )
    if not installed:
        raise PostgresUnavailable(f"PostgreSQL is not installed; install it with: {INSTALL_HINT}")
    return Path(installed[-1]).parent


class LocalPostgres:
    """A PostgreSQL cluster of its own on 127.0.0.1 for the duration of a `with` block."""

    def __init__(self, port: int | None = None):
        self.bindir = postgres_bindir()
        self.port = port or free_loopback_port()
        self.root: Path | None = None

    def _run(self, *command: str) -> None:
        as_root = os.geteuid() == 0
        prefix = ["runuser", "-u", SUPERUSER, "--"] if as_root else []
        done = subprocess.run(
            [*prefix, *command], capture_output=True, text=True, cwd=self.root, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {done.stdout}{done.stderr}")

    def __enter__(self) -> LocalPostgres:
        # a short path: the server's Unix socket lives here and a socket path is ≤ 107 bytes
        self.root = Path(tempfile.mkdtemp(prefix="lg-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.root, SUPERUSER, SUPERUSER)
        data = self.root / "data"
        try:
            self._run(
                str(self.bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            )
            options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=on"
            self._run(
                str(self.bindir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(self.root / "server.log"),
                "-w",
                "start",
            )
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self.root is not None
        try:
            self._run(
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.root / "data"),
                "-m",
                "immediate",
                "stop",
            )
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str, driver: str = "postgresql") -> str:
        """The URL of `database` on this server (created by whoever connects first, e.g. DBOS
        creates its system database)."""
        return f"{driver}://{SUPERUSER}@127.0.0.1:{self.port}/{database}"
