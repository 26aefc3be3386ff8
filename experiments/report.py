"""The experiment report: everything we publish about one experiment, from its unit table.

:func:`experiment_report` turns an experiment's configuration and its table of units (one
row per customer, :func:`experiments.units.experiment_units` without the holdout) into plain
JSON-able data; :func:`render_html` turns that data into one self-contained HTML page. Both
are pure: no file is read or written here.

The statistics come from :mod:`experiments.stats`: the table is aggregated once into per-arm
sufficient statistics and analysed with :func:`~experiments.stats.analyze_statistics`
(the same numbers as :func:`~experiments.stats.analyze` on the table). The timeline is a
second, single group-by over (period, arm); its cumulative statistics are sums of those
partial statistics, so each point of the cumulative lift costs O(arms).

The verdict follows plain rules, in this order:

1. a sample ratio mismatch (SRM) means assignment or logging is broken: **keep running**
   is not safe either, so the first reason says to investigate; nothing is shipped;
2. the primary metric significantly better (adjusted p < alpha for the frequentist and
   sequential methods, chance to win >= 95 % for the Bayesian one) and no guardrail
   significantly worse: **ship**;
3. the primary metric or any guardrail significantly worse: **don't ship**;
4. otherwise **keep running**, with the units so far against the planned sample size.

Higher is taken to be better for every metric (conversion, revenue, revenue per decision).
With several treatment arms the best arm that qualifies is shipped; "don't ship" needs
every treatment arm to be worse somewhere.

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
>>> report["verdict"]["decision"], report["units"]
('ship', {'a': 20031, 'b': 19969})
>>> len(report["timeline"]), report["timeline"][-1]["units"] == report["units"]
(7, True)
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.special import ndtri

from configs.schema import ExperimentConfig, FeaturesConfig, MetricConfig
from experiments.stats.aggregate import MetricSpec, aggregate
from experiments.stats.analysis import analyze_statistics
from experiments.stats.power import sample_size_per_arm
from experiments.stats.srm import SRM_THRESHOLD
from experiments.stats.statistics import RegressionAdjustedStatistic, Statistic
from experiments.uplift.segments import segment_effects, segment_specs

#: The column of the unit table that holds the CUPED covariate (see experiments.units).
COVARIATE_COLUMN = "covariate"
#: Bayesian decision threshold on the chance to win (and 1 - it for a loss).
CHANCE_TO_WIN_THRESHOLD = 0.95
#: Number of timeline points when the experiment spans less than two days.
SHORT_SPAN_POINTS = 20
DAY = dt.timedelta(days=1)

SHIP, DONT_SHIP, KEEP_RUNNING = "ship", "don't ship", "keep running"


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
) -> dict[str, Any]:
    """The report of one experiment from its unit table (holdout excluded); JSON-able.

    With ``segment_by`` in the configuration, ``segments`` holds the primary effect per
    segment of those ``features`` (:mod:`experiments.uplift.segments`).

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
    report["verdict"] = verdict(report)
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


# ------------------------------------------------------------------------------- verdict


def significance(row: Mapping[str, Any], method: str, alpha: float) -> int:
    """+1 significantly better than control, -1 significantly worse, 0 not significant."""
    if method == "bayesian":
        chance = row.get("chance_to_win")
        if chance is None:
            return 0
        if chance >= CHANCE_TO_WIN_THRESHOLD:
            return 1
        return -1 if chance <= 1.0 - CHANCE_TO_WIN_THRESHOLD else 0
    p, estimate = row.get("p_value_adjusted"), row["abs"]["estimate"]
    if p is None or estimate is None or p >= alpha:
        return 0
    return (estimate > 0) - (estimate < 0)


def _pct(x: float | None, signed: bool = True) -> str:
    if x is None:
        return "n/a"
    return f"{x:+.1%}" if signed else f"{x:.1%}"


def _effect_text(row: Mapping[str, Any], method: str, alpha: float) -> str:
    rel = row["rel"]
    kind = {"bayesian": "credible interval", "sequential": "confidence sequence"}.get(method, "CI")
    text = f"{_pct(rel['estimate'])}"
    if rel["ci_low"] is not None:
        text += f" ({1 - alpha:.0%} {kind} {_pct(rel['ci_low'])} to {_pct(rel['ci_high'])})"
    if method == "bayesian":
        if row["chance_to_win"] is not None:
            text += f", chance to win {row['chance_to_win']:.1%}"
    elif row["p_value_adjusted"] is not None:
        text += f", adjusted p = {row['p_value_adjusted']:.3g}"
    return text


