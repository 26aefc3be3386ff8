"""Redis against the embedded online store (the baseline), in one run: feature fetch alone,
then whole decisions.

Feature fetch: a world's customers are pushed to a throwaway redis-server
(liftgate.core.local_redis) and to the embedded store's file, then the same customers (95 %
known, 5 % unknown: cold starts) are looked up one at a time from each store: the embedded
store, Redis with no replica cache (every lookup a round trip), and Redis through the
replica's TTL cache once warm. A table of µs per lookup (p50, p99, mean) and of the push's
rows/s.

Decisions: `DecisionService.decide` in this process (no HTTP, no Ray: what the store adds to
a decision, without the proxy's milliseconds of noise around it), timed one after another
by `harness.core` on a trained LIFTGATE_HOME (`bench_decide.build_home`, or ``--home``)
whose customers are also pushed to the Redis server (database 1; the feature fetch's are in
0): the benchmark's request mix (`harness.request_mix`, 5 candidates, 5 % unknown ids), the
same bodies for each store, the logs' fsync off. Three services one after another in this
one process, each over its own copy of the home and a copy of the configuration whose
``online_store`` is the embedded store (baseline), Redis with ``cache_size: 0``, or Redis
with a cache that holds every customer for the whole run, filled by one lookup of each
before the warm-up. Unknown ids still go to Redis, each being new: at 5 % of requests they
are what the warm cache's p95 shows. A table of µs per decision (p50, p95, p99, mean).

    .venv/bin/python load_tests/bench_features.py [--customers 100000] [--lookups 20000]
        [--rows 60000 | --home DIR] [--decisions 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from bench_decide import build_home  # load_tests/, beside this file
from harness.config_copy import config_copy
from harness.core import WARM_UP, decide_all, prepared
from harness.homes import known_customer_ids
from harness.tables import say

from configs.loader import CONFIG_DIR_ENV, load_config
from liftgate.core.catalogue import ActionCatalogue
from liftgate.core.contract import FeatureContract
from liftgate.core.home import Home
from liftgate.core.local_redis import LocalRedis
from liftgate.sim.world import World
from serving.feature_push import push, read_customers
from serving.online_store import OnlineStore
from serving.redis_store import RedisOnlineStore

BASELINE = "embedded (baseline)"
WARM_CACHE = "redis, warm cache"
#: A decision's request mix has 5 candidates (harness.request_mix).
CANDIDATES = 5


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


def store_settings(redis_url: str) -> dict[str, dict[str, Any]]:
    """serving.yaml ``online_store`` of each decision run, by the name its row gets.

    >>> settings = store_settings("redis://127.0.0.1:6379/0")
    >>> list(settings), settings["redis, no cache"]["cache_size"]
    (['embedded (baseline)', 'redis, no cache', 'redis, warm cache'], 0)
    """
    redis = {"kind": "redis", "url": redis_url}
    return {
        BASELINE: {"kind": "embedded"},
        "redis, no cache": {**redis, "cache_size": 0},
        # Nothing expires or is evicted during the run: every known customer is a hit.
        WARM_CACHE: {**redis, "cache_ttl_s": 3600, "cache_size": 10_000_000},
    }


def decide_row(name: str, us: np.ndarray, baseline_p95: float) -> str:
    """A line of the decisions table: p50, p95, p99 and mean µs, and p95 beside the
    baseline's (+µs).

    >>> decide_row("x", np.array([100.0, 200.0, 300.0]), 150.0).split()
    ['x', '200.0', '290.0', '298.0', '200.0', '+140.0']
    """
    p50, p95, p99 = np.percentile(us, [50, 95, 99])
    return (
        f"{name:<22} {p50:>9.1f} {p95:>9.1f} {p99:>9.1f} {us.mean():>9.1f} "
        f"{p95 - baseline_p95:>+12.1f}"
    )


@contextmanager
def config_dir_env(directory: Path) -> Iterator[None]:
    """`load_config()` reads `directory` inside the block (harness.core copies it)."""
    before = os.environ.get(CONFIG_DIR_ENV)
    os.environ[CONFIG_DIR_ENV] = str(directory)
    try:
        yield
    finally:
        if before is None:
            del os.environ[CONFIG_DIR_ENV]
        else:
            os.environ[CONFIG_DIR_ENV] = before


def decide_us(home: Path, online_store: Mapping[str, Any], warm: bool, count: int) -> np.ndarray:
    """µs of each of `count` decisions in process by a service over a copy of `home` whose
    configuration has `online_store`; with `warm`, every known customer is looked up once
    first (a cache fills)."""
    with tempfile.TemporaryDirectory(prefix="lgfeat-") as tmp:
        work = Path(tmp)
        directory = config_copy(
            work, load_config().directory, "store", {"online_store": online_store}
        )
        with config_dir_env(directory):
            service, components, parsed = prepared(home, work, CANDIDATES, "off", WARM_UP + count)
            try:
                if warm:
                    assert components.store is not None  # prepared checked it loaded
                    for customer_id in known_customer_ids(Home(home)):
                        components.store.lookup(customer_id)
                loop = asyncio.new_event_loop()
                loop.run_until_complete(decide_all(service, parsed[:WARM_UP]))
                gc.collect()
                gc.freeze()  # as a replica does once loaded (Components.start)
                latencies, _ = loop.run_until_complete(decide_all(service, parsed[WARM_UP:]))
                loop.close()
            finally:
                service.close()
                components.close()
                gc.unfreeze()
    return np.asarray(latencies, dtype=np.float64) / 1000


def measure_decisions(home: Path, redis_url: str, count: int) -> list[tuple[str, np.ndarray]]:
    """The home's customers pushed to Redis, then each store's decisions (store_settings)."""
    config = load_config()
    contract, catalogue = FeatureContract(config.features), ActionCatalogue(config.actions)
    customers = Home(home).customers
    push(read_customers(customers, contract, catalogue), contract, catalogue, customers, redis_url)
    results = []
    for name, settings in store_settings(redis_url).items():
        say(f"decisions, {name}: loading and measuring {count:,} ...")
        results.append((name, decide_us(home, settings, name == WARM_CACHE, count)))
    return results


def print_decisions(results: list[tuple[str, np.ndarray]], customers: int) -> None:
    baseline_p95 = float(np.percentile(dict(results)[BASELINE], 95))
    count = len(results[0][1])
    print(f"\n/v1/decide in process, {count:,} decisions of {customers:,} customers "
          f"(request mix, {CANDIDATES} candidates, fsync off)")  # fmt: skip
    print(f"{'online store':<22} {'p50 µs':>9} {'p95 µs':>9} {'p99 µs':>9} {'mean µs':>9} "
          f"{'p95 vs base':>12}")  # fmt: skip
    for name, us in results:
        print(decide_row(name, us, baseline_p95))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=20_000)
    parser.add_argument("--rows", type=int, default=60_000, help="World rows for a fresh home.")
    parser.add_argument("--home", type=Path, help="A trained LIFTGATE_HOME (default: build one).")
    parser.add_argument("--decisions", type=int, default=20_000, help="Measured per store.")
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
            (BASELINE, lookup_us(embedded, ids)),
            ("redis, no cache", lookup_us(uncached, ids)),
            ("redis, warm TTL cache", lookup_us(cached, ids)),
        ]
        uncached.close()
        cached.close()

        home = args.home.resolve() if args.home else Path(tmp) / "home"
        if args.home is None:
            build_home(home, args.rows)
        decisions = measure_decisions(home, server.url(1), args.decisions)
        home_customers = len(known_customer_ids(Home(home)))

    n, m = args.lookups, args.customers
    print(f"\nfeature fetch, {n:,} lookups of {m:,} customers (5 % unknown)")
    print(f"{'store':<28} {'p50 µs':>9} {'p99 µs':>9} {'mean µs':>9}")
    for name, us in results:
        print(row(name, us))
    print(f"\npush of {args.customers:,} customers")
    print(f"{'store':<28} {'seconds':>9} {'rows/s':>9}")
    for name, seconds in ((BASELINE, embedded_push_s), ("redis", redis_push_s)):
        print(f"{name:<28} {seconds:>9.2f} {args.customers / seconds:>9,.0f}")
    print_decisions(decisions, home_customers)


if __name__ == "__main__":
    main()
