"""The experiment report's data: everything we publish about one experiment, from its unit table.

:func:`experiment_report` turns an experiment's configuration and its table of units (one
row per customer, :func:`experiments.units.experiment_units` without the holdout) into plain
JSON-able data, with its ship decision (:mod:`experiments.report.ship_decision`) under the
key ``"ship_decision"``. It is pure: no file is read or written here;
:func:`experiments.report.render.render_html` turns the data into one HTML page.

The statistics come from :mod:`experiments.stats`: the table is aggregated once into per-arm
sufficient statistics and analysed with :func:`~experiments.stats.analyze_statistics`
(the same numbers as :func:`~experiments.stats.analyze` on the table). The timeline is a
second, single group-by over (period, arm); its cumulative statistics are sums of those
partial statistics, so each point of the cumulative lift costs O(arms).

>>> import datetime as dt, numpy as np, pyarrow as pa
>>> from configs.schema import ExperimentConfig
>>> config = ExperimentConfig.model_validate({
...     "name": "demo", "arms": [{"name": "a", "weight": 0.5}, {"name": "b", "weight": 0.5}],
...     "primary_metric": {"name": "conversion", "kind": "binomial", "column": "converted"},
...     "method": "frequentist"})
>>> rng = np.random.default_rng(0)
>>> arm = rng.choice(["a", "b"], 40_000)
>>> t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
>>> units = pa.table({
...     "customer_id": [f"c{i}" for i in range(arm.size)], "arm": arm,
...     "first_exposure": [t0 + dt.timedelta(minutes=i / 4) for i in range(arm.size)],
...     "decisions": np.ones(arm.size, dtype=int),
...     "converted": (rng.random(arm.size) < np.where(arm == "b", 0.12, 0.10)).astype(int),
...     "revenue": np.zeros(arm.size)})
>>> report = experiment_report(config, units, now=t0 + dt.timedelta(days=30))
>>> report["ship_decision"]["decision"], report["units"]
('ship', {'a': 20031, 'b': 19969})
>>> len(report["timeline"]), report["timeline"][-1]["units"] == report["units"]
(7, True)
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.special import ndtri

from configs.schema import ExperimentConfig, FeaturesConfig, MetricConfig
from experiments.report.ship_decision import REPORT_KEY, ship_decision
from experiments.stats.aggregate import MetricSpec, aggregate
from experiments.stats.analysis import analyze_statistics
from experiments.stats.power import sample_size_per_arm
from experiments.stats.statistics import RegressionAdjustedStatistic, Statistic
from experiments.uplift.segments import segment_effects, segment_specs

#: The column of the unit table that holds the CUPED covariate (see experiments.units).
COVARIATE_COLUMN = "covariate"
#: Number of timeline points when the experiment spans less than two days.
SHORT_SPAN_POINTS = 20
DAY = dt.timedelta(days=1)


# --------------------------------------------------------------------------------- specs


def metric_specs(config: ExperimentConfig, with_covariate: bool) -> list[MetricSpec]:
    """The primary metric then the guardrails as MetricSpecs; CUPED on non-ratio metrics."""
    return [_spec(m, with_covariate) for m in config.metrics]


def _spec(m: MetricConfig, with_covariate: bool) -> MetricSpec:
    covariate = COVARIATE_COLUMN if with_covariate and m.kind != "ratio" else None
    return MetricSpec(
        m.name, m.column, m.kind, denominator_column=m.denominator, covariate_column=covariate
    )


def _finite(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _unadjusted_variance(s: Statistic) -> float:
    if isinstance(s, RegressionAdjustedStatistic):
        return s.unadjusted_variance
    return s.variance


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat()


def _exposure_us(units: pa.Table) -> np.ndarray:
    """first_exposure as int64 microseconds since the epoch, UTC (naive means UTC)."""
    col = units["first_exposure"]
    tz = getattr(col.type, "tz", None)
    col = pc.cast(col, pa.timestamp("us", tz=tz))
    return pc.cast(col, pa.int64()).to_numpy(zero_copy_only=False)


def _from_us(us: int) -> dt.datetime:
    return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=int(us))


# ------------------------------------------------------------------------------ the report


def experiment_report(
    config: ExperimentConfig,
    units: pa.Table,
    holdout_units: int = 0,
    now: dt.datetime | None = None,
    features: FeaturesConfig | None = None,
    sent: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The report of one experiment from its unit table (holdout excluded); JSON-able.

    With ``segment_by`` in the configuration, ``segments`` holds the primary effect per
    segment of those ``features`` (:mod:`experiments.uplift.segments`). ``sent``, what was
    actually sent per arm (:func:`experiments.sent.sent_by_arm` of the experiment's
    decisions and the action log), is kept under ``"sent"``, in the arms' order.

    Raises ``ValueError`` when the table is empty, lacks a column the configuration needs,
    or does not contain the control arm.
    """
    now = now or dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    if units.num_rows == 0:
        raise ValueError(f"experiment {config.name!r}: no exposed units yet")
    for col in ("arm", "first_exposure"):
        if col not in units.column_names:
            raise ValueError(f"unit table: column {col!r} missing (got {units.column_names})")
    with_covariate = config.cuped_covariate is not None
    if with_covariate and COVARIATE_COLUMN not in units.column_names:
        raise ValueError(
            f"experiment {config.name!r} sets cuped_covariate {config.cuped_covariate!r} but "
            f"the unit table has no {COVARIATE_COLUMN!r} column"
        )
    specs = metric_specs(config, with_covariate)
    control = config.control_arm
    weights = {a.name: a.weight for a in config.arms if a.weight > 0}
    method, alpha = config.method, config.alpha

    stats = aggregate(units, "arm", specs)
    analysis = analyze_statistics(stats, control, specs, method, weights, alpha, config.correction)

    primary = specs[0]
    arm_names = [a.name for a in config.arms] + sorted(set(stats) - {a.name for a in config.arms})
    unit_counts = {arm: int(stats[arm][primary.name].n) if arm in stats else 0 for arm in arm_names}
    exposure = _exposure_us(units)
    first, last = _from_us(exposure.min()), _from_us(exposure.max())

    planned = _planned_n(config, stats[control][primary.name])
    report: dict[str, Any] = {
        "experiment": config.name,
        "description": config.description,
        "method": method,
        "alpha": alpha,
        "power": config.power,
        "correction": config.correction,
        "minimum_detectable_effect": config.minimum_detectable_effect,
        "cuped_covariate": config.cuped_covariate,
        "arms": {a.name: a.weight for a in config.arms},
        "control": control,
        "metrics": [
            {
                "name": m.name,
                "kind": m.kind,
                "column": m.column,
                "denominator": m.denominator,
                "role": "primary" if i == 0 else "guardrail",
                "cuped": spec.covariate_column is not None,
            }
            for i, (m, spec) in enumerate(zip(config.metrics, specs, strict=True))
        ],
        "units": unit_counts,
        "holdout_units": int(holdout_units),
        "first_exposure": _iso(first),
        "last_exposure": _iso(last),
        "generated_at": _iso(now),
        "srm": analysis["srm"],
        "results": analysis["results"],
        "arm_means": _arm_means(stats, specs, arm_names, alpha),
        "planned_n_per_arm": planned,
        "timeline": _timeline(units, exposure, specs[0], control, method, alpha),
    }
    if config.segment_by:
        if features is None:
            raise ValueError(f"experiment {config.name!r} sets segment_by: pass its features")
        segment_by = segment_specs(features, config.segment_by)
        unadjusted = _spec(config.primary_metric, with_covariate=False)
        report["segments"] = segment_effects(units, segment_by, unadjusted, control, alpha)
    if sent is not None:
        order = {arm: i for i, arm in enumerate(arm_names)}
        ordered = sorted(sent, key=lambda arm: (order.get(arm, len(order)), arm))
        report["sent"] = {arm: dict(sent[arm]) for arm in ordered}
    report[REPORT_KEY] = ship_decision(report)
    return report


