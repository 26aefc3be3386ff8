"""Feature fetch from Redis against the embedded store (the baseline), in one run.

A world's customers are pushed to a throwaway redis-server (liftgate.core.local_redis) and
to the embedded store's file, then the same customers (95 % known, 5 % unknown: cold starts)
are looked up one at a time from each store: the embedded store, Redis with no replica
cache (every lookup a round trip), and Redis through the replica's TTL cache once warm.
Prints a table of µs per lookup (p50, p99, mean) and of the push's rows/s.

    .venv/bin/python load_tests/bench_features.py [--customers 100000] [--lookups 20000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from configs.loader import load_config
from liftgate.core.catalogue import ActionCatalogue
from liftgate.core.contract import FeatureContract
from liftgate.core.local_redis import LocalRedis
from liftgate.sim.world import World
from serving.feature_push import push
from serving.online_store import OnlineStore
from serving.redis_store import RedisOnlineStore


def lookup_us(store, customer_ids: list[str]) -> np.ndarray:
    clock = time.perf_counter_ns
    latencies = np.empty(len(customer_ids), dtype=np.float64)
    for i, customer_id in enumerate(customer_ids):
        started = clock()
        store.lookup(customer_id)
        latencies[i] = clock() - started
    return latencies / 1000


def row(name: str, us: np.ndarray) -> str:
    p50, p99 = np.percentile(us, [50, 99])
    return f"{name:<28} {p50:>9.1f} {p99:>9.1f} {us.mean():>9.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=20_000)
    args = parser.parse_args()
    config = load_config()
    contract, catalogue = FeatureContract(config.features), ActionCatalogue(config.actions)
    customers = World(seed=7, n_customers=args.customers).customers
    table = pa.Table.from_pandas(customers, preserve_index=False)
    rng = np.random.default_rng(0)
    known = rng.choice(customers["customer_id"].to_numpy(), size=args.lookups)
    ids = [f"unknown-{i}" if rng.random() < 0.05 else str(c) for i, c in enumerate(known)]

    with tempfile.TemporaryDirectory() as tmp, LocalRedis() as server:
        path = Path(tmp) / "customers.parquet"
        started = time.perf_counter()
        push(table, contract, catalogue, path)
        embedded_push_s = time.perf_counter() - started
        started = time.perf_counter()
        push(table, contract, catalogue, path, server.url())
        redis_push_s = time.perf_counter() - started

        embedded = OnlineStore.from_parquet(path, contract, catalogue)
        uncached = RedisOnlineStore.from_url(server.url(), contract, catalogue, cache_size=0)
        cached = RedisOnlineStore.from_url(server.url(), contract, catalogue, cache_ttl_s=3600)
        lookup_us(embedded, ids[:1000])  # warm-up: allocators, the first round trips
        lookup_us(uncached, ids[:1000])
        lookup_us(cached, ids)  # fills the cache: the warm pass below is all hits
        results = [
            ("embedded (baseline)", lookup_us(embedded, ids)),
            ("redis, no cache", lookup_us(uncached, ids)),
            ("redis, warm TTL cache", lookup_us(cached, ids)),
        ]
        uncached.close()
        cached.close()

    n, m = args.lookups, args.customers
    print(f"\nfeature fetch, {n:,} lookups of {m:,} customers (5 % unknown)")
    print(f"{'store':<28} {'p50 µs':>9} {'p99 µs':>9} {'mean µs':>9}")
    for name, us in results:
        print(row(name, us))
    print(f"\npush of {args.customers:,} customers")
    print(f"{'store':<28} {'seconds':>9} {'rows/s':>9}")
    for name, seconds in (("embedded (baseline)", embedded_push_s), ("redis", redis_push_s)):
        print(f"{name:<28} {seconds:>9.2f} {args.customers / seconds:>9,.0f}")


if __name__ == "__main__":
    main()
