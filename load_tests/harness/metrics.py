"""The service's ``liftgate_stage_seconds`` histogram, scraped from each replica's /metrics
before and after a measured run: the mean time per stage of the measured requests."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from harness.probes import get
from harness.tables import say

STAGES = ("features", "scoring", "allocation", "log", "total")
HISTOGRAM = "liftgate_stage_seconds"


def scrape_stages(ports: list[int], headers: dict[str, str]) -> dict[str, dict[str, float]]:
    """Sum over replicas of each stage's histogram sum and count; `headers` carry an admin
    API key (harness.homes.api_key_headers)."""
    totals: dict[str, dict[str, float]] = {s: {"sum": 0.0, "count": 0.0} for s in STAGES}
    for port in ports:
        status, body = get(port, "/metrics", timeout_s=5.0, headers=headers)
        if status != 200:
            say(f"  (could not scrape :{port}/metrics: {status or 'no answer'})")
            continue
        for family in text_string_to_metric_families(body.decode()):
            if family.name != HISTOGRAM:
                continue
            for sample in family.samples:
                kind = sample.name.removeprefix(f"{HISTOGRAM}_")
                stage = sample.labels.get("stage")
                if kind in ("sum", "count") and stage in totals:
                    totals[stage][kind] += sample.value
    return totals


def stage_means(before: dict, after: dict) -> dict[str, float | None]:
    """Mean ms per stage between two scrapes (None for a stage no request went through)."""
    means: dict[str, float | None] = {}
    for stage in STAGES:
        count = after[stage]["count"] - before[stage]["count"]
        total = after[stage]["sum"] - before[stage]["sum"]
        means[stage] = round(total / count * 1000, 3) if count > 0 else None
    return means
