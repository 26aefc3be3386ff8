"""The experiment report: one call from a table of units to every number we publish.

``analyze`` aggregates the table into per-arm sufficient statistics in one group-by
(:mod:`experiments.stats.aggregate`), checks the traffic split (:mod:`.srm`), compares every
arm with the control on every metric by the chosen method (:mod:`.frequentist`,
:mod:`.sequential` or :mod:`.bayesian`), for a metric with a covariate after CUPED with the
theta pooled over the control and that arm (:mod:`.cuped`), and adjusts the p-values across
arms x metrics (:mod:`.multiple`). ``analyze_statistics`` does the same from statistics already
aggregated (e.g. merged partitions), so every reported number can be reproduced from the
logs with these two functions.

The result is plain JSON-able data; fields a method does not produce are None:

- ``mean`` / ``control_mean`` are the observed (unadjusted) means, while ``abs`` and
  ``rel`` of a CUPED metric are the adjusted effects;
- ``abs.p_value`` / ``rel.p_value`` are fixed-horizon p-values (frequentist),
  anytime-valid p-values (sequential) or None (Bayesian);
- ``p_value_adjusted`` adjusts ``abs.p_value`` across all arms x metrics (None for Bayesian);
- ``chance_to_win`` and ``expected_loss`` (of shipping the arm, as a fraction of the control
  mean) are Bayesian only;
- ``variance_reduction`` = 1 - Var(adjusted) / Var(unadjusted) of the absolute effect, for
  metrics with a covariate.

>>> import numpy as np, pyarrow as pa
>>> rng = np.random.default_rng(1)
>>> arm = rng.choice(["control", "treatment"], size=20_000)
>>> pre = rng.gamma(2.0, 10.0, size=arm.size)
>>> revenue = pre + rng.normal(0.0, 5.0, arm.size) + 0.5 * (arm == "treatment")
>>> t = pa.table({"arm": arm, "revenue": revenue, "pre_revenue": pre})
>>> spec = MetricSpec("revenue", "revenue", "mean", covariate_column="pre_revenue")
>>> report = analyze(t, "arm", "control", [spec])
>>> row = report["results"][0]
>>> report["srm"]["flag"], row["abs"]["p_value"] < 0.001, round(row["variance_reduction"], 2)
(False, True, 0.89)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import pyarrow as pa

from experiments.stats import cuped
from experiments.stats.aggregate import MetricSpec, aggregate
from experiments.stats.bayesian import GaussianPrior, bayesian_test
from experiments.stats.frequentist import two_sided_test
from experiments.stats.multiple import Correction, adjust_p_values
from experiments.stats.sequential import DEFAULT_TUNING_PARAMETER, sequential_test
from experiments.stats.srm import srm_check
from experiments.stats.statistics import RegressionAdjustedStatistic, Statistic
from liftgate.core.errors import InputError

Method = Literal["frequentist", "sequential", "bayesian"]
METHODS = ("frequentist", "sequential", "bayesian")
CORRECTIONS = ("holm", "bh", "none")


def _check_options(method: str, alpha: float, correction: str) -> None:
    if method not in METHODS:
        raise InputError(f"must be one of {METHODS}, got {method!r}", parameter="method")
    if correction not in CORRECTIONS:
        raise InputError(
            f"must be one of {CORRECTIONS}, got {correction!r}", parameter="correction"
        )
    if not 0.0 < alpha < 1.0:
        raise InputError(f"must be in (0, 1), got {alpha}", parameter="alpha")


def _num(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def check_weights(weights: Mapping[str, float], arms: list[str], arm_col: str) -> None:
    """Raise InputError when ``weights`` name an arm that is not among the table's ``arms``.

    A table knows only the arms that have units, so a weight for any other arm is taken for
    a typo: the SRM test would otherwise count it as an arm that received nothing and report
    a broken split. (An arm without a weight is :func:`.srm.srm_check`'s error.)

    >>> check_weights({"control": 0.5, "treatmnt": 0.5}, ["control", "treatment"], "arm")
    Traceback (most recent call last):
    ...
    liftgate.core.errors.InputError: weights: arm 'treatmnt' is not in column 'arm' \
(arms present: control, treatment)
    """
    unknown = [arm for arm in weights if arm not in arms]
    if unknown:
        raise InputError(
            f"arm {unknown[0]!r} is not in column {arm_col!r} "
            f"(arms present: {', '.join(sorted(arms))})",
            parameter="weights",
        )


def analyze(
    table: pa.Table,
    arm_col: str,
    control: str,
    metrics: list[MetricSpec],
    method: Method = "frequentist",
    weights: dict[str, float] | None = None,
    alpha: float = 0.05,
    correction: Correction = "holm",
    *,
    prior: GaussianPrior | None = None,
    sequential_tuning_parameter: float = DEFAULT_TUNING_PARAMETER,
) -> dict[str, Any]:
    """Analyse a table with one row per unit; see the module docstring for the output.

    Raises ``ValueError`` naming the column or arm when the input cannot be analysed.
    """
    _check_options(method, alpha, correction)
    if not metrics:
        raise ValueError("metrics must list at least one MetricSpec")
    stats = aggregate(table, arm_col, metrics)
    if str(control) not in stats:
        raise ValueError(
            f"control arm {control!r} not found in column {arm_col!r} "
            f"(arms present: {sorted(stats)})"
        )
    if weights is not None:
        check_weights(weights, list(stats), arm_col)
    return analyze_statistics(
        stats,
        str(control),
        metrics,
        method,
        weights,
        alpha,
        correction,
        prior=prior,
        sequential_tuning_parameter=sequential_tuning_parameter,
    )


def analyze_statistics(
    stats: Mapping[str, Mapping[str, Statistic]],
    control: str,
    metrics: list[MetricSpec],
    method: Method = "frequentist",
    weights: dict[str, float] | None = None,
    alpha: float = 0.05,
    correction: Correction = "holm",
    *,
    prior: GaussianPrior | None = None,
    sequential_tuning_parameter: float = DEFAULT_TUNING_PARAMETER,
) -> dict[str, Any]:
    """``analyze`` from per-arm statistics (``aggregate``'s output, possibly merged)."""
    _check_options(method, alpha, correction)
    if control not in stats:
        raise ValueError(f"control arm {control!r} not found (arms present: {sorted(stats)})")
    if not metrics:
        raise ValueError("metrics must list at least one MetricSpec")
    first = metrics[0].name
    observed = {arm: int(per_metric[first].n) for arm, per_metric in stats.items()}
    srm = srm_check(observed, weights)

    treatments = [arm for arm in stats if arm != control]
    results: list[dict[str, Any]] = []
    for m in metrics:
        for arm in treatments:
            c, t = stats[control][m.name], stats[arm][m.name]
            if m.covariate_column:
                c, t = cuped.adjust_pair(c, t)  # type: ignore[arg-type]
            chance = loss = reduction = None
            if method == "frequentist":
                r = two_sided_test(c, t, alpha)
            elif method == "sequential":
                r = sequential_test(c, t, alpha, sequential_tuning_parameter)
            else:
                r = bayesian_test(c, t, prior=prior, alpha=alpha)
                chance, loss = r.chance_to_win, r.expected_loss
            if isinstance(c, RegressionAdjustedStatistic) and isinstance(
                t, RegressionAdjustedStatistic
            ):
                reduction = cuped.variance_reduction(c, t)
            results.append(
                {
                    "metric": m.name,
                    "kind": m.kind,
                    "method": method,
                    "arm": arm,
                    "control": control,
                    "n": int(t.n),
                    "mean": _num(t.unadjusted_mean),
                    "control_n": int(c.n),
                    "control_mean": _num(c.unadjusted_mean),
                    "abs": r.abs.to_dict(),
                    "rel": r.rel.to_dict(),
                    "p_value_adjusted": None,
                    "chance_to_win": _num(chance),
                    "expected_loss": _num(loss),
                    "variance_reduction": _num(reduction),
                }
            )
    adjusted = adjust_p_values([r["abs"]["p_value"] for r in results], correction)
    for r, p in zip(results, adjusted, strict=True):
        r["p_value_adjusted"] = p
    return {"srm": srm.to_dict(), "results": results}
