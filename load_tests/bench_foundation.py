"""The foundation's cost and quality: world generation, training time and model quality.

Run: ``.venv/bin/python load_tests/bench_foundation.py [--json] [--rows 1000000]
[--train-rows 200000]``

Each measure is printed beside a baseline or floor taken in the same run:

- world generation: ``World.write`` of ``--rows`` logged decisions (customers, logged
  decisions and truth, three Parquet files); the floor is ``pq.write_table`` alone of random
  tables with the same rows and column types, built before the clock starts;
- training: ``registry.training.train_scorer`` on ``--train-rows`` logged decisions; the
  baseline is the fit of its logistic-regression baseline alone on the same training rows;
- quality: validation AUC of the LightGBM conversion model against the AUC of the world's
  true probabilities on the same rows (the ceiling no model can beat in expectation), and
  the expected calibration error against that of the true probabilities.

Progress goes to stderr; ``--json`` prints one JSON document on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.metrics import roc_auc_score

from configs.loader import load_config
from liftgate.core.contract import FeatureContract
from liftgate.sim.world import World
from registry.training import baseline_model, expected_calibration_error, train_scorer

GENERATION_TARGET_S = 30.0
TRAINING_TARGET_S = 60.0
AUC_RATIO_TARGET = 0.95
FILES = ("customers", "logged", "truth")


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def random_column(field: pa.Field, rows: int, rng: np.random.Generator) -> pa.Array:
    """A random column of the field's type; strings of similar length, few distinct."""
    kind = field.type
    if pa.types.is_floating(kind):
        return pa.array(rng.random(rows))
    if pa.types.is_integer(kind):
        return pa.array(rng.integers(0, 1_000, rows))
    if pa.types.is_boolean(kind):
        return pa.array(rng.random(rows) < 0.5)
    if pa.types.is_timestamp(kind):
        micros = rng.integers(1_767_225_600_000_000, 1_769_817_600_000_000, rows)
        return pa.array(micros, type=pa.int64()).cast(kind)
    pool = np.array([f"v{i:014d}" for i in range(1_000)], dtype=object)
    return pa.array(pool[rng.integers(0, len(pool), rows)], type=pa.string())


def time_floor(written: dict[str, Path], out: Path) -> float:
    """Seconds to pq.write_table random tables shaped like the written ones."""
    rng = np.random.default_rng(0)
    tables = []
    for name, path in written.items():
        schema = pq.read_schema(path)
        rows = pq.ParquetFile(path).metadata.num_rows
        columns = [random_column(field, rows, rng) for field in schema]
        tables.append((name, pa.table(columns, names=schema.names)))
    began = time.perf_counter()
    for name, table in tables:
        pq.write_table(table, out / f"floor_{name}.parquet")
    return time.perf_counter() - began


