"""Per-key rate limits: a token bucket for each API key, in one replica's memory.

A key's bucket holds up to `burst` tokens and refills at `per_s` tokens a second. A request
takes a token; with none left it is refused, and told how long until one is back (the HTTP
layer answers 429 with Retry-After). The buckets are the replica's own, so the limit holds
per key *per replica*: behind the proxy, N replicas let one key send up to N × `per_s` in
all. That needs no shared state on the request path; size `per_s` for one replica.

>>> now = [0.0]
>>> buckets = TokenBuckets(per_s=2.0, burst=2, clock=lambda: now[0])
>>> [buckets.take("k1") for _ in range(3)]  # the burst, then the wait for the next token
[0.0, 0.0, 0.5]
>>> now[0] = 0.5
>>> buckets.take("k1"), buckets.take("k2")  # refilled; another key has its own bucket
(0.0, 0.0)
"""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBuckets:
    """One token bucket per key, created full on the key's first request; `clock` is the
    monotonic time (tests pass their own)."""

    def __init__(
        self, per_s: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_s = per_s
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, list[float]] = {}  # key → [tokens, time of the last take]

    def take(self, key: str) -> float:
        """Take a token from `key`'s bucket: 0.0 if there was one, else the seconds until
        there is (nothing is taken)."""
        now = self._clock()
        bucket = self._buckets.setdefault(key, [float(self.burst), now])
        tokens = min(float(self.burst), bucket[0] + (now - bucket[1]) * self.per_s)
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return 0.0
        bucket[0] = tokens
        return (1.0 - tokens) / self.per_s
