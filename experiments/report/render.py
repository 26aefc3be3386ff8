"""The experiment report as one self-contained HTML page, rendered with Jinja2.

:func:`render_html` fills ``templates/report.html.j2`` (its pieces in
``templates/macros.html.j2``) with a report of
:func:`experiments.report.data.experiment_report` (or its JSON), inlines
``templates/report.css`` and embeds the plots of :mod:`experiments.report.plots` as base64
PNG: no file is read at view time and nothing is fetched. The environment autoescapes every
value, so names from configurations and logs (experiments, arms, metrics, segments) cannot
inject markup. Pure: no file is written here.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib.resources import files
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from experiments.report.plots import plot_arm_means, plot_cumulative_lift, plot_exposure
from experiments.report.ship_decision import DONT_SHIP, REPORT_KEY, SHIP, significance
from experiments.stats.srm import SRM_THRESHOLD

TEMPLATE = "report.html.j2"
STYLESHEET = "report.css"


def _fmt(x: Any, spec: str) -> str:
    """``format(x, spec)`` as a filter: ``{{ n | fmt(",") }}``."""
    return format(x, spec)


def _num(x: float | None, spec: str = ".4g") -> str:
    """A number, or an en dash when there is none."""
    return "–" if x is None else format(x, spec)


def interval_sign(e: Mapping[str, Any]) -> int:
    """+1 when an interval lies above zero, -1 below, 0 when it covers zero or is missing.

    >>> interval_sign({"ci_low": 0.1, "ci_high": 0.3}), interval_sign({"ci_low": None})
    (1, 0)
    """
    low, high = e.get("ci_low"), e.get("ci_high")
    return 1 if low is not None and low > 0 else -1 if high is not None and high < 0 else 0


@functools.cache
def environment() -> Environment:
    """The Jinja2 environment of the report templates (autoescaped, strict)."""
    env = Environment(
        loader=PackageLoader("experiments.report", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["fmt"] = _fmt
    env.filters["num"] = _num
    env.globals["significance"] = significance
    env.globals["interval_sign"] = interval_sign
    return env


@functools.cache
def stylesheet() -> Markup:
    """The page's CSS (``templates/report.css``), trusted markup for its <style> element."""
    path = files("experiments.report").joinpath("templates", STYLESHEET)
    return Markup(path.read_text(encoding="utf-8"))


def render_html(report: Mapping[str, Any]) -> str:
    """One self-contained HTML page (inline CSS, plots as base64 PNG) of a report."""
    decision = report[REPORT_KEY]["decision"]
    template = environment().get_template(TEMPLATE)
    return template.render(
        report=report,
        decision_key=REPORT_KEY,
        decision_class={SHIP: "ship", DONT_SHIP: "dont"}.get(decision, "keep"),
        roles={m["name"]: m["role"] for m in report["metrics"]},
        srm_threshold=SRM_THRESHOLD,
        css=stylesheet(),
        images={
            "arm_means": plot_arm_means(report),
            "cumulative_lift": plot_cumulative_lift(report),
            "exposure": plot_exposure(report),
        },
    )
