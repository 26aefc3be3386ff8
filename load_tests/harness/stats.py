"""Percentiles of per-request latencies, the spread of repeated measurements, and the time
of one in-process call."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable

import numpy as np

#: Rounds of an in-process timing: the median of them is the figure.
ROUNDS = 7


def latency_summary(latencies_ns: list[int], wall_s: float) -> dict[str, float | None]:
    """p50/p95/p99 (``numpy.percentile``, linear), max and mean in ms and requests per second
    of one measured run; the percentiles are NaN and max and mean None without requests."""
    ms = np.asarray(latencies_ns, dtype=np.float64) / 1e6
    p50, p95, p99 = np.percentile(ms, [50, 95, 99]) if ms.size else (np.nan,) * 3
    return {
        "p50_ms": round(float(p50), 3),
        "p95_ms": round(float(p95), 3),
        "p99_ms": round(float(p99), 3),
        "max_ms": round(float(ms.max()), 3) if ms.size else None,
        "mean_ms": round(float(ms.mean()), 3) if ms.size else None,
        "rps": round(ms.size / wall_s, 1) if wall_s else 0.0,
    }


def spread(values: Iterable[float | None]) -> dict[str, float | None]:
    """Median and maximum of repeated measurements (None values are left out)."""
    present = [v for v in values if v is not None]
    if not present:
        return {"median": None, "max": None}
    return {"median": round(statistics.median(present), 4), "max": round(max(present), 4)}


def per_call_us(function: Callable[[], object], calls: int, rounds: int = ROUNDS) -> float:
    """Median over `rounds` of the µs per call of `function()` run `calls` times."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            function()
        times.append((time.perf_counter() - started) / calls * 1e6)
    return statistics.median(times)
