"""Prometheus metrics of one serving replica (`GET /metrics`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

STAGES = ("features", "scoring", "allocation", "log", "total")
_LATENCY_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.5)


class ServingMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "liftgate_requests", "HTTP requests", ["endpoint", "status"], registry=self.registry
        )
        self.stage_seconds = Histogram(
            "liftgate_stage_seconds",
            "Latency of each /v1/decide stage",
            ["stage"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.fallbacks = Counter(
            "liftgate_fallbacks",
            "Decisions answered by the rules fallback",
            ["reason"],
            registry=self.registry,
        )
        self.errors = Counter("liftgate_errors", "Errors by kind", ["kind"], registry=self.registry)
        self.repairs = Counter(
            "liftgate_contract_repairs",
            "Feature values repaired by the contract at request time",
            ["feature", "kind"],
            registry=self.registry,
        )
        self.model_info = Gauge(
            "liftgate_model_info",
            "Served model versions (1 = loaded)",
            ["name", "version", "alias"],
            registry=self.registry,
        )
        self.log_failures = Counter(
            "liftgate_log_failures",
            "Failed log writes (wal_write, wal_fsync, parquet, buffer_full, recovery)",
            ["log", "kind"],
            registry=self.registry,
        )
        self.log_buffered_rows = Gauge(
            "liftgate_log_buffered_rows",
            "Acknowledged log rows not yet in Parquet",
            ["log"],
            registry=self.registry,
        )
        self.actions = Counter(
            "liftgate_actions",
            "POST /v1/actions answers by status (queued, dry_run, refused) and refusing check",
            ["status", "check"],
            registry=self.registry,
        )
        self._stage = {stage: self.stage_seconds.labels(stage) for stage in STAGES}

    def observe(self, stage: str, seconds: float) -> None:
        self._stage[stage].observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
