"""The experiment report's plots: matplotlib figures of a report, as base64 PNG.

Each ``plot_*`` function takes the report of
:func:`experiments.report.data.experiment_report` (or its JSON) and returns the PNG as
base64 text, ready for a ``data:`` URL. matplotlib is imported on the first plot, without
pyplot (no global state, no display needed).
"""

from __future__ import annotations

import base64
import datetime as dt
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

CONTROL_COLOR = "#6b7280"
ARM_COLORS = ["#2563eb", "#ea580c", "#059669", "#9333ea", "#dc2626", "#0891b2"]


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
