"""Benchmark off-policy evaluation and uplift metrics on 1 M rows against bare NumPy floors.

    .venv/bin/python load_tests/bench_ope_uplift.py [--rows 1_000_000] [--repeat 3] [--json]

Generates ``--rows`` logged rows (5 actions, uniform logging with exact propensities, binary
reward, a given evaluation policy ``action_dist`` and given estimated rewards ``reward_hat``)
and ``--rows`` scored uplift rows (binary treatment and outcome, a float score), then times,
as the median of ``--repeat`` runs:

- OPE floor: ``reward.mean()`` (the logged policy's value);
- OPE: :func:`experiments.ope.evaluate.evaluate` — IPW, SNIPW, DM, DR, SNDR, each with a 95 %
  bootstrap interval from 1 000 resamples, and the weight diagnostics. Target <= 3 s.
  (Fitting the reward model is not included: ``reward_hat`` is given, as with
  ``liftgate ope --reward-hat``.)
- uplift floor: ``np.argsort(score, kind="stable")``, one sort of the scores;
- uplift: :func:`experiments.uplift.uplift_metrics` — uplift@0.3 overall and by_group,
  normalized Qini AUC and uplift AUC. Target <= 1 s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments.ope.evaluate import evaluate  # noqa: E402
from experiments.uplift.metrics import uplift_metrics  # noqa: E402

TARGETS = {"ope": 3.0, "uplift": 1.0}


def ope_inputs(rows: int, k: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    action = rng.integers(0, k, rows)
    pscore = np.full(rows, 1.0 / k)
    base = rng.random((rows, k)) * 0.2
    reward = (rng.random(rows) < base[np.arange(rows), action]).astype(np.float64)
    logits = rng.normal(size=(rows, k))
    action_dist = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    reward_hat = np.clip(base + rng.normal(0, 0.02, (rows, k)), 0, 1)
    return reward, action, pscore, action_dist, reward_hat


def uplift_inputs(rows: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 2, rows)
    score = rng.random(rows)
    y = (rng.random(rows) < 0.1 + 0.1 * t * score).astype(np.int64)
    return y, score, t


def median_seconds(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=lambda s: int(s.replace("_", "")), default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="Print one JSON document.")
    args = parser.parse_args()

    reward, action, pscore, action_dist, reward_hat = ope_inputs(args.rows)
    y, score, t = uplift_inputs(args.rows)
    results = {
        "ope": {
            "floor": median_seconds(lambda: reward.mean(), args.repeat),
            "ours": median_seconds(
                lambda: evaluate(reward, action, pscore, action_dist, reward_hat), args.repeat
            ),
            "floor_what": "numpy mean of rewards",
            "ours_what": "5 estimators + 1000-resample bootstrap CIs + ESS",
        },
        "uplift": {
            "floor": median_seconds(lambda: np.argsort(score, kind="stable"), args.repeat),
            "ours": median_seconds(lambda: uplift_metrics(y, score, t, k=0.3), args.repeat),
            "floor_what": "one stable argsort of the scores",
            "ours_what": "uplift@k x2 + Qini AUC + uplift AUC (normalized)",
        },
    }
    for name, r in results.items():
        r["target_s"] = TARGETS[name]
        r["within_target"] = r["ours"] <= TARGETS[name]
        r["ratio_to_floor"] = r["ours"] / r["floor"] if r["floor"] > 0 else None
    document = {"rows": args.rows, "repeat": args.repeat, "results": results}
    if args.json:
        sys.stdout.write(json.dumps(document) + "\n")
        return
    print(f"{args.rows:,} rows, median of {args.repeat} runs")
    print(f"{'task':<8}{'floor s':>10}{'ours s':>10}{'target s':>10}  ok   what")
    for name, r in results.items():
        print(
            f"{name:<8}{r['floor']:>10.4f}{r['ours']:>10.3f}{r['target_s']:>10.1f}  "
            f"{'yes' if r['within_target'] else 'NO ':<4} {r['ours_what']} "
            f"(floor: {r['floor_what']})"
        )


if __name__ == "__main__":
    main()