def _planned_n(config: ExperimentConfig, control: Statistic) -> int | None:
    """Units per arm for the primary metric at the configured MDE, alpha and power, with
    the observed control mean as the baseline (and its unadjusted per-unit SD for means and
    ratios); None when the baseline makes it undefined (a 0 % or 100 % rate, a zero mean)."""
    kind = "binomial" if config.primary_metric.kind == "binomial" else "mean"
    baseline = control.unadjusted_mean
    std = math.sqrt(_unadjusted_variance(control)) if kind == "mean" else None
    try:
        n = sample_size_per_arm(
            kind,
            baseline,
            config.minimum_detectable_effect,
            std=std,
            alpha=config.alpha,
            power=config.power,
        )
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return n if n > 0 else None


def _arm_means(
    stats: Mapping[str, Mapping[str, Statistic]],
    specs: Sequence[MetricSpec],
    arms: Sequence[str],
    alpha: float,
) -> list[dict[str, Any]]:
    """Observed (unadjusted) mean of every arm and metric with its normal 1 - alpha interval."""
    z = float(ndtri(1.0 - alpha / 2.0))
    out = []
    for spec in specs:
        for arm in arms:
            if arm not in stats:
                continue
            s = stats[arm][spec.name]
            mean = s.unadjusted_mean
            half = z * math.sqrt(_unadjusted_variance(s) / s.n) if s.n > 0 else math.nan
            out.append(
                {
                    "metric": spec.name,
                    "arm": arm,
                    "n": int(s.n),
                    "mean": _finite(mean),
                    "ci_low": _finite(mean - half),
                    "ci_high": _finite(mean + half),
                }
            )
    return out


