"""Batching a table any way gives the statistics of one pass (experiments.stats.streaming)."""

from __future__ import annotations

from dataclasses import fields, is_dataclass

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.stats.aggregate import MetricSpec, aggregate
from experiments.stats.streaming import aggregate_batches, merge, unit_partitions

SPECS = [
    MetricSpec("cr", "converted", "binomial"),
    MetricSpec("rev", "revenue", "mean", covariate_column="pre"),
    MetricSpec("rpo", "revenue", "ratio", denominator_column="orders"),
]


def units(n: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    pre = rng.gamma(2.0, 10.0, n)
    return pa.table(
        {
            "arm": rng.choice(["a", "b", "c"], n),
            "converted": (rng.random(n) < 0.1).astype(np.int64),
            "revenue": pre * rng.random(n),
            "pre": pre,
            "orders": 1 + rng.poisson(1.0, n),
        }
    )


def numbers(statistic: object) -> list[float]:
    """Every number inside a (nested) statistic dataclass, in field order (None skipped)."""
    if statistic is None:
        return []
    if not is_dataclass(statistic):
        return [float(statistic)]  # type: ignore[arg-type]
    return [x for f in fields(statistic) for x in numbers(getattr(statistic, f.name))]


def assert_same(streamed: dict, one_pass: dict) -> None:
    assert streamed.keys() == one_pass.keys()
    for arm, per_metric in one_pass.items():
        assert streamed[arm].keys() == per_metric.keys()
        for name, statistic in per_metric.items():
            # Sums of non-negative values: the order of additions changes only rounding.
            assert numbers(streamed[arm][name]) == pytest.approx(numbers(statistic), rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 400),
    seed=st.integers(0, 2**16),
    cuts=st.lists(st.integers(0, 400), max_size=8),
)
def test_any_batching_gives_the_statistics_of_one_pass(n: int, seed: int, cuts: list[int]) -> None:
    table = units(n, seed)
    bounds = sorted({0, n, *(c % (n + 1) for c in cuts)})
    batches = [table.slice(lo, hi - lo) for lo, hi in zip(bounds, bounds[1:], strict=False)]
    assert_same(aggregate_batches(batches, "arm", SPECS), aggregate(table, "arm", SPECS))


def test_record_batches_and_empty_input() -> None:
    table = units(1_000, 1)
    streamed = aggregate_batches(table.to_batches(max_chunksize=97), "arm", SPECS)
    assert_same(streamed, aggregate(table, "arm", SPECS))
    assert aggregate_batches([], "arm", SPECS) == {}


def test_merge_keeps_arms_seen_in_one_partition_only() -> None:
    left = aggregate(pa.table({"arm": ["a"], "converted": [1]}), "arm", SPECS[:1])
    right = aggregate(pa.table({"arm": ["a", "b"], "converted": [0, 1]}), "arm", SPECS[:1])
    merged = merge(left, right)
    assert {arm: s["cr"].n for arm, s in merged.items()} == {"a": 2, "b": 1}
    assert merged["a"]["cr"].sum == 1.0


def test_a_bad_batch_is_refused_like_the_table() -> None:
    bad = pa.table({"arm": ["a"], "converted": [2]})
    with pytest.raises(ValueError, match="binomial column 'converted' must hold 0/1"):
        aggregate_batches([units(10, 0), bad], "arm", SPECS[:1])


def test_unit_partitions_put_each_unit_in_one_stable_partition() -> None:
    ids = pa.array([f"c{i % 50}" for i in range(1_000)])
    parts = unit_partitions(ids, 7).to_pylist()
    by_unit: dict[str, set[int]] = {}
    for unit, part in zip(ids.to_pylist(), parts, strict=True):
        by_unit.setdefault(unit, set()).add(part)
    assert all(len(p) == 1 for p in by_unit.values())
    assert set(parts) <= set(range(7)) and len(set(parts)) > 1
    # The same ids in another batch (or process) go to the same partitions.
    assert unit_partitions(pa.chunked_array([ids[:10]]), 7).to_pylist() == parts[:10]
    with pytest.raises(ValueError, match="partitions must be >= 1"):
        unit_partitions(ids, 0)


def test_partitioned_units_merge_to_the_statistics_of_all_units() -> None:
    rng = np.random.default_rng(2)
    rows = pa.table(
        {
            "customer_id": [f"c{i}" for i in rng.integers(0, 300, 2_000)],
            "revenue": rng.gamma(2.0, 5.0, 2_000),
        }
    )
    spec = [MetricSpec("rev", "revenue", "mean")]

    def per_unit(t: pa.Table) -> pa.Table:
        u = t.group_by("customer_id").aggregate([("revenue", "sum")])
        arms = pa.array(["b" if int(c[1:]) % 2 else "a" for c in u["customer_id"].to_pylist()])
        return pa.table({"arm": arms, "revenue": u["revenue_sum"]})

    part = unit_partitions(rows["customer_id"], 4)
    pieces = [rows.filter(pa.compute.equal(part, p)) for p in range(4)]
    streamed = aggregate_batches((per_unit(p) for p in pieces), "arm", spec)
    assert_same(streamed, aggregate(per_unit(rows), "arm", spec))
