"""Bandit policy latency: `select` per request and a 10k-outcome batch `update`.

Targets: `select` ≤ 100 µs for the non-contextual policies and ≤ 1 ms for LinUCB / linear
TS with 20 features and 5 actions; a batch of 10,000 outcomes ≤ 100 ms. Baselines measured
in the same run: a bare `np.argmax` over 5 values and a bare Python loop of 10,000 dict
updates.

    .venv/bin/python load_tests/bench_bandits.py [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from experiments.bandits import (  # noqa: E402
    UCB,
    Batch,
    BetaThompson,
    EpsilonGreedy,
    GaussianThompson,
    LinearThompson,
    LinUCB,
    ModelBased,
    UniformRandom,
)

K, D, N_UPDATE = 5, 20, 10_000


def per_call_us(fn: Callable[[], object], repeat: int) -> float:
    """Median over 5 runs of the mean time per call, in µs."""
    fn()
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        runs.append((time.perf_counter() - start) / repeat * 1e6)
    return float(np.median(runs))


def once_ms(fn: Callable[[], object], repeat: int = 5) -> float:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - start) * 1e3)
    return float(np.median(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="Print one JSON document.")
    parser.add_argument("--repeat", type=int, default=2_000, help="select calls per run")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    candidates = np.arange(K)
    contexts = np.c_[np.ones(N_UPDATE), rng.normal(size=(N_UPDATE, D - 1))]
    actions = rng.integers(0, K, N_UPDATE)
    rewards = (rng.random(N_UPDATE) < 0.1).astype(float)
    x = contexts[0]
    scores = rng.random(K)

    def warm(policy):
        ctx = contexts if policy.context_kind == "features" else None
        policy.update(Batch(ctx, actions, rewards))
        return policy

    rows = []
    values = rng.random(K)
    rows.append(
        (
            "baseline: np.argmax over 5",
            "select",
            per_call_us(lambda: np.argmax(values), args.repeat * 5),
            None,
        )
    )
    cases = [
        ("uniform_random", UniformRandom(K, seed=0), None, 100),
        ("epsilon_greedy", EpsilonGreedy(K, seed=0), None, 100),
        ("ucb", UCB(K, seed=0), None, 100),
        ("thompson (64 draws)", BetaThompson(K, seed=0), None, 100),
        ("gaussian_ts (64 draws)", GaussianThompson(K, seed=0), None, 100),
        ("model (softmax)", ModelBased(K, seed=0), scores, 100),
        ("linucb d=20", LinUCB(K, D, seed=0), x, 1_000),
        ("lints d=20 (64 draws)", LinearThompson(K, D, seed=0), x, 1_000),
    ]
    for name, policy, context, target in cases:
        warm(policy)
        us = per_call_us(lambda p=policy, c=context: p.select(c, candidates), args.repeat)
        rows.append((name, "select", us, target))

    store: dict[int, float] = {}

    def dict_loop():
        for a, r in zip(actions.tolist(), rewards.tolist(), strict=True):
            store[a] = store.get(a, 0.0) + r

    rows.append(("baseline: 10k dict updates", "update 10k", once_ms(dict_loop) * 1e3, None))
    for name, cls in [
        ("epsilon_greedy", EpsilonGreedy),
        ("thompson", BetaThompson),
        ("gaussian_ts", GaussianThompson),
    ]:
        ms = once_ms(lambda c=cls: c(K).update(Batch(None, actions, rewards)))
        rows.append((name, "update 10k", ms * 1e3, 100_000))
    for name, cls in [("linucb d=20", LinUCB), ("lints d=20", LinearThompson)]:
        ms = once_ms(lambda c=cls: c(K, D).update(Batch(contexts, actions, rewards)))
        rows.append((name, "update 10k", ms * 1e3, 100_000))

        # the worst case for Sherman–Morrison: batches of ≤ d rows per action, 10k rows in all
        def small_batches(c=cls):
            policy = c(K, D)
            for chunk in np.array_split(np.arange(N_UPDATE), N_UPDATE // 50):
                policy.update(Batch(contexts[chunk], actions[chunk], rewards[chunk]))

        rows.append(
            (f"{name}, 200 batches of 50", "update 10k", once_ms(small_batches, 3) * 1e3, None)
        )

    document = {
        "rows": [
            {
                "case": n,
                "op": op,
                "us": round(us, 2),
                "target_us": t,
                "ok": None if t is None else us <= t,
            }
            for n, op, us, t in rows
        ]
    }
    if args.json:
        print(json.dumps(document))
        return
    print(f"{'case':<34} {'op':<11} {'time':>12} {'target':>10}  ok")
    for r in document["rows"]:
        us = r["us"]
        shown = f"{us:,.1f} µs" if us < 10_000 else f"{us / 1e3:,.1f} ms"
        target = (
            ""
            if r["target_us"] is None
            else (
                f"{r['target_us']} µs"
                if r["target_us"] < 10_000
                else f"{r['target_us'] // 1000} ms"
            )
        )
        ok = "" if r["ok"] is None else ("yes" if r["ok"] else "NO")
        print(f"{r['case']:<34} {r['op']:<11} {shown:>12} {target:>10}  {ok}")


if __name__ == "__main__":
    main()
