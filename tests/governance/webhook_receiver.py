"""A webhook receiver on 127.0.0.1 for the connector and outbox tests (not a test module).

It answers each POST with the next status of `statuses` (200 once they run out) and keeps
every request's ``Idempotency-Key`` header and JSON body, in order of arrival. With `hold`,
each request waits until the event is set before it is answered (a receiver that hangs).
Use it as a context manager, on a port of the `free_port` fixture.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


class Receiver:
    def __init__(
        self, port: int, statuses: Iterable[int] = (), hold: threading.Event | None = None
    ):
        self.url = f"http://127.0.0.1:{port}/hook"
        self.requests: list[tuple[str | None, dict]] = []
        self._statuses = iter(statuses)
        self._lock = threading.Lock()
        self._hold = hold
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True  # a held request does not keep the test alive

    @property
    def keys(self) -> list[str | None]:
        return [key for key, _ in self.requests]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver._lock:
                    receiver.requests.append((self.headers.get("Idempotency-Key"), body))
                    status = next(receiver._statuses, 200)
                if receiver._hold is not None:
                    receiver._hold.wait()
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:  # quiet test output
                pass

        return Handler

    def __enter__(self) -> Receiver:
        # Polls for shutdown every 10 ms (the default, 0.5 s, would slow every test down).
        serving = threading.Thread(target=self._server.serve_forever, args=(0.01,), daemon=True)
        serving.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._hold is not None:
            self._hold.set()
        self._server.shutdown()
        self._server.server_close()
