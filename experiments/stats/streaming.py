"""Per-arm statistics of data larger than memory: aggregate batch by batch, merge by ``+``.

:func:`~experiments.stats.aggregate.aggregate` reduces one table to a handful of sums per arm
and metric, and sums of disjoint partitions add up. :func:`aggregate_batches` therefore
reads any iterable of Arrow tables or record batches (a ``pyarrow.dataset`` scan, Ray blocks)
one at a time, keeping only the running statistics; :func:`merge` adds two partial results.
However a table is cut into batches, the statistics are those of one pass over it (the
sums differ only by floating-point rounding).

When the rows of one unit may be spread over batches (decision logs before they are joined
per customer), :func:`unit_partitions` routes every row to a partition by a stable hash of
its unit id, so that each unit lands in exactly one partition: build units per partition,
aggregate each, then merge.

>>> import pyarrow as pa
>>> from experiments.stats.aggregate import MetricSpec, aggregate
>>> t = pa.table({"arm": ["a", "b", "a", "b"], "converted": [1, 0, 0, 1]})
>>> spec = [MetricSpec("cr", "converted", "binomial")]
>>> aggregate_batches(t.to_batches(max_chunksize=1), "arm", spec) == aggregate(t, "arm", spec)
True
>>> unit_partitions(pa.array(["c1", "c2", "c1"]), 4).to_pylist()[0::2]  # c1 twice: one partition
[1, 1]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pyarrow as pa

from experiments.stats.aggregate import MetricSpec, aggregate
from experiments.stats.statistics import Statistic

#: Per arm (``str`` label), per metric name: what :func:`aggregate` returns.
ArmStatistics = dict[str, dict[str, Statistic]]


def merge(
    left: Mapping[str, Mapping[str, Statistic]], right: Mapping[str, Mapping[str, Statistic]]
) -> ArmStatistics:
    """The statistics of two disjoint partitions together; an arm in one only is kept as is.

    Both must hold the same metrics (as two partial results of one ``aggregate`` call do).
    """
    merged = {arm: dict(per_metric) for arm, per_metric in left.items()}
    for arm, per_metric in right.items():
        if arm not in merged:
            merged[arm] = dict(per_metric)
            continue
        mine = merged[arm]
        for name, statistic in per_metric.items():
            mine[name] = mine[name] + statistic  # type: ignore[operator]
    return dict(sorted(merged.items()))


def aggregate_batches(
    batches: Iterable[pa.Table | pa.RecordBatch], arm_col: str, metrics: list[MetricSpec]
) -> ArmStatistics:
    """:func:`aggregate` over batches read one at a time: memory holds one batch at most.

    Raises what ``aggregate`` raises on the first batch that cannot be aggregated.
    """
    total: ArmStatistics = {}
    for batch in batches:
        table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
        total = merge(total, aggregate(table, arm_col, metrics))
    return total


def unit_partitions(unit_ids: pa.Array | pa.ChunkedArray, partitions: int) -> pa.Array:
    """The partition (``0 <= p < partitions``, int64) of each unit id: the same id always
    goes to the same partition, in any batch, process or machine (a keyed SipHash of its
    text, not Python's per-process ``hash``)."""
    # pandas' hash_array has a fixed key, so it is stable across processes; imported here
    # because only the partitioned path needs it.
    from pandas.util import hash_array

    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions}")
    ids = unit_ids.cast(pa.string()).to_numpy(zero_copy_only=False)
    return pa.array((hash_array(ids) % np.uint64(partitions)).astype(np.int64))
