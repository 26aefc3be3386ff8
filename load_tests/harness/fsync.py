"""The logs' fsync policy as a benchmark variable: a copy of the configuration with
``serving.decision_log.fsync`` set, and the cost of each policy beside ``off``.

A server started with ``LIFTGATE_CONFIG_DIR`` set to :func:`config_with_fsync`'s directory
logs with that policy (harness.config_copy); :func:`cost_rows` lines the runs of one server
and client count up against the same run with ``off`` (experiments/logs/group_commit.py).

>>> runs = [{"name": "ray-fused", "clients": 8, "fsync": f, "p50_ms": p50, "p95_ms": p95,
...          "rps": rps, "stages_ms": {"log": log}}
...         for f, p50, p95, rps, log in [("off", 9.0, 20.0, 700.0, 0.05),
...                                       ("group", 10.0, 22.0, 650.0, 1.2)]]
>>> cost_rows(runs)[1]
('ray-fused', '8', 'group', '10.00', '22.00', '650', '1.200', '+10%', '-7%')
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.config_copy import config_copy
from harness.tables import fmt

COST_HEADER = ("name", "clients", "fsync", "p50 ms", "p95 ms", "req/s", "log stage ms",
               "p95 vs off", "req/s vs off")  # fmt: skip


def config_with_fsync(work: Path, source: Path, policy: str) -> Path:
    """A copy of the configuration directory `source` in `work` whose logs fsync by `policy`."""
    return config_copy(work, source, f"fsync-{policy}", {"decision_log": {"fsync": policy}})


def cost_rows(runs: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """One row per run, beside the run of the same server and clients with fsync ``off``."""
    off = {(r["name"], r["clients"]): r for r in runs if r["fsync"] == "off"}

    def change(value: float, base: float | None) -> str:
        return "-" if not base else f"{(value / base - 1) * 100:+.0f}%"

    rows = []
    for r in runs:
        base = off.get((r["name"], r["clients"]))
        rows.append((
            r["name"], str(r["clients"]), r["fsync"], fmt(r["p50_ms"]), fmt(r["p95_ms"]),
            fmt(r["rps"], 0), fmt(r["stages_ms"].get("log"), 3),
            change(r["p95_ms"], base and base["p95_ms"]), change(r["rps"], base and base["rps"]),
        ))  # fmt: skip
    return rows