def verdict(report: Mapping[str, Any]) -> dict[str, Any]:
    """Ship, don't ship or keep running, with the reasons in plain language (see module)."""
    method, alpha, control = report["method"], report["alpha"], report["control"]
    srm = report["srm"]
    if srm["flag"]:
        observed = ", ".join(f"{a} {n:,}" for a, n in srm["observed"].items())
        expected = ", ".join(f"{a} {w:.0%}" for a, w in srm["expected_share"].items())
        return {
            "decision": KEEP_RUNNING,
            "arm": None,
            "reasons": [
                f"Sample ratio mismatch (p = {srm['p_value']:.2g} < {SRM_THRESHOLD}): "
                f"units {observed} against configured shares {expected}. Assignment or "
                "logging is broken somewhere; investigate before reading any metric.",
                "Do not ship on these results: they cannot be trusted until the split is "
                "fixed, after which the experiment should be restarted.",
            ],
        }
    roles = {m["name"]: m["role"] for m in report["metrics"]}
    primary = next(name for name, role in roles.items() if role == "primary")
    by_arm: dict[str, list[Mapping[str, Any]]] = {}
    for row in report["results"]:
        by_arm.setdefault(row["arm"], []).append(row)
    if not by_arm:
        return {
            "decision": KEEP_RUNNING,
            "arm": None,
            "reasons": [f"Only the control arm {control!r} has units so far."],
        }

    winners, losers, reasons = [], [], []
    for arm, rows in by_arm.items():
        main = next(r for r in rows if r["metric"] == primary)
        sign = significance(main, method, alpha)
        worse = [r for r in rows if r["metric"] != primary and significance(r, method, alpha) < 0]
        for r in worse:
            reasons.append(
                f"{r['metric']} (guardrail): {arm} is significantly worse than {control}: "
                f"{_effect_text(r, method, alpha)}."
            )
        if sign < 0:
            reasons.append(
                f"{primary}: {arm} is significantly worse than {control}: "
                f"{_effect_text(main, method, alpha)}."
            )
        if sign < 0 or worse:
            losers.append(arm)
        elif sign > 0:
            winners.append((main["abs"]["estimate"] or 0.0, arm, main))

    if winners:
        _, arm, main = max(winners)
        guardrails = [n for n, role in roles.items() if role == "guardrail"]
        guard = (
            f"No guardrail is significantly worse ({', '.join(guardrails)})."
            if guardrails
            else "No guardrail metrics are configured."
        )
        planned, smallest = report["planned_n_per_arm"], min(report["units"].values())
        if method == "frequentist" and planned is not None and smallest < planned:
            reasons.append(
                f"Caution: the fixed-horizon test was planned for {planned:,} units per arm and "
                f"the smallest arm has {smallest:,}; stopping at the first significant look "
                "inflates false positives (the sequential method is valid at every look)."
            )
        return {
            "decision": SHIP,
            "arm": arm,
            "reasons": [
                f"{primary}: {arm} is significantly better than {control}: "
                f"{_effect_text(main, method, alpha)}.",
                guard,
                *reasons,
            ],
        }
    if len(losers) == len(by_arm):
        return {"decision": DONT_SHIP, "arm": None, "reasons": reasons}

    for arm, rows in by_arm.items():
        if arm not in losers:
            main = next(r for r in rows if r["metric"] == primary)
            reasons.append(
                f"{primary}: {arm} vs {control} is {_effect_text(main, method, alpha)}; "
                "not significant yet."
            )
    reasons.append(_progress(report))
    return {"decision": KEEP_RUNNING, "arm": None, "reasons": reasons}


def _progress(report: Mapping[str, Any]) -> str:
    planned = report["planned_n_per_arm"]
    counts = report["units"]
    smallest = min(counts.values()) if counts else 0
    mde = report["minimum_detectable_effect"]
    if planned is None:
        return f"{smallest:,} units in the smallest arm; no planned size (undefined baseline)."
    text = (
        f"{smallest:,} of {planned:,} planned units per arm ({smallest / planned:.0%}) "
        f"to detect a {mde:.0%} relative lift."
    )
    if smallest >= planned:
        return text + (
            " The planned size is reached: an effect as large as the MDE is unlikely, "
            "so stopping without shipping is reasonable."
        )
    first = dt.datetime.fromisoformat(report["first_exposure"])
    last = dt.datetime.fromisoformat(report["last_exposure"])
    days = (last - first) / DAY
    if days >= 1.0 / 24 and smallest > 0:
        remaining = math.ceil((planned - smallest) / (smallest / days))
        text += f" About {remaining} more day{'s' if remaining != 1 else ''} at the current rate."
    return text


