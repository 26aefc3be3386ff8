"""The online feature store in Redis: the embedded store's lookup contract, shared by replicas.

Key layout (``liftgate features push --to URL`` writes it, serving reads it):

- ``liftgate:customer:<customer_id>``: a hash with
  ``f``, the contract-encoded feature vector (float64, little-endian, one per contract
  feature, in contract order); ``e``, the action eligibility (one byte per catalogue action,
  in catalogue order); ``a``, the raw attributes as JSON (read only when a request sends
  `context`, which goes through the contract together with them).
- ``liftgate:features``: a hash describing the last push: ``contract`` (the contract's
  version), ``actions`` (digest of the catalogue's eligibility rules), ``customers`` (rows
  pushed), ``pushed_at``.

Why encoded vectors rather than one field per attribute: a decision without context is one
``HMGET`` and two `np.frombuffer` calls, no contract transform per request (about 130 µs in
the embedded store's `encode`); the contract runs once per customer, at push time. The
price is that features encoded for one contract or catalogue are wrong for another, so the
store refuses to open when the push's ``contract``/``actions`` differ from serving's.

A push upserts: customers missing from the pushed file keep their keys. Each replica keeps
the lookups it made (known and unknown customers alike) in a `TTLCache`, so a customer's
new features are served within ``cache_ttl_s`` of a push.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pyarrow as pa

from liftgate.core.catalogue import ActionCatalogue
from liftgate.core.contract import FeatureContract
from liftgate.core.errors import InputError
from serving.online_store import CUSTOMER_ID, FeatureLookup, copy_of, encode
from serving.ttl_cache import TTLCache

CUSTOMER_PREFIX = "liftgate:customer:"
META_KEY = "liftgate:features"
FEATURES, ELIGIBLE, ATTRIBUTES = "f", "e", "a"
PUSH_BATCH_ROWS = 2_000


def printable_url(url: str) -> str:
    """The URL without its password, for messages and logs.

    >>> printable_url("redis://:secret@db:6379/0")
    'redis://:***@db:6379/0'
    """
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def actions_digest(catalogue: ActionCatalogue) -> str:
    """What the eligibility bytes depend on: the actions and their rules, in order."""
    rules = [action.model_dump(mode="json") for action in catalogue.actions]
    return hashlib.sha256(json.dumps(rules, sort_keys=True).encode()).hexdigest()[:12]


def connect(url: str):
    """A client that fails fast: a request must not wait long on a dead store (the
    service answers from defaults when the fetch fails)."""
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=1.0)


def push_command(url: str) -> str:
    return f"liftgate features push --from CUSTOMERS.parquet --to {printable_url(url)}"


def push_to_redis(
    client,
    table: pa.Table,
    contract: FeatureContract,
    catalogue: ActionCatalogue,
    on_rows: Callable[[int], None] = lambda n: None,
    batch_rows: int = PUSH_BATCH_ROWS,
) -> int:
    """Write every row of `table` (raw attributes with `customer_id`) in the layout above,
    one pipelined round trip per `batch_rows`; `on_rows(n)` after each batch."""
    for start in range(0, table.num_rows, batch_rows):
        batch = table.slice(start, batch_rows)
        features, _ = contract.transform(batch)
        columns = {name: batch.column(name) for name in batch.column_names}
        eligible = catalogue.eligibility_mask(columns, n_rows=batch.num_rows)
        rows = batch.to_pylist()
        pipe = client.pipeline(transaction=False)
        for i, row in enumerate(rows):
            customer_id = row.pop(CUSTOMER_ID)
            mapping = {
                FEATURES: features[i].astype("<f8").tobytes(),
                ELIGIBLE: eligible[i].astype(np.uint8).tobytes(),
                ATTRIBUTES: json.dumps(row, default=str),
            }
            pipe.hset(f"{CUSTOMER_PREFIX}{customer_id}", mapping=mapping)
        pipe.execute()
        on_rows(len(rows))
    client.hset(
        META_KEY,
        mapping={
            "contract": contract.version,
            "actions": actions_digest(catalogue),
            "customers": table.num_rows,
            "pushed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        },
    )
    return table.num_rows


class RedisOnlineStore:
    """`OnlineStore.lookup` over Redis: the same FeatureLookup for the same customer."""

    def __init__(
        self,
        client,
        url: str,
        contract: FeatureContract,
        catalogue: ActionCatalogue,
        cache_ttl_s: float = 30.0,
        cache_size: int = 100_000,
    ):
        import redis

        self.contract = contract
        self.catalogue = catalogue
        self.url = printable_url(url)
        self._client = client
        try:
            meta = {k.decode(): v.decode() for k, v in client.hgetall(META_KEY).items()}
        except redis.RedisError as exc:
            raise InputError(f"cannot reach Redis at {self.url} ({exc})") from exc
        if not meta:
            raise InputError(
                f"no customer features in Redis at {self.url}; fill it with `{push_command(url)}`"
            )
        expected = {"contract": contract.version, "actions": actions_digest(catalogue)}
        stale = {key: meta.get(key) for key, value in expected.items() if meta.get(key) != value}
        if stale:
            raise InputError(
                f"the features in Redis at {self.url} were pushed for {stale}, serving "
                f"expects {expected}; push them again: `{push_command(url)}`"
            )
        self.size = int(meta["customers"])
        self._n_features = len(contract.names)
        self._unknown = encode(contract, catalogue, {}, cold_start=True)
        self._cache = TTLCache(cache_size, cache_ttl_s)

    @classmethod
    def from_url(
        cls,
        url: str,
        contract: FeatureContract,
        catalogue: ActionCatalogue,
        cache_ttl_s: float = 30.0,
        cache_size: int = 100_000,
    ) -> RedisOnlineStore:
        return cls(connect(url), url, contract, catalogue, cache_ttl_s, cache_size)

    def close(self) -> None:
        self._client.close()

    def attributes(self, customer_id: str) -> dict[str, Any]:
        return self._stored_attributes(customer_id) or {}

    def _stored_attributes(self, customer_id: str) -> dict[str, Any] | None:
        raw = self._client.hget(f"{CUSTOMER_PREFIX}{customer_id}", ATTRIBUTES)
        return None if raw is None else json.loads(raw)

    def _known(self, customer_id: str) -> FeatureLookup | None:
        """The stored lookup of a known customer (None: unknown), through the cache."""
        cached = self._cache.get(customer_id)
        if cached is None:
            features, eligible = self._client.hmget(
                f"{CUSTOMER_PREFIX}{customer_id}", FEATURES, ELIGIBLE
            )
            if features is None:
                cached = self._unknown
            else:
                vector = np.frombuffer(features, dtype="<f8", count=self._n_features)
                mask = np.frombuffer(eligible, dtype=np.uint8).astype(bool)
                cached = FeatureLookup(vector, mask, False)
            self._cache.put(customer_id, cached)
        return None if cached is self._unknown else cached

    def lookup(self, customer_id: str, context: Mapping[str, Any] | None = None) -> FeatureLookup:
        if not context:
            known = self._known(customer_id)
            if known is None:
                return copy_of(self._unknown)
            return FeatureLookup(known.features.copy(), known.eligible.copy(), False)
        stored = self._stored_attributes(customer_id)
        return encode(self.contract, self.catalogue, {**(stored or {}), **context}, stored is None)
