"""The registry on an `mlflow server` (REST, artifacts through the server) against the
embedded SQLite store, in one run on the same world.

Run: ``.venv/bin/python load_tests/bench_registry_server.py [--reads 50] [--json]``

Figures, per store (the embedded store is the baseline; `server/embedded` is the ratio):

1. **train + register (s)**: one `train_and_register` (training, the MLflow run and its
   artifacts, the registered version, the gate, the alias): one run, wall time.
2. **champion load (s)**: a fresh `ModelRegistry` loading the champion (alias lookup, the
   model and its companions downloaded, the Booster built): what a replica does at start.
3. **alias read (ms)**: the median of ``--reads`` `aliases()` calls: what serving and the
   guard do on every model refresh.

A first `train_and_register` on a throwaway embedded home, not reported, takes the
process's one-time costs (imports, LightGBM's and matplotlib's first use) out of the
figures. The server is `mlflow server` on a SQLite backend (`LocalMlflowServer`), on this machine:
the REST round trips are loopback, so a server across a network adds its latency to 2–3.
Progress goes to stderr, the table to stdout (``--json``: the rows as JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from configs.loader import LiftgateConfig, load_config  # noqa: E402
from liftgate.core.home import Home  # noqa: E402
from liftgate.core.local_mlflow import LocalMlflowServer  # noqa: E402
from liftgate.sim.world import World  # noqa: E402
from registry.client import ModelRegistry  # noqa: E402
from registry.pipeline import train_and_register  # noqa: E402
from registry.store import TRACKING_URI_ENV  # noqa: E402


def measure(config: LiftgateConfig, home: Home, world_dir: Path, reads: int) -> dict:
    name = config.models.scorer.name
    started = time.perf_counter()
    train_and_register(world_dir, config, ModelRegistry(home, config.models.registry))
    trained = time.perf_counter() - started
    started = time.perf_counter()
    registry = ModelRegistry(home, config.models.registry)
    registry.load(name, "champion")
    loaded = time.perf_counter() - started
    timings = []
    for _ in range(reads):
        started = time.perf_counter()
        registry.aliases(name)
        timings.append(time.perf_counter() - started)
    return {
        "train + register (s)": trained,
        "champion load (s)": loaded,
        "alias read (ms)": 1000 * statistics.median(timings),
    }


def with_tracking_uri(config: LiftgateConfig, uri: str | None) -> LiftgateConfig:
    policy = config.models.registry.model_copy(update={"tracking_uri": uri})
    return replace(config, models=config.models.model_copy(update={"registry": policy}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reads", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    os.environ.pop(TRACKING_URI_ENV, None)  # the stores compared are the ones named here
    config = load_config()
    with tempfile.TemporaryDirectory(prefix="lg-bench-mlflow-") as tmp:
        root = Path(tmp)
        print("writing the world", file=sys.stderr)
        World(seed=5, n_customers=4_000).write(root / "world", rows=30_000)
        print("warming up (not reported)", file=sys.stderr)
        measure(with_tracking_uri(config, None), Home(root / "warm-up"), root / "world", 1)
        print("embedded store", file=sys.stderr)
        embedded = measure(
            with_tracking_uri(config, None), Home(root / "embedded"), root / "world", args.reads
        )
        print("mlflow server (SQLite backend)", file=sys.stderr)
        server_root = root / "server"
        with LocalMlflowServer(f"sqlite:///{server_root / 'mlflow.db'}", server_root) as server:
            served = measure(
                with_tracking_uri(config, server.url),
                Home(root / "client"),
                root / "world",
                args.reads,
            )
    rows = [
        {"figure": figure, "embedded": embedded[figure], "server": served[figure]}
        for figure in embedded
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'figure':<22} {'embedded':>10} {'server':>10} {'server/embedded':>16}")
    for row in rows:
        ratio = row["server"] / row["embedded"]
        print(f"{row['figure']:<22} {row['embedded']:>10.3f} {row['server']:>10.3f} {ratio:>16.2f}")


if __name__ == "__main__":
    main()
