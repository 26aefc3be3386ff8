"""Write the golden outputs of scikit-uplift and Open Bandit Pipeline used as test oracles.

The tests of :mod:`experiments.uplift.metrics` and :mod:`experiments.ope.estimators` compare
our numbers with what the real libraries computed on the same seeded inputs, stored here:

- ``sklift_metrics.json``: scikit-uplift 0.5.1 ``sklift.metrics`` — ``qini_curve``,
  ``uplift_curve``, ``perfect_qini_curve`` (with and without negative effects),
  ``perfect_uplift_curve``, ``qini_auc_score``, ``uplift_auc_score`` and ``uplift_at_k``;
- ``obp_estimators.json``: Open Bandit Pipeline (obp) 0.5.7 ``obp.ope`` —
  ``InverseProbabilityWeighting``, ``SelfNormalizedInverseProbabilityWeighting``,
  ``DirectMethod``, ``DoublyRobust`` and ``SelfNormalizedDoublyRobust`` (default
  arguments: no weight clipping, true propensities).

Each file holds the inputs next to the outputs, so the tests never regenerate data.
A NaN output (uplift@k when the top rows hold no treated or no control row) is stored as
null.

Generated with Python 3.10.13, scikit-uplift 0.5.1, obp 0.5.7 and what obp pins (numpy
1.23.5, scikit-learn 1.1.3, scipy 1.9.3, pandas 1.5.2, torch 1.12.0), plus matplotlib 3.6.3
(obp's seaborn 0.11.2 fails to import with matplotlib >= 3.9). obp 0.5.7 needs Python < 3.11,
so it cannot share the project's venv. To regenerate, from the repository root::

    python3.10 -m venv /tmp/golden-venv
    /tmp/golden-venv/bin/pip install scikit-uplift==0.5.1 obp==0.5.7 matplotlib==3.6.3
    /tmp/golden-venv/bin/python tests/golden/make_golden.py

The script imports nothing from this repository; pytest does not collect it
(``collect_ignore`` in ``tests/conftest.py``).
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import obp
import sklift
from obp.ope import (
    DirectMethod,
    DoublyRobust,
    InverseProbabilityWeighting,
    SelfNormalizedDoublyRobust,
    SelfNormalizedInverseProbabilityWeighting,
)
from sklift import metrics as sk

HERE = Path(__file__).parent
CURVE_SIZES = (10, 37, 200)  # curves are stored point by point: keep these small
SCALAR_SIZES = (1_000,)  # only the scores for the larger sample
UPLIFT_AT_K = [(strategy, k) for strategy in ("overall", "by_group") for k in (0.3, 0.5, 3)]


def _call(function: Callable[[], float]) -> float | None:
    """The library's value, None for NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # mean of an empty top-k group
        value = float(function())
    return value if math.isfinite(value) else None


def _curve(points: tuple[np.ndarray, np.ndarray]) -> list[list[float]]:
    """(x, y) of a curve as two lists of floats."""
    return [np.asarray(axis, dtype=float).tolist() for axis in points]


def _uplift_samples() -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, str]]:
    """(y, t, score, score kind): random scores, heavily tied scores, a near-perfect ranking."""
    rng = np.random.default_rng(7)
    for n in CURVE_SIZES + SCALAR_SIZES:
        t = rng.integers(0, 2, n)
        y = (rng.random(n) < 0.3 + 0.2 * t).astype(int)
        yield y, t, rng.random(n), "random"
        yield y, t, rng.integers(0, 4, n).astype(float), "ties"
        yield y, t, y * t + 0.1 * rng.random(n), "near_perfect"


