"""Issue 14's serving targets, checked on bench_decide.py's results: pure, made-up runs in,
verdicts out.

Absolute figures move by up to 2× between machines of one kind; the floor
(load_tests/floor/) measured in the same run on the same machine moves with them. So the
HTTP targets are ratios to the floor of the run's topology — ``floor`` for fused runs,
``floor-composed`` for composed ones — at the same clients and fsync policy. The core (a
decision in process, ``harness.core``) and memory keep absolute limits.

>>> runs = [
...     {"name": name, "topology": topology, "clients": clients, "fsync": "off", "rps": rps,
...      "p95_ms": p95, "errors": 0, "rss_mb": rss}
...     for name, topology, clients, rps, p95, rss in [
...         ("floor", "fused", 8, 2000.0, 6.0, 2000.0),
...         ("ray-fused", "fused", 8, 1950.0, 6.5, 2400.0),
...         ("floor-composed", "composed", 8, 500.0, 30.0, 2500.0),
...         ("ray-composed", "composed", 8, 400.0, 40.0, 2900.0),
...     ]
... ]
>>> add_ratios(runs)
>>> [(r["floor"], r["ratio_rps_vs_floor"], r["ratio_p95_vs_floor"]) for r in runs[1::2]]
[('floor', 0.975, 1.083), ('floor-composed', 0.8, 1.333)]
>>> for c in check_targets(runs):
...     print(verdict(c), c["target"], c["limit"], c["value"])
PASS ray-fused, 8 clients: req/s ÷ floor req/s >= 0.95 0.975
MISS ray-fused, 8 clients: p95 ÷ floor p95 <= 1.05 1.083
PASS ray-fused, 8 clients: errors == 0 0
MISS ray-composed, 8 clients: req/s ÷ floor-composed req/s >= 0.9 0.8
PASS ray-fused: whole-service RSS MB <= 3072.0 2400.0
PASS ray-composed: whole-service RSS MB <= 3072.0 2900.0
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: The floor each topology is measured against (the name of its run).
FLOOR_OF = {"fused": "floor", "composed": "floor-composed"}
FUSED_RPS_VS_FLOOR = 0.95  # at least, at 8 clients
FUSED_P95_VS_FLOOR = 1.05  # at most, at 1 and at 8 clients
COMPOSED_RPS_VS_FLOOR = 0.9  # at least, at 8 clients
RSS_LIMIT_MB = 3 * 1024.0  # the whole service: every process of its tree
#: (candidates, statistic, µs at most): a decision in process (issue 14, "Inside").
CORE_LIMITS_US = ((5, "mean_us", 100.0), (5, "p99_us", 250.0), (100, "mean_us", 400.0))


def add_ratios(runs: list[dict[str, Any]]) -> None:
    """Set each run's ``floor`` (the run it is compared with, None without one),
    ``ratio_rps_vs_floor``, ``ratio_p95_vs_floor`` and ``ratio_p95_vs_fastapi``."""
    by_key = {(r["name"], r["clients"], r["fsync"]): r for r in runs}
    for r in runs:
        floor = by_key.get((FLOOR_OF.get(r["topology"]), r["clients"], r["fsync"]))
        fastapi = by_key.get(("fastapi", r["clients"], r["fsync"]))
        r["floor"] = floor and floor["name"]
        r["ratio_rps_vs_floor"] = _ratio(r["rps"], floor and floor["rps"])
        r["ratio_p95_vs_floor"] = _ratio(r["p95_ms"], floor and floor["p95_ms"])
        r["ratio_p95_vs_fastapi"] = _ratio(r["p95_ms"], fastapi and fastapi["p95_ms"], 2)


def _ratio(value: float | None, base: float | None, digits: int = 3) -> float | None:
    return round(value / base, digits) if value is not None and base else None


def check_targets(
    runs: list[dict[str, Any]],
    core: list[dict[str, Any]] | None = None,
    growth: Sequence[dict[str, Any]] = (),
) -> list[dict[str, Any]]:
    """One check per target: ``{"target", "value", "limit", "pass"}``, `pass` None when
    there is nothing to compare with (a run without its floor). `runs` carry
    :func:`add_ratios`' fields; `core` is harness.core's rows (None: not measured; a row
    missing for a number of candidates is a MISS); `growth` the growth table's runs."""
    checks: list[dict[str, Any]] = []

    def check(target: str, value: Any, limit: float, ok: bool | None) -> None:
        checks.append({"target": target, "value": value, "limit": limit, "pass": ok})

    def at_least(target: str, value: float | None, limit: float) -> None:
        check(f"{target} >=", value, limit, None if value is None else value >= limit)

    def at_most(target: str, value: float | None, limit: float) -> None:
        check(f"{target} <=", value, limit, None if value is None else value <= limit)

    def run(name: str, clients: int) -> dict[str, Any] | None:
        return next((r for r in runs if r["name"] == name and r["clients"] == clients), None)

    if f8 := run("ray-fused", 8):
        at_least("ray-fused, 8 clients: req/s ÷ floor req/s", f8["ratio_rps_vs_floor"],
                 FUSED_RPS_VS_FLOOR)  # fmt: skip
        at_most("ray-fused, 8 clients: p95 ÷ floor p95", f8["ratio_p95_vs_floor"],
                FUSED_P95_VS_FLOOR)  # fmt: skip
        check("ray-fused, 8 clients: errors ==", f8["errors"], 0, f8["errors"] == 0)
    if f1 := run("ray-fused", 1):
        at_most("ray-fused, 1 client: p95 ÷ floor p95", f1["ratio_p95_vs_floor"],
                FUSED_P95_VS_FLOOR)  # fmt: skip
    if c8 := run("ray-composed", 8):
        at_least("ray-composed, 8 clients: req/s ÷ floor-composed req/s",
                 c8["ratio_rps_vs_floor"], COMPOSED_RPS_VS_FLOOR)  # fmt: skip
    for name in ("ray-fused", "ray-composed"):
        if peaks := [r["rss_mb"] for r in runs if r["name"] == name]:
            at_most(f"{name}: whole-service RSS MB", max(peaks), RSS_LIMIT_MB)
    if growth:
        at_most("growth: whole-service RSS MB", max(r["rss_mb"] for r in growth), RSS_LIMIT_MB)
    if core is not None:
        for n, statistic, limit in CORE_LIMITS_US:
            row = next((r for r in core if r["candidates"] == n), None)
            value = row and row[statistic]
            target = f"core, {n} candidates: {statistic.removesuffix('_us')} µs <="
            check(target, value, limit, value is not None and value <= limit)
    return checks


def verdict(check: dict[str, Any]) -> str:
    """PASS, MISS, or n/a (nothing to compare with)."""
    return {True: "PASS", False: "MISS", None: "n/a"}[check["pass"]]