# ------------------------------------------------------------------------------ timeline


def _periods(exposure: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Period index of every unit and the end (µs) of every period: UTC days when the
    exposures span two days or more, else twenty equal slices of the span."""
    lo, hi = int(exposure.min()), int(exposure.max())
    day_us = int(DAY / dt.timedelta(microseconds=1))
    if hi - lo >= 2 * day_us:
        origin = lo - lo % day_us  # UTC midnight of the first exposure
        step = day_us
        count = (hi - origin) // step + 1
    elif hi > lo:
        origin, step, count = lo, -(-(hi - lo) // SHORT_SPAN_POINTS), SHORT_SPAN_POINTS
    else:
        return np.zeros(exposure.size, dtype=np.int64), [hi]
    index = np.minimum((exposure - origin) // step, count - 1)
    return index, [min(origin + (k + 1) * step, hi) for k in range(count)]


def _timeline(
    units: pa.Table,
    exposure: np.ndarray,
    primary: MetricSpec,
    control: str,
    method: str,
    alpha: float,
) -> list[dict[str, Any]]:
    """Cumulative units per arm and primary effect (vs control) at the end of each period.

    One group-by over (period, arm) gives the statistics of each period; each point adds
    them up, and the interval is the method's own (a confidence sequence for sequential,
    valid at every point at once; a fixed-horizon interval otherwise).
    """
    index, ends = _periods(exposure)
    sep = "\x1f"
    key = pc.binary_join_element_wise(
        pc.cast(pa.array(index), pa.string()), pc.cast(units["arm"], pa.string()), sep
    )
    work = pa.table({"__key__": key, **{c: units[c] for c in primary.columns}})
    per_period: dict[int, dict[str, Statistic]] = {}
    for k, per_metric in aggregate(work, "__key__", [primary]).items():
        period, arm = k.split(sep, 1)
        per_period.setdefault(int(period), {})[arm] = per_metric[primary.name]

    cumulative: dict[str, Statistic] = {}
    points = []
    for period, end in enumerate(ends):
        for arm, s in per_period.get(period, {}).items():
            cumulative[arm] = cumulative[arm] + s if arm in cumulative else s
        effects: dict[str, Any] = {}
        if control in cumulative and len(cumulative) > 1:
            stats = {arm: {primary.name: s} for arm, s in cumulative.items()}
            result = analyze_statistics(stats, control, [primary], method, None, alpha, "none")
            for row in result["results"]:
                effects[row["arm"]] = {"abs": row["abs"], "rel": row["rel"]}
        points.append(
            {
                "end": _iso(_from_us(end)),
                "units": {arm: int(s.n) for arm, s in sorted(cumulative.items())},
                "primary": effects,
            }
        )
    return points
