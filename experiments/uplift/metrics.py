"""Uplift metrics as scikit-uplift defines them: uplift@k, Qini and uplift curves, their AUCs.

Rows are ranked by predicted uplift (descending; scikit-uplift's reversed stable sort).
At each distinct score threshold, with N_T, N_C treated and control rows above it and
Y_T, Y_C their responders (y ∈ {0, 1}, treatment ∈ {0, 1}):

- Qini curve     Q(N) = Y_T − Y_C · N_T / N_C            (Radcliffe 2007)
- uplift curve   U(N) = (Y_T / N_T − Y_C / N_C) · N      (0 where a group is empty)

both starting at (0, 0). The AUC scores are normalized as scikit-uplift does: the area
between the curve and the straight line from (0, 0) to the curve's end point, divided by
the same area for the *perfect* curve — the ranking that puts treated responders and
control non-responders first (for the Qini curve with ``negative_effect=True``, and the
uplift curve's ``2·(y == t) + summand`` ranking). 1 is perfect, 0 is random.

uplift@k is the response-rate difference among the top-k share of rows: ``overall`` ranks
all rows and takes the first ⌊k·n⌋, ``by_group`` takes the first ⌊k·n_T⌋ treated and
⌊k·n_C⌋ control rows separately. An integer k counts rows.

>>> import numpy as np
>>> y = np.array([1, 0, 1, 0, 1, 0])
>>> t = np.array([1, 1, 0, 0, 1, 0])
>>> score = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
>>> qini_curve(y, score, t)[1].tolist()
[0.0, 1.0, 1.0, -1.0, 0.0, 0.5, 1.0]
>>> uplift_at_k(y, score, t, strategy="overall", k=0.5)   # top 3: treated 1/2, control 1/1
-0.5
>>> round(qini_auc_score(y, score, t), 4), round(uplift_auc_score(y, score, t), 4)
(-0.1538, -0.44)

References: Radcliffe (2007), "Using control groups to target on predicted lift", Direct
Marketing Analytics Journal; Devriendt, Guns & Verbeke (2020), "Learning to rank for uplift
modeling", arXiv:2002.05897; scikit-uplift, ``sklift/metrics/metrics.py``
(github.com/maks-sh/scikit-uplift).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STRATEGIES = ("overall", "by_group")


def check_binary(name: str, values) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"{name}: expected a 1-d array; got shape {values.shape}")
    if values.dtype == bool:
        return values.astype(np.int8)
    unique = np.unique(values)
    if not np.isin(unique, (0, 1)).all():
        shown = ", ".join(map(str, unique[:5]))
        raise ValueError(f"{name}: expected binary values 0/1; got {shown}")
    return values.astype(np.int8)


def _check(y_true, uplift, treatment) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    y = check_binary("y_true", y_true)
    t = check_binary("treatment", treatment)
    score = np.asarray(uplift, dtype=np.float64)
    if not len(y) == len(score) == len(t):
        raise ValueError(
            f"y_true, uplift, treatment: lengths differ ({len(y)}, {len(score)}, {len(t)})"
        )
    if len(y) == 0:
        raise ValueError("y_true: no rows")
    if np.isnan(score).any():
        raise ValueError("uplift: contains NaN")
    return y, score, t


def descending_order(score: np.ndarray) -> np.ndarray:
    """scikit-uplift's ranking: a stable ascending sort, reversed."""
    return np.argsort(score, kind="stable")[::-1]


def _points(y: np.ndarray, score: np.ndarray, t: np.ndarray, kind: str):
    """Curve points of rows already in ranking order (see module)."""
    thresholds = np.r_[np.flatnonzero(np.diff(score)), len(score) - 1]
    treated = t.astype(np.float64)
    n_t = np.cumsum(treated)[thresholds]
    y_t = np.cumsum(y * treated)[thresholds]
    y_c = np.cumsum(y * (1.0 - treated))[thresholds]
    n_all = (thresholds + 1).astype(np.float64)
    n_c = n_all - n_t
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "qini":
            values = y_t - y_c * np.where(n_c != 0, n_t / n_c, 0.0)
        else:
            rate_t = np.where(n_t != 0, y_t / n_t, 0.0)
            rate_c = np.where(n_c != 0, y_c / n_c, 0.0)
            values = (rate_t - rate_c) * n_all
    return np.r_[0.0, n_all], np.r_[0.0, values]


def _curve(y, score, t, kind, order=None):
    order = descending_order(score) if order is None else order
    return _points(y[order], score[order], t[order], kind)


def qini_curve(y_true, uplift, treatment) -> tuple[np.ndarray, np.ndarray]:
    """(number of rows targeted, Qini value) at each distinct score, from (0, 0)."""
    return _curve(*_check(y_true, uplift, treatment), "qini")


def uplift_curve(y_true, uplift, treatment) -> tuple[np.ndarray, np.ndarray]:
    """(number of rows targeted, uplift × rows) at each distinct score, from (0, 0)."""
    return _curve(*_check(y_true, uplift, treatment), "uplift")


def _perfect_qini_score(y, t):
    return (y * t - y * (1 - t)).astype(np.int8)


def _perfect_uplift_score(y, t):
    control_responders = np.sum((y == 1) & (t == 0))
    treated_non_responders = np.sum((y == 0) & (t == 1))
    summand = y if control_responders > treated_non_responders else t
    return (2 * (y == t) + summand).astype(np.int8)


