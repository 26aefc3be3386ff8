"""Off-policy estimators of a policy's value from logged bandit feedback, as in OBP.

The log holds, per row, the context x, the logged action a ~ π_b(·|x), its propensity
π_b(a|x) (``pscore``) and the reward r. The evaluation policy π_e is given as the
(n × K) matrix ``action_dist`` of π_e(·|x) per row; a reward model gives
``reward_hat`` = q̂(x, ·), also (n × K). With the importance weight
w = π_e(a|x) / π_b(a|x) and q̂(x, π_e) = Σ_a π_e(a|x) q̂(x, a), the estimators are those of
Open Bandit Pipeline (``obp.ope.estimators``), written as means over rows:

- IPW    V = E_n[w r]                                   (unbiased when π_b is known)
- SNIPW  V = E_n[w r] / E_n[w]                          (bounded, consistent, slightly biased)
- DM     V = E_n[q̂(x, π_e)]                             (low variance, biased by q̂'s error)
- DR     V = E_n[q̂(x, π_e) + w (r − q̂(x, a))]           (unbiased if either part is right)
- SNDR   V = E_n[q̂(x, π_e) + w (r − q̂(x, a)) / E_n[w]]

Each is a function of five column totals (Σ 1, Σ w, Σ w r, Σ q̂(x, π_e), Σ w (r − q̂(x, a))),
so :func:`estimate_all` draws one bootstrap (:mod:`experiments.ope.bootstrap`) and reports
every estimator's percentile interval from it.

>>> import numpy as np
>>> action = np.array([0, 1, 0, 1])
>>> reward = np.array([1.0, 0.0, 0.0, 1.0])
>>> pscore = np.full(4, 0.5)
>>> always_0 = np.tile([1.0, 0.0], (4, 1))
>>> ipw(reward, action, pscore, always_0).value  # (2·1 + 0 + 2·0 + 0) / 4
0.5
>>> snipw(reward, action, pscore, always_0).value  # 2 / (2 + 2)
0.5
>>> q_hat = np.full((4, 2), 0.25)
>>> dr(reward, action, pscore, always_0, q_hat).value  # 0.25 + (2·0.75 − 2·0.25) / 4
0.5

References: Dudík, Langford & Li (2011), "Doubly Robust Policy Evaluation and Learning",
ICML; Swaminathan & Joachims (2015), "The Self-Normalized Estimator for Counterfactual
Learning", NeurIPS; Saito, Aihara, Matsutani & Narita (2021), "Open Bandit Dataset and
Pipeline: Towards Realistic and Reproducible Off-Policy Evaluation", NeurIPS Datasets and
Benchmarks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from experiments.ope.bootstrap import (
    DEFAULT_MAX_GROUPS,
    DEFAULT_RESAMPLES,
    bootstrap_totals,
    percentile_interval,
)

#: Column order of the per-row contributions (see :func:`row_columns`).
ONES, WEIGHT, WEIGHTED_REWARD, MODEL_VALUE, WEIGHTED_RESIDUAL = range(5)
ESTIMATOR_NAMES = ("ipw", "snipw", "dm", "dr", "sndr")
MODEL_BASED = ("dm", "dr", "sndr")
PROBABILITY_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Estimate:
    """A policy value and its bootstrap percentile interval."""

    value: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict[str, float | None]:
        return {k: _finite_or_none(v) for k, v in vars(self).items()}


def _finite_or_none(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def _divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return numerator / denominator


def _ipw(t: np.ndarray) -> np.ndarray:
    return _divide(t[..., WEIGHTED_REWARD], t[..., ONES])


def _snipw(t: np.ndarray) -> np.ndarray:
    return _divide(t[..., WEIGHTED_REWARD], t[..., WEIGHT])


def _dm(t: np.ndarray) -> np.ndarray:
    return _divide(t[..., MODEL_VALUE], t[..., ONES])


def _dr(t: np.ndarray) -> np.ndarray:
    return _divide(t[..., MODEL_VALUE] + t[..., WEIGHTED_RESIDUAL], t[..., ONES])


def _sndr(t: np.ndarray) -> np.ndarray:
    return _dm(t) + _divide(t[..., WEIGHTED_RESIDUAL], t[..., WEIGHT])


#: Each estimator as a function of the column totals (works on one row of totals or many).
FROM_TOTALS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "ipw": _ipw,
    "snipw": _snipw,
    "dm": _dm,
    "dr": _dr,
    "sndr": _sndr,
}


def check_inputs(
    reward: np.ndarray,
    action: np.ndarray,
    pscore: np.ndarray,
    action_dist: np.ndarray,
    reward_hat: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate shapes and ranges; raise ValueError naming the offending argument."""
    reward = np.asarray(reward, dtype=np.float64)
    action = np.asarray(action)
    pscore = np.asarray(pscore, dtype=np.float64)
    action_dist = np.asarray(action_dist, dtype=np.float64)
    n = len(reward)
    if n == 0:
        raise ValueError("reward: no rows to evaluate")
    for name, array in (("reward", reward), ("action", action), ("pscore", pscore)):
        if array.shape != (n,):
            raise ValueError(f"{name}: expected shape ({n},); got {array.shape}")
    if action_dist.ndim != 2 or action_dist.shape[0] != n:
        raise ValueError(f"action_dist: expected shape ({n}, K); got {action_dist.shape}")
    k = action_dist.shape[1]
    if not np.issubdtype(action.dtype, np.integer):
        raise ValueError(f"action: expected integer action codes 0..{k - 1}; got {action.dtype}")
    if action.min() < 0 or action.max() >= k:
        raise ValueError(
            f"action: codes must lie in 0..{k - 1} (K = {k} columns of action_dist); "
            f"got {action.min()}..{action.max()}"
        )
    if not np.isfinite(reward).all():
        raise ValueError("reward: contains NaN or infinite values")
    if not ((pscore > 0) & (pscore <= 1)).all():
        raise ValueError("pscore: logged propensities must lie in (0, 1]")
    if not np.isfinite(action_dist).all() or (action_dist < 0).any():
        raise ValueError("action_dist: probabilities must be finite and >= 0")
    if np.abs(action_dist.sum(axis=1) - 1).max() > PROBABILITY_TOLERANCE:
        raise ValueError("action_dist: every row must sum to 1")
    if reward_hat is not None:
        reward_hat = np.asarray(reward_hat, dtype=np.float64)
        if reward_hat.shape != action_dist.shape:
            raise ValueError(
                f"reward_hat: expected shape {action_dist.shape} like action_dist; "
                f"got {reward_hat.shape}"
            )
        if not np.isfinite(reward_hat).all():
            raise ValueError("reward_hat: contains NaN or infinite values")
    return reward, action.astype(np.int64), pscore, action_dist, reward_hat