def bench_generation(rows: int, tmp: Path) -> dict:
    say(f"[1/3] generating a world of {rows:,} logged decisions")
    world = World(seed=0, n_customers=max(1_000, rows // 5))
    began = time.perf_counter()
    summary = world.write(tmp / "world", rows)
    elapsed = time.perf_counter() - began
    say("      floor: writing random tables of the same shapes with pyarrow alone")
    floor = time_floor({n: Path(summary["files"][n]) for n in FILES}, tmp)
    return {
        "rows": rows,
        "customers": summary["customers"],
        "seconds": elapsed,
        "floor_seconds": floor,
        "target_seconds": GENERATION_TARGET_S,
        "passed": elapsed <= GENERATION_TARGET_S,
    }


def bench_training(rows: int) -> tuple[dict, dict]:
    say(f"[2/3] training the scorer on {rows:,} logged decisions")
    config = load_config()
    world = World(seed=1, n_customers=max(1_000, rows // 5))
    logged = world.logged(rows).sort_values("decision_ts", kind="stable").reset_index(drop=True)
    began = time.perf_counter()
    result = train_scorer(logged, config, seed=0)
    elapsed = time.perf_counter() - began

    data = result.dataset
    say("      baseline: the logistic-regression fit alone")
    contract = FeatureContract(config.features)
    began = time.perf_counter()
    baseline_model(contract, config.models.scorer.baseline, 0).fit(
        data.design[data.train], data.converted[data.train]
    )
    baseline_s = time.perf_counter() - began
    training = {
        "rows": rows,
        "seconds": elapsed,
        "baseline_seconds": baseline_s,
        "target_seconds": TRAINING_TARGET_S,
        "passed": elapsed <= TRAINING_TARGET_S,
        "trees": result.model.conversion.num_trees(),
    }

    say("[3/3] model quality against the world's true probabilities")
    valid = logged[data.is_valid].reset_index(drop=True)
    truth = world.conversion_probability(valid, valid["decision_ts"].to_numpy())
    true_p = truth[np.arange(len(valid)), data.action[data.is_valid]]
    y = data.converted[data.is_valid]
    model_p, _ = result.model.predict(data.design[data.is_valid])
    ceiling = float(roc_auc_score(y, true_p))
    auc = result.metrics["auc"]
    quality = {
        "validation_rows": int(data.is_valid.sum()),
        "auc": auc,
        "truth_auc": ceiling,
        "baseline_auc": result.metrics["baseline_auc"],
        "auc_ratio": auc / ceiling,
        "auc_ratio_target": AUC_RATIO_TARGET,
        "calibration_error": result.metrics["calibration_error"],
        "truth_calibration_error": expected_calibration_error(y, true_p),
        "calibration_error_target": config.models.gate.max_calibration_error,
    }
    # The rows compared with the ceiling are the ones the metric was computed on.
    assert abs(roc_auc_score(y, model_p) - auc) < 1e-9
    quality["passed"] = bool(
        quality["auc_ratio"] >= AUC_RATIO_TARGET
        and quality["calibration_error"] <= quality["calibration_error_target"]
    )
    return training, quality


def table(report: dict) -> str:
    g, t, q = report["generation"], report["training"], report["quality"]
    rows = [
        ("measure", "ours", "baseline/floor", "target", "pass"),
        (
            f"world generation, {g['rows']:,} rows + 3 Parquet (s)",
            f"{g['seconds']:.1f}",
            f"{g['floor_seconds']:.1f} (pyarrow write only)",
            f"<= {g['target_seconds']:.0f}",
            g["passed"],
        ),
        (
            f"train_scorer, {t['rows']:,} rows (s)",
            f"{t['seconds']:.1f}",
            f"{t['baseline_seconds']:.1f} (logistic regression only)",
            f"<= {t['target_seconds']:.0f}",
            t["passed"],
        ),
        (
            f"validation AUC, {q['validation_rows']:,} rows",
            f"{q['auc']:.4f}",
            f"{q['truth_auc']:.4f} (true probabilities)",
            f"ratio >= {q['auc_ratio_target']} (is {q['auc_ratio']:.3f})",
            q["auc_ratio"] >= q["auc_ratio_target"],
        ),
        (
            "calibration error (ECE, 10 bins)",
            f"{q['calibration_error']:.4f}",
            f"{q['truth_calibration_error']:.4f} (true probabilities)",
            f"<= {q['calibration_error_target']}",
            q["calibration_error"] <= q["calibration_error_target"],
        ),
    ]
    widths = [max(len(str(r[i])) for r in rows) for i in range(5)]
    lines = []
    for i, r in enumerate(rows):
        cells = [("yes" if c else "NO") if isinstance(c, bool) else str(c) for c in r]
        lines.append(" | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))
        if i == 0:
            lines.append("-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="logged rows to generate")
    parser.add_argument("--train-rows", type=int, default=200_000, help="rows to train on")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        generation = bench_generation(args.rows, Path(tmp))
    training, quality = bench_training(args.train_rows)
    report = {"generation": generation, "training": training, "quality": quality}
    report["passed"] = all(part["passed"] for part in (generation, training, quality))
    if args.json:
        sys.stdout.write(json.dumps(report) + "\n")
    else:
        print(table(report))
    sys.exit(0 if report["passed"] else 1)


if __name__ == "__main__":
    main()
