"""The treatment effect per segment: each arm against the control within slices of the units.

An average effect can hide segments that respond strongly, not at all or negatively: the
uplift a targeting policy exploits. The experiment's units (one row per customer,
:func:`experiments.units.experiment_units`) carry contract features from their first
decision, as the contract encodes them (category codes, ``log1p`` where it transforms). A
category or bool feature segments by its values; a numeric one by quantile bins of its raw
values over all units (edges are observed values; features are pre-exposure, so the bins
do not depend on the arms).

Within each segment the primary metric is aggregated per arm in one group-by over
(segment, arm) (:mod:`experiments.stats.aggregate`) and every arm is compared with the
control by the fixed-horizon two-sided test (:mod:`experiments.stats.frequentist`), without
CUPED. The intervals are per segment and not adjusted for the number of segments: they
describe where the effect lies, they are not a shipping verdict.

>>> import numpy as np, pyarrow as pa
>>> from configs.schema import FeatureSpec
>>> from experiments.stats.aggregate import MetricSpec
>>> spec = FeatureSpec(name="segment", dtype="category", categories=["loyal", "new"],
...                    default="loyal")
>>> rng = np.random.default_rng(3)
>>> segment, treated = rng.integers(0, 2, 40_000), rng.integers(0, 2, 40_000)
>>> rate = 0.10 + 0.05 * treated * segment  # only new customers respond
>>> units = pa.table({"arm": np.where(treated, "t", "c"), "feature:segment": segment * 1.0,
...                   "converted": (rng.random(40_000) < rate).astype(int)})
>>> [by_feature] = segment_effects(units, [spec], MetricSpec("cr", "converted", "binomial"), "c")
>>> [(r["segment"], r["n"], round(r["abs"]["estimate"], 3), r["abs"]["ci_low"] > 0)
...  for r in by_feature["rows"]]
[('loyal', 10025, 0.001, False), ('new', 10075, 0.056, True)]

References: Athey & Imbens (2016), "Recursive partitioning for heterogeneous causal
effects", PNAS 113(27) (effects conditional on covariates); Kohavi, Tang & Xu (2020),
*Trustworthy Online Controlled Experiments*, ch. 3 (segments and heterogeneous effects).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from configs.schema import FeaturesConfig, FeatureSpec
from experiments.stats.aggregate import MetricSpec, aggregate
from experiments.stats.frequentist import two_sided_test
from experiments.units import FEATURE_PREFIX

QUANTILE_BINS = 4
_SEP = "\x1f"
_NO_EFFECT = {"estimate": None, "ci_low": None, "ci_high": None, "p_value": None}


def segment_specs(features: FeaturesConfig, names: Iterable[str]) -> list[FeatureSpec]:
    """The contract's specs of ``names`` (an experiment's ``segment_by``), in that order."""
    specs = {spec.name: spec for spec in features.features}
    unknown = [name for name in names if name not in specs]
    if unknown:
        raise ValueError(f"segment_by: expected features of the contract; found {unknown}")
    return [specs[name] for name in names]


def _bin_label(low: float, high: float, last: bool) -> str:
    return f"[{low:.4g}, {high:.4g}{']' if last else ')'}"


def segment_labels(encoded: np.ndarray, spec: FeatureSpec, bins: int = QUANTILE_BINS):
    """Each unit's segment and the segments in display order, from encoded feature values."""
    codes = np.asarray(encoded, dtype=np.float64)
    if spec.dtype in ("category", "bool"):
        names = spec.categories if spec.dtype == "category" else ["false", "true"]
        labels = np.asarray(names, dtype=object)[codes.astype(np.int64)]
        return labels, [n for n in names if (labels == n).any()]
    raw = np.expm1(codes) if spec.transform == "log1p" else codes
    if spec.dtype == "int":
        raw = np.rint(raw)
    edges = np.unique(np.quantile(raw, np.linspace(0.0, 1.0, bins + 1), method="lower"))
    if len(edges) == 1:
        return np.full(len(raw), f"{edges[0]:.4g}", dtype=object), [f"{edges[0]:.4g}"]
    names = [_bin_label(edges[k], edges[k + 1], k == len(edges) - 2) for k in range(len(edges) - 1)]
    index = np.searchsorted(edges[1:-1], raw, side="right")
    labels = np.asarray(names, dtype=object)[index]
    return labels, [n for n in names if (labels == n).any()]


def segment_effects(
    units: pa.Table,
    specs: Sequence[FeatureSpec],
    metric: MetricSpec,
    control: str,
    alpha: float = 0.05,
    bins: int = QUANTILE_BINS,
) -> list[dict[str, Any]]:
    """Per feature of ``specs``, per segment and arm: units, means and the effect vs control.

    Raises ``ValueError`` naming the column when the unit table lacks a feature's column.
    """
    out = []
    for spec in specs:
        column = FEATURE_PREFIX + spec.name
        if column not in units.column_names:
            raise ValueError(
                f"unit table: column {column!r} missing (segment_by {spec.name!r}; "
                f"got {units.column_names})"
            )
        labels, order = segment_labels(units[column].to_numpy(zero_copy_only=False), spec, bins)
        key = pc.binary_join_element_wise(pa.array(labels, pa.string()), units["arm"], _SEP)
        work = pa.table({"__key__": key, **{c: units[c] for c in metric.columns}})
        stats: dict[str, dict[str, Any]] = {}
        for k, per_metric in aggregate(work, "__key__", [metric]).items():
            segment, arm = k.split(_SEP, 1)
            stats.setdefault(segment, {})[arm] = per_metric[metric.name]
        treatments = sorted({arm for by_arm in stats.values() for arm in by_arm} - {control})
        rows = []
        for segment in order:
            by_arm = stats.get(segment, {})
            base = by_arm.get(control)
            for arm in treatments:
                s = by_arm.get(arm)
                test = two_sided_test(base, s, alpha) if base and s else None
                rows.append(
                    {
                        "segment": segment,
                        "arm": arm,
                        "n": int(s.n) if s else 0,
                        "control_n": int(base.n) if base else 0,
                        "mean": float(s.unadjusted_mean) if s else None,
                        "control_mean": float(base.unadjusted_mean) if base else None,
                        "abs": test.abs.to_dict() if test else dict(_NO_EFFECT),
                        "rel": test.rel.to_dict() if test else dict(_NO_EFFECT),
                    }
                )
        binning = "values" if spec.dtype in ("category", "bool") else "quantiles"
        out.append({"feature": spec.name, "binning": binning, "rows": rows})
    return out
