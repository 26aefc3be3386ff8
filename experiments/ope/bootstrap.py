"""A vectorized nonparametric bootstrap of column totals, shared by every OPE estimator.

Each off-policy estimator is a smooth function of a few column *totals* over the logged rows
(Σ 1, Σ w, Σ w·r, Σ q̂(x, π), Σ w·(r − q̂(x, a))), so one set of resamples serves all of
them: draw the resamples once, total the columns per resample with a matrix product, and
evaluate each estimator on the resampled totals. Percentile intervals follow.

Up to ``max_groups`` rows the bootstrap resamples rows (Efron's bootstrap). Beyond that the
rows are first assigned at random to ``max_groups`` groups and the groups are resampled
(a random-cluster bootstrap): rows are i.i.d., so the groups are too, and the variance of
a resampled mean is the same to first order while the cost no longer grows with n. Group
sizes vary, so estimators divide by the resampled row count (the totals include Σ 1).

>>> import numpy as np
>>> x = np.random.default_rng(0).normal(size=(5_000, 1))
>>> totals = bootstrap_totals(np.hstack([np.ones_like(x), x]), n_resamples=2_000)
>>> means = totals[:, 1] / totals[:, 0]
>>> round(float(means.std() * np.sqrt(len(x))), 1)  # ≈ the standard deviation of x
1.0

Reference: Efron & Tibshirani (1993), "An Introduction to the Bootstrap", Chapman & Hall.
"""

from __future__ import annotations

import numpy as np

DEFAULT_RESAMPLES = 1_000
DEFAULT_MAX_GROUPS = 10_000
_CHUNK = 100  # resamples per matrix product: bounds memory at _CHUNK × max_groups counts


def bootstrap_totals(
    columns: np.ndarray,
    n_resamples: int = DEFAULT_RESAMPLES,
    random_state: int | np.random.Generator | None = 0,
    max_groups: int = DEFAULT_MAX_GROUPS,
) -> np.ndarray:
    """(n_resamples × m) column totals of ``columns`` (n × m) over bootstrap resamples."""
    columns = np.asarray(columns, dtype=np.float64)
    if columns.ndim != 2 or len(columns) == 0:
        raise ValueError("bootstrap needs a non-empty (rows × columns) array")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1; got {n_resamples}")
    rng = np.random.default_rng(random_state)
    n, m = columns.shape
    if n <= max_groups:
        groups = columns
    else:
        label = rng.integers(0, max_groups, n)
        groups = np.column_stack(
            [np.bincount(label, weights=columns[:, j], minlength=max_groups) for j in range(m)]
        )
    g = len(groups)
    totals = np.empty((n_resamples, m))
    for start in range(0, n_resamples, _CHUNK):
        b = min(_CHUNK, n_resamples - start)
        draws = rng.integers(0, g, (b, g)) + (np.arange(b) * g)[:, None]
        counts = np.bincount(draws.ravel(), minlength=b * g).reshape(b, g)
        totals[start : start + b] = counts @ groups
    return totals


def percentile_interval(values: np.ndarray, alpha: float = 0.05) -> tuple[float, float]:
    """The (alpha/2, 1 − alpha/2) quantiles of the bootstrap values, ignoring NaNs."""
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return float("nan"), float("nan")
    low, high = np.quantile(finite, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)
