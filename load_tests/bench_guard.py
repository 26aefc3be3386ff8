"""Canary guard: how often seeded rollouts of a bad, an equal and a better challenger end
rolled back or promoted, judged with the anytime-valid sequence and with a naive z-test.

    .venv/bin/python load_tests/bench_guard.py [--runs 200] [--units-per-s 3000]
        [--min-units 1500,3000,5000] [--config configs/rollouts/scorer-canary.yaml] [--json]

Each run is ``liftgate.sim.rollout.simulate_rollout``: the steps of the rollout config,
new customers every ``analysis.interval_s`` (Poisson, ``--units-per-s``), conversion 10 %
times (1 + effect) in the canary, lognormal spend per converter, the verdict every interval,
until ROLLBACK or promotion past the last step. Effects −10 %, 0 % and +5 %, seeds 0 to
runs − 1 (the same seeds for every effect). ``--min-units`` replaces the analysed steps'
``min_units`` (the YAML is not changed).

Targets: a −10 % challenger rolled back in ≥ 95 % of runs; an equal one rolled back in
≤ 5 %. Baseline in the same run: the same simulation with the fixed-horizon z-test
(``experiments.stats.frequentist.two_sided_test``) checked every interval, whose false
rollbacks grow with the number of looks (peeking). Exit code 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from configs.loader import load_file  # noqa: E402
from configs.schema import RolloutConfig  # noqa: E402
from liftgate.sim.rollout import Challenger, Traffic, simulate_rollout  # noqa: E402

EFFECTS = (-0.10, 0.0, 0.05)
METHODS = ("sequential", "frequentist")
MIN_BAD_ROLLED_BACK, MAX_EQUAL_ROLLED_BACK = 0.95, 0.05


def with_min_units(rollout: RolloutConfig, min_units: list[int]) -> RolloutConfig:
    analysed = [step for step in rollout.steps if step.weight < 1.0]
    if len(min_units) != len(analysed):
        raise SystemExit(f"--min-units needs {len(analysed)} values, one per analysed step")
    steps = [
        step.model_copy(update={"min_units": units})
        for step, units in zip(analysed, min_units, strict=True)
    ]
    return rollout.model_copy(update={"steps": steps + rollout.steps[len(analysed) :]})


def row(rollout: RolloutConfig, traffic: Traffic, effect: float, method: str, runs: int) -> dict:
    start = time.perf_counter()
    results = [
        simulate_rollout(
            rollout, Challenger(conversion_effect=effect), traffic, seed, method=method
        )
        for seed in range(runs)
    ]
    outcomes = [r.outcome for r in results]
    return {
        "method": method,
        "effect": effect,
        "runs": runs,
        "rolled_back": outcomes.count("rolled_back") / runs,
        "promoted": outcomes.count("promoted") / runs,
        "held": outcomes.count("held") / runs,
        "median_canary_decisions": float(np.median([r.canary_decisions for r in results])),
        "median_intervals": float(np.median([r.intervals for r in results])),
        "median_rollout_s": float(np.median([r.seconds for r in results])),
        "wall_s": time.perf_counter() - start,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--units-per-s", type=float, default=3_000.0)
    parser.add_argument("--conversion-rate", type=float, default=0.10)
    parser.add_argument("--min-units", help="comma-separated, one per analysed step")
    parser.add_argument(
        "--config", type=Path, default=ROOT / "configs" / "rollouts" / "scorer-canary.yaml"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)

    rollout = load_file(args.config, RolloutConfig)
    if args.min_units:
        rollout = with_min_units(rollout, [int(u) for u in args.min_units.split(",")])
    traffic = Traffic(units_per_s=args.units_per_s, conversion_rate=args.conversion_rate)
    rows = [row(rollout, traffic, e, m, args.runs) for m in METHODS for e in EFFECTS]
    sequential = {r["effect"]: r for r in rows if r["method"] == "sequential"}
    naive = {r["effect"]: r for r in rows if r["method"] == "frequentist"}
    bad_ok = sequential[-0.10]["rolled_back"] >= MIN_BAD_ROLLED_BACK
    equal_ok = sequential[0.0]["rolled_back"] <= MAX_EQUAL_ROLLED_BACK
    steps = [(s.weight, s.min_units, s.min_duration_s) for s in rollout.steps if s.weight < 1]
    document = {
        "config": rollout.name,
        "steps": [{"weight": w, "min_units": u, "min_duration_s": d} for w, u, d in steps],
        "interval_s": rollout.analysis.interval_s,
        "alpha": rollout.analysis.alpha,
        "units_per_s": args.units_per_s,
        "conversion_rate": args.conversion_rate,
        "rows": rows,
        "targets": {"bad_rolled_back_ge_95": bad_ok, "equal_rolled_back_le_5": equal_ok},
    }
    if args.json:
        print(json.dumps(document))
        return 0 if bad_ok and equal_ok else 1

    shown = ", ".join(f"{w:.0%} ≥ {u:,} units ≥ {d:g} s" for w, u, d in steps)
    print(
        f"{rollout.name}: {shown}; every {rollout.analysis.interval_s:g} s; "
        f"{args.units_per_s:,.0f} units/s; conversion {args.conversion_rate:.0%}"
    )
    header = (
        f"{'test':<22}{'effect':>7}{'runs':>6}{'rolled back':>13}{'promoted':>10}"
        f"{'median decisions':>18}{'median rollout':>16}{'seconds':>9}"
    )
    print(header)
    for r in rows:
        test = "anytime-valid CS" if r["method"] == "sequential" else "naive z-test (peeks)"
        print(
            f"{test:<22}{r['effect']:>+7.0%}{r['runs']:>6}{r['rolled_back']:>13.1%}"
            f"{r['promoted']:>10.1%}{r['median_canary_decisions']:>18,.0f}"
            f"{r['median_rollout_s']:>14,.0f} s{r['wall_s']:>9.1f}"
        )
    print("median decisions: canary decisions until the final verdict (rollback or promotion)")
    verdict = {True: "PASS", False: "MISS"}
    print(
        f"target −10 % rolled back ≥ 95 %: {sequential[-0.10]['rolled_back']:.1%} {verdict[bad_ok]}"
    )
    print(
        f"target 0 % rolled back ≤ 5 %: {sequential[0.0]['rolled_back']:.1%} {verdict[equal_ok]} "
        f"(naive z-test: {naive[0.0]['rolled_back']:.1%})"
    )
    return 0 if bad_ok and equal_ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
