"""What the API key check costs an authenticated request, and a replica's re-read of the keys.

Run: ``.venv/bin/python load_tests/bench_auth.py [--calls 200000] [--keys 100]``

A throw-away key store with ``--keys`` keys, one of them the caller's (role app). Timed, as
the median of 7 rounds of ``--calls`` calls each, per call:

- ``Access.check`` of ``POST /v1/decide`` with ``Authorization: Bearer <key>``: the key
  ring's lookup by key id, one HMAC-SHA256, a constant-time compare, the role and the token
  bucket (serving/access.py);
- the same through ``AccessMiddleware`` (the ASGI layer that finds the header), minus the
  bare inner app it wraps: what auth adds to one request inside the server;
- beside them, the floor: one HMAC-SHA256 alone.

Then what a replica does once per ``serving.auth.key_cache_s``, on the request that finds
it due: look whether the store changed (its SQLite header), and, after a change, read the
keys again; with ``--keys`` and with 10,000 keys.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import statistics
import tempfile
import time
from pathlib import Path

from harness.stats import ROUNDS, per_call_us  # load_tests/, beside this file
from harness.tables import fmt, print_table, say

from serving.access import Access
from serving.access_http import AccessMiddleware
from serving.api_keys import APP, KeyRing, KeyStore
from serving.rate_limit import TokenBuckets


def middleware_us(access: Access, header: bytes, calls: int) -> tuple[float, float]:
    """µs per request of a bare ASGI app, and of the same behind AccessMiddleware."""

    async def inner(scope, receive, send) -> None:
        return None

    wrapped = AccessMiddleware(inner, access_of=lambda scope: access)
    scope = {
        "type": "http",
        "path": "/v1/decide",
        "headers": [(b"content-type", b"application/json"), (b"authorization", header)],
    }

    async def run(app) -> float:
        rounds = []
        for _ in range(ROUNDS):
            started = time.perf_counter()
            for _ in range(calls):
                await app(scope, None, None)
            rounds.append((time.perf_counter() - started) / calls * 1e6)
        return statistics.median(rounds)

    return asyncio.run(run(inner)), asyncio.run(run(wrapped))


def refresh_ms(path: Path) -> tuple[float, float]:
    """ms of a look at an unchanged store, and of a read of its keys (a new ring's first)."""
    looks, reads = [], []
    for _ in range(ROUNDS):
        ring = KeyRing(path, recheck_s=0.0)
        started = time.perf_counter()
        len(ring)  # the first look reads the keys
        reads.append((time.perf_counter() - started) * 1e3)
        started = time.perf_counter()
        len(ring)  # due again, unchanged: a look only
        looks.append((time.perf_counter() - started) * 1e3)
    return statistics.median(looks), statistics.median(reads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000, help="Calls per round.")
    parser.add_argument("--keys", type=int, default=100, help="Keys in the store.")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as directory:
        store = KeyStore(Path(directory) / "keys.db")
        key = store.create(APP).key
        for _ in range(args.keys - 1):
            store.create(APP)
        ring = KeyRing(store.path, recheck_s=3600.0)
        # A bucket that never empties: the check's full path, every call allowed.
        access = Access(ring.verify, TokenBuckets(per_s=1e12, burst=10**12))
        header = f"Bearer {key}"
        assert access.check("/v1/decide", header) is None
        say(f"timing {ROUNDS} rounds of {args.calls:,} calls ...")
        check = per_call_us(lambda: access.check("/v1/decide", header), args.calls)
        salt, secret = b"s" * 16, key.encode()
        floor = per_call_us(lambda: hmac.digest(salt, secret, hashlib.sha256), args.calls)
        bare, wrapped = middleware_us(access, header.encode(), args.calls)
        small = refresh_ms(store.path)

        big = KeyStore(Path(directory) / "big.db")
        with big._transaction() as connection:  # 10,000 keys in one transaction, not 10,000
            connection.executemany(
                "INSERT INTO api_keys (key_id, name, role, salt, digest, created_at, created_by)"
                " VALUES (?, '', 'app', ?, ?, '2026-01-01T00:00:00+00:00', 'bench')",
                [(f"{i:012x}", b"s" * 16, b"d" * 32) for i in range(10_000)],
            )
        large = refresh_ms(big.path)

    print(f"API key check, median of {ROUNDS} rounds of {args.calls:,} calls; {args.keys} keys\n")
    print_table(
        ("what", "µs per request"),
        [
            ("Access.check (key ring lookup, HMAC, compare, role, bucket)", fmt(check, 2)),
            ("AccessMiddleware + check, minus the bare ASGI app", fmt(wrapped - bare, 2)),
            ("floor: one HMAC-SHA256", fmt(floor, 2)),
        ],
        first_left=True,
    )
    print()
    print_table(
        ("once per key_cache_s per replica", "look, ms", "read after a change, ms"),
        [
            (f"{args.keys} keys", fmt(small[0], 3), fmt(small[1], 3)),
            ("10,000 keys", fmt(large[0], 3), fmt(large[1], 3)),
        ],
        first_left=True,
    )


if __name__ == "__main__":
    main()