# ---------------------------------------------------------------------------------- HTML

CONTROL_COLOR = "#6b7280"
ARM_COLORS = ["#2563eb", "#ea580c", "#059669", "#9333ea", "#dc2626", "#0891b2"]

CSS = """
body{font:14px/1.45 -apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#111827;
 margin:0;background:#f9fafb}
main{max-width:1040px;margin:0 auto;padding:16px 24px 32px}
.banner{padding:10px 24px;font-weight:600}
.banner.bad{background:#b91c1c;color:#fff;font-size:16px}
.banner.ok{background:#dcfce7;color:#166534}
h1{font-size:22px;margin:14px 0 2px}h2{font-size:17px;margin:22px 0 8px}
.sub{color:#4b5563;margin:0 0 12px}
.verdict{border-left:6px solid;padding:8px 16px;background:#fff;border-radius:4px;
 box-shadow:0 1px 2px rgba(0,0,0,.06)}
.verdict .decision{font-size:20px;font-weight:700;text-transform:uppercase;letter-spacing:.02em}
.verdict ul{margin:6px 0 4px;padding-left:20px}
.ship{border-color:#16a34a}.ship .decision{color:#15803d}
.dont{border-color:#dc2626}.dont .decision{color:#b91c1c}
.keep{border-color:#d97706}.keep .decision{color:#b45309}
.facts{display:flex;flex-wrap:wrap;gap:8px;margin:12px 0}
.fact{background:#fff;border:1px solid #e5e7eb;border-radius:4px;padding:6px 10px}
.fact b{display:block;font-size:16px}.fact span{color:#6b7280;font-size:12px}
img{width:100%;display:block;background:#fff;border:1px solid #e5e7eb;border-radius:4px;
 margin:6px 0}
table{border-collapse:collapse;width:100%;background:#fff;font-size:13px}
th,td{padding:5px 8px;border-bottom:1px solid #e5e7eb;text-align:right;white-space:nowrap}
th{background:#f3f4f6;font-weight:600}th:first-child,td:first-child,td.l{text-align:left}
td.good{color:#15803d;font-weight:600}td.bad{color:#b91c1c;font-weight:600}
.ci{color:#6b7280;font-size:11px;font-weight:400}
.tag{font-size:11px;padding:1px 5px;border-radius:3px;margin-left:4px;background:#e5e7eb;
 color:#374151}.tag.p{background:#dbeafe;color:#1e40af}
.note{color:#6b7280;font-size:12px;margin-top:10px}
"""


def _arm_colors(report: Mapping[str, Any]) -> dict[str, str]:
    colors, i = {}, 0
    for arm in report["units"]:
        if arm == report["control"]:
            colors[arm] = CONTROL_COLOR
        else:
            colors[arm] = ARM_COLORS[i % len(ARM_COLORS)]
            i += 1
    return colors


