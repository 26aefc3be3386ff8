"""The ship decision of an experiment report: ship, don't ship or keep running, and why.

(Not a *verdict*: that word belongs to the guard's HOLD / PROMOTE / ROLLBACK of a rollout.)

:func:`ship_decision` reads a report built by :func:`experiments.report.data.experiment_report`
and follows plain rules, in this order:

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

The report keeps the decision under the JSON key ``"ship_decision"`` (:data:`REPORT_KEY`;
``"verdict"`` before the vocabulary was made one).

>>> row = {"abs": {"estimate": 0.012}, "p_value_adjusted": 0.003, "chance_to_win": None}
>>> significance(row, "sequential", alpha=0.05), significance(row, "frequentist", alpha=0.001)
(1, 0)
>>> significance({"abs": {"estimate": None}, "chance_to_win": 0.01}, "bayesian", alpha=0.05)
-1
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from typing import Any, Literal, TypedDict

from experiments.stats.srm import SRM_THRESHOLD

#: Bayesian decision threshold on the chance to win (and 1 - it for a loss).
CHANCE_TO_WIN_THRESHOLD = 0.95
#: The key of the ship decision in the report (kept from before the rename, see module).
REPORT_KEY = "ship_decision"

SHIP, DONT_SHIP, KEEP_RUNNING = "ship", "don't ship", "keep running"
Decision = Literal["ship", "don't ship", "keep running"]


class ShipDecision(TypedDict):
    """What to do with an experiment; JSON-able, stored as ``report[REPORT_KEY]``."""

    decision: Decision
    #: The arm to ship (only with ``decision == "ship"``).
    arm: str | None
    #: Plain-language reasons, the most important first.
    reasons: list[str]


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


def ship_decision(report: Mapping[str, Any]) -> ShipDecision:
    """Ship, don't ship or keep running, with the reasons in plain language (see module).

    ``report`` needs the keys :func:`~experiments.report.data.experiment_report` fills
    before the decision: method, alpha, control, srm, metrics, results, units,
    planned_n_per_arm, first_exposure and last_exposure.
    """
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
    days = (last - first) / dt.timedelta(days=1)
    if days >= 1.0 / 24 and smallest > 0:
        remaining = math.ceil((planned - smallest) / (smallest / days))
        text += f" About {remaining} more day{'s' if remaining != 1 else ''} at the current rate."
    return text
