"""The stage histogram (serving/metrics.py): exported as `prometheus_client`'s Histogram
exports the same observations, so /metrics and its scrapers see no difference."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from serving.metrics import LATENCY_BUCKETS, STAGES, ServingMetrics

# Bucket bounds themselves (a bound counts in its own bucket), between them, past the last.
SECONDS = [0.0, 0.0001, 0.0002, 0.00020001, 0.0005, 0.003, 0.5, 0.7, 12.0]


def _samples(exposition: bytes, name: str) -> dict[tuple, float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(exposition.decode())
        for sample in family.samples
        if sample.name.startswith(name) and not sample.name.endswith("_created")
    }


def test_the_stage_histogram_exports_what_a_prometheus_histogram_would() -> None:
    metrics = ServingMetrics()
    registry = CollectorRegistry()
    reference = Histogram(
        "liftgate_stage_seconds",
        "Latency of each /v1/decide stage",
        ["stage"],
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    for i, seconds in enumerate(SECONDS * 3):
        stage = STAGES[i % len(STAGES)]
        metrics.observe(stage, seconds)
        reference.labels(stage).observe(seconds)
    mine = _samples(metrics.exposition(), "liftgate_stage_seconds")
    theirs = _samples(generate_latest(registry), "liftgate_stage_seconds")
    assert mine == theirs
    families = text_string_to_metric_families(metrics.exposition().decode())
    created = [s for f in families for s in f.samples if s.name.endswith("_created")]
    assert {s.labels["stage"] for s in created} == set(STAGES)


def test_every_stage_is_exported_before_its_first_observation() -> None:
    samples = _samples(ServingMetrics().exposition(), "liftgate_stage_seconds_count")
    assert samples == {("liftgate_stage_seconds_count", (("stage", s),)): 0.0 for s in STAGES}


def test_repairs_are_counted_by_feature_and_kind() -> None:
    metrics = ServingMetrics()
    metrics.repaired("recency_days", "missing", 2)
    metrics.repaired("recency_days", "missing", 1)
    metrics.repaired("device", "unknown_category", 1)
    samples = _samples(metrics.exposition(), "liftgate_contract_repairs_total")
    assert samples == {
        ("liftgate_contract_repairs_total", (("feature", "recency_days"), ("kind", "missing"))): 3,
        (
            "liftgate_contract_repairs_total",
            (("feature", "device"), ("kind", "unknown_category")),
        ): 1,
    }