def perfect_qini_curve(y_true, treatment, negative_effect: bool = True):
    """The optimum Qini curve (with or without the negative effects, as scikit-uplift)."""
    y = check_binary("y_true", y_true)
    t = check_binary("treatment", treatment)
    if negative_effect:
        return _curve(y, _perfect_qini_score(y, t), t, "qini")
    ratio_random = y[t == 1].sum() - (t == 1).sum() * y[t == 0].sum() / (t == 0).sum()
    return np.array([0.0, ratio_random, len(y)]), np.array([0.0, ratio_random, ratio_random])


def perfect_uplift_curve(y_true, treatment):
    """The optimum uplift curve."""
    y = check_binary("y_true", y_true)
    t = check_binary("treatment", treatment)
    return _curve(y, _perfect_uplift_score(y, t), t, "uplift")


def _normalized_area(actual, perfect) -> float:
    x_p, y_p = perfect
    baseline = np.trapezoid([0.0, y_p[-1]], [0.0, x_p[-1]])
    denominator = np.trapezoid(y_p, x_p) - baseline
    if denominator == 0:
        return float("nan")
    return float((np.trapezoid(actual[1], actual[0]) - baseline) / denominator)


def qini_auc_score(y_true, uplift, treatment, negative_effect: bool = True) -> float:
    """Normalized area under the Qini curve (the Qini coefficient, as scikit-uplift)."""
    y, score, t = _check(y_true, uplift, treatment)
    return _normalized_area(_curve(y, score, t, "qini"), perfect_qini_curve(y, t, negative_effect))


def uplift_auc_score(y_true, uplift, treatment) -> float:
    """Normalized area under the uplift curve (AUUC, as scikit-uplift)."""
    y, score, t = _check(y_true, uplift, treatment)
    return _normalized_area(_curve(y, score, t, "uplift"), perfect_uplift_curve(y, t))


def _k_rows(k: float | int, n: int, option: str = "k") -> int | None:
    """Rows for an integer k (validated); None for a fraction (validated)."""
    if isinstance(k, bool):
        raise ValueError(f"{option}: expected a fraction in (0, 1) or a row count")
    if isinstance(k, (int, np.integer)):
        if not 0 < k < n:
            raise ValueError(f"{option}: a row count must lie in 1..{n - 1}; got {k}")
        return int(k)
    if not 0 < k < 1:
        raise ValueError(f"{option}: a fraction must lie in (0, 1); got {k}")
    return None


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else float("nan")


def _uplift_at_k(y, t, order, strategy: str, k) -> float:
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy: expected one of {', '.join(STRATEGIES)}; got {strategy!r}")
    rows = _k_rows(k, len(y))
    y_sorted, t_sorted = y[order], t[order]
    if strategy == "overall":
        size = rows if rows is not None else int(len(y) * k)
        top_y, top_t = y_sorted[:size], t_sorted[:size]
        return _mean(top_y[top_t == 1]) - _mean(top_y[top_t == 0])
    n_t, n_c = int((t == 1).sum()), int((t == 0).sum())
    size_t = rows if rows is not None else int(n_t * k)
    size_c = rows if rows is not None else int(n_c * k)
    if size_t > n_t or size_c > n_c:
        raise ValueError(f"k: {k} rows exceed a group (treatment {n_t}, control {n_c})")
    treated = y_sorted[t_sorted == 1][:size_t]
    control = y_sorted[t_sorted == 0][:size_c]
    return _mean(treated) - _mean(control)


def uplift_at_k(y_true, uplift, treatment, strategy: str = "overall", k: float | int = 0.3):
    """Response-rate difference (treated − control) in the top k rows (see module)."""
    y, score, t = _check(y_true, uplift, treatment)
    return _uplift_at_k(y, t, descending_order(score), strategy, k)


@dataclass(frozen=True)
class UpliftMetrics:
    """All the metrics of one scored sample, computed with a single sort of the scores."""

    n: int
    uplift_at_k_overall: float
    uplift_at_k_by_group: float
    qini_auc: float
    uplift_auc: float
    k: float | int

    def to_dict(self) -> dict:
        def clean(x: float) -> float | None:
            return float(x) if np.isfinite(x) else None

        return {
            "n": self.n,
            "k": self.k,
            "uplift_at_k": {
                "overall": clean(self.uplift_at_k_overall),
                "by_group": clean(self.uplift_at_k_by_group),
            },
            "qini_auc": clean(self.qini_auc),
            "uplift_auc": clean(self.uplift_auc),
        }


def uplift_metrics(y_true, uplift, treatment, k: float | int = 0.3) -> UpliftMetrics:
    """uplift@k (both strategies), Qini AUC and uplift AUC, sorting the scores once."""
    y, score, t = _check(y_true, uplift, treatment)
    if (t == 1).all() or (t == 0).all():
        raise ValueError("treatment: both groups (0 and 1) must be present")
    order = descending_order(score)
    y_s, score_s, t_s = y[order], score[order], t[order]
    return UpliftMetrics(
        n=len(y),
        uplift_at_k_overall=_uplift_at_k(y, t, order, "overall", k),
        uplift_at_k_by_group=_uplift_at_k(y, t, order, "by_group", k),
        qini_auc=_normalized_area(_points(y_s, score_s, t_s, "qini"), perfect_qini_curve(y, t)),
        uplift_auc=_normalized_area(
            _points(y_s, score_s, t_s, "uplift"), perfect_uplift_curve(y, t)
        ),
        k=k,
    )
