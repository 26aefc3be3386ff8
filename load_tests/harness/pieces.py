"""What each piece of a decision costs hot, beside the way it was done before, in the same run:

    cd load_tests && ../.venv/bin/python -m harness.pieces --home /tmp/lghome [--json]

Each row times one call alone (the median over 7 rounds of ``--calls`` calls, µs a call)
and its baseline, still runnable here: both scoring models through `Booster.predict`
against `score_actions` (5 candidates: the prepared LightGBM calls, scores, calibration); a
`prometheus_client` `Histogram` child against the stage recorder (`StageHistogram`); an
INSERT + COMMIT into a WAL SQLite file, ``synchronous=NORMAL`` (how offers were recorded),
against the journal append (`OfferWriter.record`); ε-greedy over a NumPy row
(`epsilon_greedy_propensities`) against the plain-Python `epsilon_greedy`; one HMAC-SHA256
against a whole decision id. Among the rest of a decision a piece costs more (shared
caches): `harness.core` times whole decisions.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from harness.core import prepared
from harness.tables import fmt, print_table, say

ROUNDS = 7


def per_call_us(call: Callable[[], object], calls: int) -> float:
    """The median over ROUNDS rounds of `calls` calls of `call`, µs a call."""
    rounds = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(calls):
            call()
        rounds.append((time.perf_counter() - started) / calls * 1e6)
    return statistics.median(rounds)


def measure_pieces(home: Path, calls: int) -> list[dict]:
    """One row per piece: its name, the baseline's and the current µs a call."""
    from prometheus_client import CollectorRegistry, Histogram

    from liftgate.core.allocation import epsilon_greedy, epsilon_greedy_propensities
    from liftgate.core.contract import design_matrix
    from liftgate.core.scoring import score_actions
    from liftgate.governance.offers import OfferIndex
    from serving.metrics import LATENCY_BUCKETS, StageHistogram

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        service, components, _ = prepared(home, work, 5, "off", 1)
        try:
            model = components.models[components.default_model].model
            features, _ = components.contract.transform_row({})
            codes = np.arange(len(components.catalogue))
            costs = components.catalogue.costs
            design = design_matrix(features, codes)
            conversion, order_value = model.conversion, model.order_value

            def boosters() -> None:
                conversion.predict(design, num_threads=1)
                order_value.predict(design, num_threads=1)

            histogram = Histogram(
                "h", "h", ["stage"], buckets=LATENCY_BUCKETS, registry=CollectorRegistry()
            ).labels("log")
            recorder = StageHistogram("s", "s", ["log"], LATENCY_BUCKETS)
            offers = OfferIndex.writer(work / "offers")
            database = sqlite3.connect(work / "offers.db", isolation_level=None)
            database.execute("PRAGMA journal_mode=WAL")
            database.execute("PRAGMA synchronous=NORMAL")  # as the offers index had it
            database.execute("CREATE TABLE offers (decision_id TEXT PRIMARY KEY, body TEXT)")
            now = dt.datetime.now(dt.UTC)
            actions = list(components.catalogue.ids)
            serial = iter(range(10**9))

            def insert() -> None:
                database.execute(
                    "INSERT INTO offers VALUES (?, ?)", (f"d{next(serial)}", ",".join(actions))
                )

            values = np.array([0.2, 0.5, 0.1, 0.4, 0.3])
            key = b"k" * 32
            rows = [
                ("scoring, 5 candidates: 2 × Booster.predict → score_actions", boosters,
                 lambda: score_actions(model, features, codes, costs)),
                ("stage time: Histogram.observe → StageHistogram.observe",
                 lambda: histogram.observe(0.001), lambda: recorder.observe("log", 0.001)),
                ("offer: SQLite INSERT + COMMIT (WAL) → journal append", insert,
                 lambda: offers.record(f"d{next(serial)}", "c1", actions, now)),
                ("ε-greedy, 5 values: NumPy propensities → plain Python",
                 lambda: epsilon_greedy_propensities(values[None, :], 0.05),
                 lambda: epsilon_greedy(values.tolist(), 0.05, 0.5)),
                ("decision id: one HMAC-SHA256 → DecisionIds.new",
                 lambda: hmac.new(key, b"x" * 32, hashlib.sha256).hexdigest(),
                 service.decision_ids.new),
            ]  # fmt: skip
            say(f"timing {len(rows)} pieces, {ROUNDS} rounds of {calls} calls each ...")
            return [
                {
                    "piece": name,
                    "baseline_us": round(per_call_us(before, calls), 2),
                    "current_us": round(per_call_us(after, calls), 2),
                }
                for name, before, after in rows
            ]
        finally:
            offers.close()
            service.close()
            components.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="A prepared LIFTGATE_HOME.")
    parser.add_argument("--calls", type=int, default=2_000, help="Calls a round.")
    parser.add_argument("--json", action="store_true", help="One JSON document on stdout.")
    args = parser.parse_args()
    rows = measure_pieces(args.home.resolve(), args.calls)
    if args.json:
        print(json.dumps({"pieces": rows}))
    else:
        print_table(
            ("piece: baseline → current", "baseline µs", "current µs", "ratio"),
            [
                (
                    r["piece"],
                    fmt(r["baseline_us"]),
                    fmt(r["current_us"]),
                    fmt(r["current_us"] / r["baseline_us"]),
                )
                for r in rows
            ],  # fmt: skip
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