def sklift_case(y: np.ndarray, t: np.ndarray, score: np.ndarray, kind: str) -> dict:
    case = {
        "score_kind": kind,
        "y_true": y.tolist(),
        "treatment": t.tolist(),
        "uplift": score.tolist(),
        "qini_auc_score": _call(lambda: sk.qini_auc_score(y, score, t)),
        "qini_auc_score_no_negative_effect": _call(
            lambda: sk.qini_auc_score(y, score, t, negative_effect=False)
        ),
        "uplift_auc_score": _call(lambda: sk.uplift_auc_score(y, score, t)),
        "uplift_at_k": [
            {
                "strategy": s,
                "k": k,
                "value": _call(lambda s=s, k=k: sk.uplift_at_k(y, score, t, s, k)),
            }
            for s, k in UPLIFT_AT_K
        ],
    }
    if len(y) in CURVE_SIZES:
        case["curves"] = {
            "qini_curve": _curve(sk.qini_curve(y, score, t)),
            "uplift_curve": _curve(sk.uplift_curve(y, score, t)),
            "perfect_qini_curve": _curve(sk.perfect_qini_curve(y, t)),
            "perfect_qini_curve_no_negative_effect": _curve(
                sk.perfect_qini_curve(y, t, negative_effect=False)
            ),
            "perfect_uplift_curve": _curve(sk.perfect_uplift_curve(y, t)),
        }
    return case


def _ope_logs() -> Iterator[dict[str, np.ndarray | str]]:
    """Seeded logged bandit feedback with a stochastic and a deterministic target policy."""
    rng = np.random.default_rng(3)
    n, k = 300, 4
    logging = rng.dirichlet(np.ones(k), n)
    action = np.array([rng.choice(k, p=p) for p in logging])
    yield {
        "name": "contextual_logging_stochastic_target_continuous_reward",
        "action": action,
        "pscore": logging[np.arange(n), action],
        "reward": rng.random(n),
        "action_dist": rng.dirichlet(np.full(k, 0.5), n),
        "reward_hat": rng.random((n, k)),
    }
    n, k = 400, 3
    action = rng.integers(0, k, n)
    target = np.eye(k)[rng.integers(0, k, n)]
    yield {
        "name": "uniform_logging_deterministic_target_binary_reward",
        "action": action,
        "pscore": np.full(n, 1.0 / k),
        "reward": (rng.random(n) < 0.2 + 0.2 * action).astype(float),
        "action_dist": target,
        "reward_hat": np.tile([0.2, 0.4, 0.6], (n, 1)) + rng.normal(0.0, 0.05, (n, k)),
    }


def obp_case(log: dict) -> dict:
    reward, action, pscore = log["reward"], log["action"], log["pscore"]
    action_dist = log["action_dist"][:, :, None]  # obp's (n, K, len_list) with one position
    reward_hat = log["reward_hat"][:, :, None]
    weighted = {"reward": reward, "action": action, "pscore": pscore, "action_dist": action_dist}
    values = {
        "ipw": InverseProbabilityWeighting().estimate_policy_value(**weighted),
        "snipw": SelfNormalizedInverseProbabilityWeighting().estimate_policy_value(**weighted),
        "dm": DirectMethod().estimate_policy_value(
            action_dist=action_dist, estimated_rewards_by_reg_model=reward_hat
        ),
        "dr": DoublyRobust().estimate_policy_value(
            **weighted, estimated_rewards_by_reg_model=reward_hat
        ),
        "sndr": SelfNormalizedDoublyRobust().estimate_policy_value(
            **weighted, estimated_rewards_by_reg_model=reward_hat
        ),
    }
    inputs = {key: np.asarray(value).tolist() for key, value in log.items() if key != "name"}
    return {"name": log["name"], **inputs, "policy_value": {k: float(v) for k, v in values.items()}}


def write(name: str, library: str, version: str, cases: list[dict]) -> None:
    path = HERE / name
    document = {
        "library": library,
        "version": version,
        "generator": "tests/golden/make_golden.py",
        "cases": cases,
    }
    path.write_text(json.dumps(document, allow_nan=False, separators=(",", ":")) + "\n")
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB, {len(cases)} cases)")


def main() -> None:
    write(
        "sklift_metrics.json",
        "scikit-uplift",
        sklift.__version__,
        [sklift_case(*sample) for sample in _uplift_samples()],
    )
    write("obp_estimators.json", "obp", obp.__version__, [obp_case(log) for log in _ope_logs()])


if __name__ == "__main__":
    main()
