"""The closed-loop load client, run as its own process (``python -m harness.closed_loop SPEC``
from load_tests/, started by `ClientProcess`).

asyncio (uvloop when installed) with raw HTTP/1.1 keep-alive sockets, pre-built request
bytes, and one ``perf_counter_ns`` pair per request from write to the last response byte:
percentiles are of those per-request latencies, with no coordinated-omission correction
(wrk applies one before ``done()``, which inflates tail percentiles of a closed loop; see
load_tests/floor/RAY_SERVE_MODES.md). It warms up, tells the parent (a line on stdout),
waits for its go (a line on stdin, so the parent can take its "before" readings), runs the
measured requests and prints their results as one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.probes import HOST

LOAD_TESTS = Path(__file__).resolve().parents[1]
ERROR_SAMPLES = 5


@dataclass(frozen=True)
class LoadSpec:
    """`warmup` requests on `warmup_connections`, then `requests` on `connections`, each a
    POST of one of `bodies` (warm-up first) to `path`, with `headers` (an API key). Any
    status but `ok_status` is an error; with `keep_answers` the result also holds each
    measured request's answer."""

    port: int
    path: str
    bodies: list[str]
    warmup: int
    requests: int
    connections: int
    timeout_s: float
    warmup_connections: int = 8
    headers: dict[str, str] = field(default_factory=dict)
    ok_status: int = 200
    keep_answers: bool = False


class ClientProcess:
    """The load client in its own process: warmed up once constructed, measured by run()."""

    def __init__(self, spec: LoadSpec, spec_path: Path):
        spec_path.write_text(json.dumps(asdict(spec)))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "harness.closed_loop", str(spec_path)],
            cwd=LOAD_TESTS,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.warm: dict[str, Any] = json.loads(self.process.stdout.readline() or "{}")

    def run(self) -> dict[str, Any]:
        """Say go; the measured run's latencies, wall time, statuses, errors and CPU."""
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"load client failed (exit {self.process.wait(timeout=30)})")
        return json.loads(line)

    def close(self) -> None:
        """End the client if it is still running (it exits by itself after run())."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: write a request, await the complete response."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future | None = None
        self.closed = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._try_complete()

    def connection_lost(self, exc) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"connection lost: {exc}"))

    def _try_complete(self) -> None:
        if self.waiter is None or self.waiter.done():
            return
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        status = int(head[9:12])
        match = re.search(rb"\r\ncontent-length:\s*(\d+)", head)
        if match:
            total = end + 4 + int(match.group(1))
            if len(self.buffer) < total:
                return
        elif b"transfer-encoding: chunked" in head:
            last = self.buffer.find(b"\r\n0\r\n\r\n", end)
            if last < 0:
                return
            total = last + 7
        else:  # no length: the body ends with the connection
            return
        body = bytes(self.buffer[end + 4 : total])
        del self.buffer[:total]
        keep = b"\r\nconnection: close" not in head
        self.waiter.set_result((status, keep, body))

    async def request(self, payload: bytes, timeout_s: float) -> tuple[int, bool, bytes]:
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(payload)
        return await asyncio.wait_for(self.waiter, timeout_s)


async def _closed_loop(
    port: int,
    requests: list[bytes],
    connections: int,
    timeout_s: float,
    ok_status: int = 200,
    keep_answers: bool = False,
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    latencies: list[int] = []
    statuses: dict[str, int] = {}
    errors = {"status": 0, "socket": 0}
    samples: list[str] = []
    # Per request, in the order of `requests`: [status, body], or None without an answer.
    answers: list[list | None] = [None] * len(requests)
    queue = iter(enumerate(requests))

    async def connect() -> _Connection:
        _, protocol = await loop.create_connection(_Connection, HOST, port)
        return protocol

    async def worker() -> None:
        conn: _Connection | None = None
        for index, payload in queue:
            try:
                if conn is None or conn.closed:
                    conn = await connect()
                started = time.perf_counter_ns()
                status, keep, body = await conn.request(payload, timeout_s)
                latencies.append(time.perf_counter_ns() - started)
            except (OSError, ConnectionError, TimeoutError, ValueError) as exc:
                errors["socket"] += 1
                if len(samples) < ERROR_SAMPLES:
                    samples.append(f"{type(exc).__name__}: {exc}")
                if conn is not None and conn.transport is not None:
                    conn.transport.close()
                conn = None
                continue
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            if keep_answers:
                answers[index] = [status, body.decode(errors="replace")]
            if status != ok_status:
                errors["status"] += 1
                if len(samples) < ERROR_SAMPLES:
                    samples.append(f"{status}: {body[:200]!r}")
            if not keep:
                conn.transport.close()
                conn = None
        if conn is not None and conn.transport is not None:
            conn.transport.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    wall = time.perf_counter() - started
    result = {
        "latencies_ns": latencies,
        "wall_s": wall,
        "statuses": statuses,
        "errors": errors,
        "error_samples": samples,
    }
    if keep_answers:
        result["answers"] = answers
    return result


def _http_request(port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return (
        f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n{extra}"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def main(spec_path: str) -> None:
    """Warm up, signal the parent (a line on stdout), wait for its go, run, print results."""
    spec = LoadSpec(**json.loads(Path(spec_path).read_text()))
    requests = [_http_request(spec.port, spec.path, b.encode(), spec.headers) for b in spec.bodies]
    warm = requests[: spec.warmup]
    measured = requests[spec.warmup : spec.warmup + spec.requests]
    try:
        import uvloop

        new_loop = uvloop.new_event_loop
        loop_name = "uvloop"
    except ImportError:
        new_loop = asyncio.new_event_loop
        loop_name = "asyncio"
    loop = new_loop()
    warm_result = loop.run_until_complete(
        _closed_loop(spec.port, warm, spec.warmup_connections, spec.timeout_s, spec.ok_status)
    )
    print(json.dumps({"warm_errors": warm_result["errors"]}), flush=True)
    sys.stdin.readline()  # the parent takes its readings, then says go
    cpu_started = time.process_time()
    measured_loop = _closed_loop(
        spec.port, measured, spec.connections, spec.timeout_s, spec.ok_status, spec.keep_answers
    )
    result = loop.run_until_complete(measured_loop)
    result["cpu_s"] = time.process_time() - cpu_started
    result["loop"] = loop_name
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
