"""A small bounded cache whose entries expire: what a replica remembers of a remote store.

Least recently used entries leave first once `size` is reached; an entry older than
`ttl_s` is a miss (and is dropped). Size 0 or TTL 0 caches nothing.

>>> now = [0.0]
>>> cache = TTLCache(size=2, ttl_s=10, clock=lambda: now[0])
>>> cache.put("a", 1); cache.put("b", 2); cache.put("c", 3)
>>> cache.get("a"), cache.get("b"), cache.get("c")
(None, 2, 3)
>>> now[0] = 11.0
>>> cache.get("b"), len(cache)
(None, 1)
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any


class TTLCache:
    def __init__(self, size: int, ttl_s: float, clock: Callable[[], float] = time.monotonic):
        self.size = size if ttl_s > 0 else 0
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()

    def get(self, key: Hashable) -> Any | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if self._clock() >= expires:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def put(self, key: Hashable, value: Any) -> None:
        if self.size == 0:
            return
        self._entries[key] = (self._clock() + self.ttl_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
