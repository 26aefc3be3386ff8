"""Plain HTTP probes of a server under test on this machine."""

from __future__ import annotations

import http.client
import socket

HOST = "127.0.0.1"


def get(
    port: int, path: str, timeout_s: float = 2.0, headers: dict[str, str] | None = None
) -> tuple[int | None, bytes]:
    """GET `path` on a fresh connection: (status, body), or (None, b"") without an answer."""
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout_s)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        return None, b""
    finally:
        connection.close()


def port_free(port: int) -> bool:
    """Nothing listens on `port` of the loopback address."""
    with socket.socket() as s:
        return s.connect_ex((HOST, port)) != 0
