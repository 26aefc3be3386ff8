"""What the throwaway local services share (`local_postgres`, `local_redis`, `local_mlflow`):
a free port on the loopback, and the error for a service whose binaries are not installed.

>>> 1024 <= free_loopback_port() <= 65535
True
"""

from __future__ import annotations

import socket


class ServiceUnavailable(RuntimeError):
    """A service's binaries are not installed on this machine; the message says how to
    install them."""


def free_loopback_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now (for a server about to start)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
