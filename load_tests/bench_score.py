"""Batch scoring: rows/s of `liftgate score`'s Ray Data engine beside single-process loops
over the same customers, in the same run.

Run: ``flock /tmp/liftgate-ray.lock .venv/bin/python load_tests/bench_score.py
[--customers 200000] [--actors 2] [--json]``

It builds a throw-away LIFTGATE_HOME (a 4,000-customer world, one model trained and made
champion), writes ``--customers`` generated customers to one Parquet file, and scores them
for every action of the catalogue (rows = customers × actions):

- **ray**: `score_with_ray` (read_parquet → map_batches over a pool of ``--actors`` actors →
  write_parquet), wall time including Ray's start and shutdown, the actors' model load and
  the write;
- **local** (the baseline): `score_locally`, the same `BatchScorer` on the same batches in
  this process, model load and write included;
- **per customer**: the online path's shape, one `score_actions` call per customer on its
  contract-encoded row (`OnlineStore.lookup`), over the first ``--loop-customers`` customers
  and nothing written: what scoring one decision at a time would reach.

``ray/local`` is the Ray rate over the baseline's. Progress goes to stderr, the table to
stdout (``--json``: the rows as JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from configs.loader import load_config
from liftgate.app.batch_score import ScoringJob, score_locally, score_with_ray
from liftgate.core.home import Home
from liftgate.core.scoring import score_actions
from liftgate.sim.world import World
from registry.client import ModelRegistry
from registry.pipeline import train_and_register
from serving.online_store import OnlineStore


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--loop-customers", type=int, default=20_000)
    parser.add_argument("--json", action="store_true")
    return parser.parse_args()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def timed(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def per_customer_seconds(job: ScoringJob, source: Path, customers: int) -> float:
    import pyarrow.parquet as pq

    scorer = job.scorer()
    table = pq.read_table(source).slice(0, customers)
    store = OnlineStore(table, scorer.contract, scorer.catalogue)
    ids = table.column("customer_id").to_pylist()
    codes, costs = scorer.codes, scorer.catalogue.costs
    started = time.perf_counter()
    for customer in ids:
        score_actions(scorer.model, store.lookup(customer).features, codes, costs)
    return time.perf_counter() - started


def main() -> None:
    args = parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    root = Path(tempfile.mkdtemp(prefix="lgscore-"))
    try:
        config = load_config()
        home = Home(root / "home").ensure()
        log("training a model on a 4,000-customer world ...")
        World(seed=5, n_customers=4_000).write(home.worlds / "w", rows=30_000)
        train_and_register(home.worlds / "w", config, ModelRegistry(home, config.models.registry))
        job = ScoringJob.resolve(config, home, "champion", None)
        source = root / "customers.parquet"
        World(seed=9, n_customers=args.customers).customers.to_parquet(source, index=False)
        rows = args.customers * len(job.action_ids)
        log(f"scoring {args.customers:,} customers × {len(job.action_ids)} actions ...")
        local_s = timed(lambda: score_locally(job, source, root / "local"))
        ray_s = timed(
            lambda: score_with_ray(
                job, source, root / "ray", home, args.customers, actors=args.actors, progress=False
            )
        )
        loop_customers = min(args.loop_customers, args.customers)
        loop_s = per_customer_seconds(job, source, loop_customers)
        loop_rows = loop_customers * len(job.action_ids)
        table = [
            {"engine": f"ray ({args.actors} actors)", "rows": rows, "seconds": ray_s},
            {"engine": "local (baseline)", "rows": rows, "seconds": local_s},
            {"engine": "per customer", "rows": loop_rows, "seconds": loop_s},
        ]
        for row in table:
            row["rows_per_s"] = row["rows"] / row["seconds"]
        ratio = table[0]["rows_per_s"] / table[1]["rows_per_s"]
        if args.json:
            print(json.dumps({"rows": table, "ray_over_local": ratio}))
            return
        print(f"{'engine':<18} {'rows':>10} {'seconds':>9} {'rows/s':>12}")
        for row in table:
            print(
                f"{row['engine']:<18} {row['rows']:>10,} {row['seconds']:>9.2f} "
                f"{row['rows_per_s']:>12,.0f}"
            )
        print(f"ray/local: {ratio:.2f}×  ({os.cpu_count()} cores; Ray's start included)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