def _png(fig: Any) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(data: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _figure(width: float, height: float, ncols: int = 1) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    for ax in axes:
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(axis="y", color="#e5e7eb", linewidth=0.8)
        ax.set_axisbelow(True)
        ax.tick_params(labelsize=9)
    return fig, axes


def plot_arm_means(report: Mapping[str, Any]) -> str:
    """Per-arm means with their intervals, one panel per metric; base64 PNG."""
    metrics = report["metrics"]
    colors = _arm_colors(report)
    fig, axes = _figure(10.0, 2.6, len(metrics))
    for ax, metric in zip(axes, metrics, strict=True):
        rows = [r for r in report["arm_means"] if r["metric"] == metric["name"]]
        for i, r in enumerate(rows):
            if r["mean"] is None:
                continue
            lo = r["mean"] - (r["ci_low"] if r["ci_low"] is not None else r["mean"])
            hi = (r["ci_high"] if r["ci_high"] is not None else r["mean"]) - r["mean"]
            ax.errorbar(
                [i],
                [r["mean"]],
                yerr=[[lo], [hi]],
                fmt="o",
                color=colors.get(r["arm"]),
                capsize=5,
                markersize=6,
                linewidth=1.6,
            )
        ax.set_xticks(range(len(rows)), [r["arm"] for r in rows])
        ax.set_xlim(-0.6, len(rows) - 0.4)
        role = "primary" if metric["role"] == "primary" else "guardrail"
        ax.set_title(f"{metric['name']} ({role})", fontsize=10)
        if metric["kind"] == "binomial":
            ax.yaxis.set_major_formatter(lambda y, _: f"{y:.1%}")
    fig.suptitle(
        f"Mean per arm with {1 - report['alpha']:.0%} interval", fontsize=10, x=0.01, ha="left"
    )
    return _png(fig)


def _dates(points: Sequence[Mapping[str, Any]]) -> list[dt.datetime]:
    return [dt.datetime.fromisoformat(p["end"]) for p in points]


def _date_axis(ax: Any) -> None:
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def plot_cumulative_lift(report: Mapping[str, Any]) -> str:
    """Cumulative relative lift of the primary metric with its interval over time."""
    points = report["timeline"]
    colors = _arm_colors(report)
    primary = report["metrics"][0]["name"]
    fig, (ax,) = _figure(10.0, 3.0)
    dates = _dates(points)
    treatments = [a for a in report["units"] if a != report["control"]]
    for arm in treatments:
        est, lo, hi = [], [], []
        for p in points:
            rel = p["primary"].get(arm, {}).get("rel", {})
            est.append(np.nan if rel.get("estimate") is None else rel["estimate"])
            lo.append(np.nan if rel.get("ci_low") is None else rel["ci_low"])
            hi.append(np.nan if rel.get("ci_high") is None else rel["ci_high"])
        color = colors[arm]
        ax.fill_between(dates, lo, hi, color=color, alpha=0.18, linewidth=0, step=None)
        ax.plot(
            dates,
            est,
            color=color,
            linewidth=1.8,
            marker="o",
            markersize=3,
            label=f"{arm} vs {report['control']}",
        )
    # Keep the view on the estimates: the first intervals can be enormous.
    finite = [v for line in ax.get_lines() for v in line.get_ydata() if np.isfinite(v)]
    ax.axhline(0.0, color="#111827", linewidth=0.9)
    mde = report["minimum_detectable_effect"]
    ax.axhline(mde, color="#9ca3af", linewidth=0.9, linestyle="--")
    ax.axhline(-mde, color="#9ca3af", linewidth=0.9, linestyle="--")
    ax.text(dates[0], mde, f" MDE ±{mde:.0%}", va="bottom", fontsize=8, color="#6b7280")
    if finite:
        span = max(max(abs(v) for v in finite), mde) * 2.5
        ax.set_ylim(max(ax.get_ylim()[0], -span), min(ax.get_ylim()[1], span))
    ax.yaxis.set_major_formatter(lambda y, _: f"{y:+.0%}")
    _date_axis(ax)
    interval = {
        "sequential": "anytime-valid confidence sequence",
        "bayesian": "credible interval",
    }.get(report["method"], "fixed-horizon CI, not valid for peeking")
    ax.set_title(
        f"Cumulative relative lift of {primary} ({1 - report['alpha']:.0%} {interval})",
        fontsize=10,
        loc="left",
    )
    if treatments:
        ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _png(fig)


def plot_exposure(report: Mapping[str, Any]) -> str:
    """Cumulative units per arm over time, with the planned size per arm."""
    points = report["timeline"]
    colors = _arm_colors(report)
    fig, (ax,) = _figure(10.0, 2.6)
    dates = _dates(points)
    for arm in report["units"]:
        control = arm == report["control"]  # drawn wider, so equal counts stay visible
        ax.plot(
            dates,
            [p["units"].get(arm, 0) for p in points],
            color=colors[arm],
            linewidth=4.0 if control else 1.8,
            alpha=0.55 if control else 1.0,
            label=arm,
        )
    planned = report["planned_n_per_arm"]
    title = "Exposed units per arm (cumulative)"
    most = max(report["units"].values(), default=0)
    if planned is not None and planned > 3 * most:  # a line that far up flattens the curves
        title += f"; planned {planned:,} per arm, {most / planned:.0%} reached"
    elif planned is not None:
        ax.axhline(planned, color="#9ca3af", linestyle="--", linewidth=0.9)
        ax.text(
            dates[0],
            planned,
            f" planned {planned:,} per arm",
            va="bottom",
            fontsize=8,
            color="#6b7280",
        )
        ax.set_ylim(0, max(ax.get_ylim()[1], planned * 1.12))
    ax.yaxis.set_major_formatter(lambda y, _: f"{y:,.0f}")
    _date_axis(ax)
    ax.set_title(title, fontsize=10, loc="left")
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _png(fig)


def _num(x: float | None, fmt: str = ".4g") -> str:
    return "–" if x is None else format(x, fmt)


def _interval(e: Mapping[str, Any], fmt: str) -> str:
    if e["estimate"] is None:
        return "–"
    text = format(e["estimate"], fmt)
    if e["ci_low"] is not None:
        text += (
            f'<br><span class="ci">[{format(e["ci_low"], fmt)}, {format(e["ci_high"], fmt)}]</span>'
        )
    return text


def _results_table(report: Mapping[str, Any]) -> str:
    method, alpha = report["method"], report["alpha"]
    roles = {m["name"]: m for m in report["metrics"]}
    bayes = method == "bayesian"
    head = [
        "metric",
        "arm",
        "n",
        "mean",
        "control mean",
        f"abs effect [{1 - alpha:.0%}]",
        f"rel effect [{1 - alpha:.0%}]",
    ]
    head += ["chance to win", "expected loss"] if bayes else ["p", "adjusted p"]
    head += ["CUPED var. red."]
    rows = []
    for r in report["results"]:
        m = roles[r["metric"]]
        tag = (
            '<span class="tag p">primary</span>'
            if m["role"] == "primary"
            else ('<span class="tag">guardrail</span>')
        )
        sign = significance(r, method, alpha)
        cls = ' class="good"' if sign > 0 else ' class="bad"' if sign < 0 else ""
        cells = [
            f'<td class="l">{html.escape(r["metric"])}{tag}</td>',
            f'<td class="l">{html.escape(r["arm"])}</td>',
            f"<td>{r['n']:,}</td>",
            f"<td>{_num(r['mean'])}</td>",
            f"<td>{_num(r['control_mean'])}</td>",
            f"<td{cls}>{_interval(r['abs'], '+.4g')}</td>",
            f"<td{cls}>{_interval(r['rel'], '+.1%')}</td>",
        ]
        if bayes:
            cells += [
                f"<td{cls}>{_num(r['chance_to_win'], '.1%')}</td>",
                f"<td>{_num(r['expected_loss'], '.2%')}</td>",
            ]
        else:
            cells += [
                f"<td>{_num(r['abs']['p_value'], '.3g')}</td>",
                f"<td{cls}>{_num(r['p_value_adjusted'], '.3g')}</td>",
            ]
        cells.append(f"<td>{_num(r['variance_reduction'], '.0%')}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    header = "".join(f"<th>{h}</th>" for h in head)
    return f"<table><tr>{header}</tr>{''.join(rows)}</table>"


def _segments_section(report: Mapping[str, Any]) -> str:
    """The primary effect per segment (``segments``), or nothing when the report has none."""
    if not report.get("segments"):
        return ""
    level = f"{1 - report['alpha']:.0%}"
    head = ["feature", "segment", "arm", "n", "control n", "mean", "control mean"]
    head += [f"abs effect [{level}]", f"rel effect [{level}]", "p"]
    rows = []
    for by_feature in report["segments"]:
        for r in by_feature["rows"]:
            low, high = r["abs"]["ci_low"], r["abs"]["ci_high"]
            good, bad = low is not None and low > 0, high is not None and high < 0
            cls = ' class="good"' if good else ' class="bad"' if bad else ""
            cells = [
                f'<td class="l">{html.escape(by_feature["feature"])}</td>',
                f'<td class="l">{html.escape(r["segment"])}</td>',
                f'<td class="l">{html.escape(r["arm"])}</td>',
                f"<td>{r['n']:,}</td>",
                f"<td>{r['control_n']:,}</td>",
                f"<td>{_num(r['mean'])}</td>",
                f"<td>{_num(r['control_mean'])}</td>",
                f"<td{cls}>{_interval(r['abs'], '+.4g')}</td>",
                f"<td{cls}>{_interval(r['rel'], '+.1%')}</td>",
                f"<td>{_num(r['abs']['p_value'], '.3g')}</td>",
            ]
            rows.append("<tr>" + "".join(cells) + "</tr>")
    header = "".join(f"<th>{h}</th>" for h in head)
    primary = html.escape(report["metrics"][0]["name"])
    return (
        f"<h2>{primary} by segment</h2><table><tr>{header}</tr>{''.join(rows)}</table>"
        '<p class="note">Fixed-horizon intervals per segment, without CUPED and not adjusted '
        "for the number of segments: where the effect lies, not a verdict. Numeric features "
        "are cut at quantiles of all units.</p>"
    )


def _srm_banner(report: Mapping[str, Any]) -> str:
    srm = report["srm"]
    shares = ", ".join(
        f"{html.escape(a)} {srm['observed'].get(a, 0):,} ({w:.0%} expected)"
        for a, w in srm["expected_share"].items()
    )
    if srm["flag"]:
        return (
            '<div class="banner bad">&#9888; Sample ratio mismatch (SRM p = '
            f"{srm['p_value']:.2g}): {shares}. Assignment or logging is broken; "
            "the results below cannot be trusted.</div>"
        )
    return (
        f'<div class="banner ok">&#10003; Traffic split as configured (SRM p = '
        f"{srm['p_value']:.2g}): {shares}.</div>"
    )


def _fact(value: str, label: str) -> str:
    return f'<div class="fact"><b>{value}</b><span>{html.escape(label)}</span></div>'


def render_html(report: Mapping[str, Any]) -> str:
    """One self-contained HTML page (inline CSS, plots as base64 PNG) of a report."""
    v = report["verdict"]
    decision_class = {SHIP: "ship", DONT_SHIP: "dont"}.get(v["decision"], "keep")
    decision = v["decision"] + (f": {v['arm']}" if v.get("arm") else "")
    if report["srm"]["flag"]:
        decision += " · investigate the traffic split"
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in v["reasons"])
    name = html.escape(report["experiment"])
    method = report["method"] + (" (anytime-valid)" if report["method"] == "sequential" else "")
    sub = " · ".join(
        x
        for x in [
            html.escape(report.get("description") or ""),
            f"method {method}",
            f"correction {report['correction']}",
            f"alpha {report['alpha']:g}",
            f"control <b>{html.escape(report['control'])}</b>",
            f"generated {report['generated_at'][:16].replace('T', ' ')} UTC",
        ]
        if x
    )
    planned = report["planned_n_per_arm"]
    facts = [
        _fact(f"{n:,}", f"units · {arm} ({report['arms'].get(arm, 0):.0%})")
        for arm, n in report["units"].items()
    ]
    facts.append(_fact(f"{planned:,}" if planned else "–", "planned units per arm"))
    facts.append(_fact(f"{report['holdout_units']:,}", "holdout units"))
    first, last = report["first_exposure"][:10], report["last_exposure"][:10]
    facts.append(_fact(f"{first} → {last}", "first → last exposure"))
    cuped = (
        f"CUPED covariate <b>{html.escape(report['cuped_covariate'])}</b> (pre-exposure, "
        "from the first decision's feature snapshot); "
        if report.get("cuped_covariate")
        else ""
    )
    note = (
        f"{cuped}p-values adjusted with {report['correction']} across arms × metrics; effects "
        "of CUPED metrics are adjusted, means are observed. Relative effects are divided by "
        f"the control mean. SRM is flagged at p &lt; {SRM_THRESHOLD}. Planned size: "
        f"{report['power']:.0%} power at a {report['minimum_detectable_effect']:.0%} relative "
        "MDE with the observed control as baseline."
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{name} · experiment report</title><style>{CSS}</style></head>
<body>
{_srm_banner(report)}
<main>
<h1>{name}</h1>
<p class="sub">{sub}</p>
<div class="verdict {decision_class}"><div class="decision">{html.escape(decision)}</div>
<ul>{reasons}</ul></div>
<div class="facts">{"".join(facts)}</div>
<h2>Means per arm</h2>
{_img(plot_arm_means(report), "mean per arm and metric with intervals")}
<h2>Cumulative lift</h2>
{_img(plot_cumulative_lift(report), "cumulative lift of the primary metric over time")}
{_img(plot_exposure(report), "exposed units per arm over time")}
<h2>All metrics</h2>
{_results_table(report)}
<p class="note">{note}</p>
{_segments_section(report)}
</main>
</body></html>
"""