def importance_weights(action: np.ndarray, pscore: np.ndarray, action_dist: np.ndarray):
    """w = π_e(a|x) / π_b(a|x) for the logged action of every row."""
    return action_dist[np.arange(len(action)), action] / pscore


def row_columns(
    reward: np.ndarray,
    action: np.ndarray,
    pscore: np.ndarray,
    action_dist: np.ndarray,
    reward_hat: np.ndarray | None = None,
) -> np.ndarray:
    """(n × 5) per-row contributions [1, w, w r, q̂(x, π_e), w (r − q̂(x, a))].

    Without ``reward_hat`` the two model columns are NaN (DM, DR and SNDR are undefined).
    """
    rows = np.arange(len(action))
    w = action_dist[rows, action] / pscore
    out = np.empty((len(reward), 5))
    out[:, ONES] = 1.0
    out[:, WEIGHT] = w
    out[:, WEIGHTED_REWARD] = w * reward
    if reward_hat is None:
        out[:, MODEL_VALUE] = np.nan
        out[:, WEIGHTED_RESIDUAL] = np.nan
    else:
        out[:, MODEL_VALUE] = np.einsum("ij,ij->i", action_dist, reward_hat)
        out[:, WEIGHTED_RESIDUAL] = w * (reward - reward_hat[rows, action])
    return out


def estimate_all(
    reward: np.ndarray,
    action: np.ndarray,
    pscore: np.ndarray,
    action_dist: np.ndarray,
    reward_hat: np.ndarray | None = None,
    alpha: float = 0.05,
    n_resamples: int = DEFAULT_RESAMPLES,
    random_state: int | None = 0,
    max_groups: int = DEFAULT_MAX_GROUPS,
) -> dict[str, Estimate]:
    """Every estimator's value and (1 − alpha) percentile interval from one bootstrap.

    Without ``reward_hat`` only IPW and SNIPW are returned.
    """
    reward, action, pscore, action_dist, reward_hat = check_inputs(
        reward, action, pscore, action_dist, reward_hat
    )
    columns = row_columns(reward, action, pscore, action_dist, reward_hat)
    names = ESTIMATOR_NAMES if reward_hat is not None else ("ipw", "snipw")
    if reward_hat is None:
        columns = columns[:, :MODEL_VALUE]
    totals = columns.sum(axis=0)
    resampled = bootstrap_totals(columns, n_resamples, random_state, max_groups)
    result = {}
    for name in names:
        low, high = percentile_interval(FROM_TOTALS[name](resampled), alpha)
        result[name] = Estimate(float(FROM_TOTALS[name](totals)), low, high)
    return result


def _single(name: str):
    needs_model = name in MODEL_BASED

    def estimator(
        reward: np.ndarray,
        action: np.ndarray,
        pscore: np.ndarray,
        action_dist: np.ndarray,
        reward_hat: np.ndarray | None = None,
        alpha: float = 0.05,
        n_resamples: int = DEFAULT_RESAMPLES,
        random_state: int | None = 0,
    ) -> Estimate:
        if needs_model and reward_hat is None:
            raise ValueError(f"{name}: needs reward_hat, the (n × K) estimated rewards")
        model = reward_hat if needs_model else None
        return estimate_all(
            reward, action, pscore, action_dist, model, alpha, n_resamples, random_state
        )[name]

    estimator.__name__ = name
    estimator.__qualname__ = name
    estimator.__doc__ = f"The {name.upper()} estimate and its bootstrap interval (see module)."
    return estimator


ipw = _single("ipw")
snipw = _single("snipw")
dm = _single("dm")
dr = _single("dr")
sndr = _single("sndr")
