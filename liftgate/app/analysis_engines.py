"""Per-arm statistics of a table larger than memory: the `local` and `ray` analysis engines.

`liftgate analyze --engine ...` chooses how a table of units becomes per-arm statistics:

- ``memory`` (the default): the whole table is read, then aggregated in one group-by;
- ``local``: a ``pyarrow.dataset`` scan, :data:`BATCH_ROWS` rows at a time, on this
  process — memory holds a few batches and the running statistics;
- ``ray``: Ray Data reads the Parquet files in blocks; every block becomes a
  :class:`BatchSummary` in a Ray task (pickled), and the driver adds them up.

Each batch is summarised alone (:func:`summarize`): its statistics, its rows and its missing
metric cells, or the reason it cannot be aggregated. Summaries add up by ``+``, so the
statistics equal the memory engine's up to floating-point rounding, and an error names
the same file and column whichever engine found it.

>>> import pyarrow as pa
>>> from experiments.stats.aggregate import MetricSpec
>>> t = pa.table({"arm": ["a", "b", "a"], "revenue": [1.0, None, 3.0]})
>>> specs = [MetricSpec("revenue", "revenue", "mean")]
>>> parts = [summarize(b, "arm", specs, {"revenue": "--metric"}) for b in t.to_batches(2)]
>>> total = sum(parts, BatchSummary())
>>> total.rows, total.missing
(3, {'revenue': 1})
>>> finish(total, "units.csv", {"revenue": "--metric 'revenue'"}, fill=None)
Traceback (most recent call last):
...
liftgate.core.errors.InputError: units.csv: missing cells (blank, n/a, null or NaN) in \
column 'revenue' (from --metric 'revenue'): 1 of 3; clean the file, or fill them \
explicitly with --fill-missing VALUE (or --fill-missing zero)
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from experiments.stats.aggregate import MetricSpec, aggregate
from experiments.stats.streaming import ArmStatistics, merge
from liftgate.core.errors import InputError
from liftgate.core.home import Home
from liftgate.core.tables import fill_missing, missing_cells, missing_cells_error

#: Rows per batch of the local engine. Peak memory grows with it (a batch, its derived
#: float64 columns and the scan's read-ahead: ~0.7 GB at 256 Ki rows, ~1.7 GB at 1 Mi rows
#: for four columns) while throughput does not (load_tests/bench_analysis.py).
BATCH_ROWS = 1 << 18
#: The Ray engine's column of pickled summaries, one row per block.
SUMMARY = "summary"


@dataclass(frozen=True)
class BatchSummary:
    """What one batch contributes: its per-arm statistics, its rows, its missing cells per
    metric column, and the first reason found that a batch cannot be aggregated."""

    statistics: ArmStatistics = field(default_factory=dict)
    rows: int = 0
    missing: dict[str, int] = field(default_factory=dict)
    problem: str | None = None

    def __add__(self, other: BatchSummary) -> BatchSummary:
        missing = dict(self.missing)
        for column, n in other.missing.items():
            missing[column] = missing.get(column, 0) + n
        return BatchSummary(
            merge(self.statistics, other.statistics),
            self.rows + other.rows,
            missing,
            self.problem or other.problem,
        )


def summarize(
    batch: pa.Table | pa.RecordBatch,
    arm_col: str,
    metrics: list[MetricSpec],
    metric_columns: Mapping[str, str],
    fill: float | None = None,
) -> BatchSummary:
    """One batch's summary; `metric_columns` (column -> the option that named it) are the
    ones whose missing cells are counted, and filled with `fill` when it is given."""
    table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
    missing = missing_cells(table, metric_columns)
    if missing and fill is None:
        # Reported once all batches are counted, with the file's totals.
        return BatchSummary(rows=table.num_rows, missing=missing)
    if missing:
        table, _ = fill_missing(table, Path(), metric_columns, fill)
    try:
        statistics = aggregate(table, arm_col, metrics)
    except ValueError as exc:
        return BatchSummary(rows=table.num_rows, missing=missing, problem=str(exc))
    return BatchSummary(statistics, table.num_rows, missing)


def finish(
    summary: BatchSummary, source: Path | str, metric_columns: Mapping[str, str], fill: float | None
) -> ArmStatistics:
    """The statistics of a whole table from its summary, or the InputError naming `source`
    that the memory engine would raise."""
    if summary.missing and fill is None:
        raise missing_cells_error(Path(source), metric_columns, summary.missing, summary.rows)
    if summary.problem is not None:
        raise InputError(f"{source}: {summary.problem}")
    return summary.statistics


def summarize_batches(
    batches: Iterable[pa.Table | pa.RecordBatch],
    arm_col: str,
    metrics: list[MetricSpec],
    metric_columns: Mapping[str, str],
    fill: float | None = None,
) -> BatchSummary:
    """The `local` engine: batches summarised one after the other; stops at a problem."""
    total = BatchSummary()
    for batch in batches:
        total = total + summarize(batch, arm_col, metrics, metric_columns, fill)
        if total.problem is not None:
            break
    return total


def _summarize_block(
    block: pa.Table,
    arm_col: str,
    metrics: list[MetricSpec],
    metric_columns: Mapping[str, str],
    fill: float | None,
) -> pa.Table:
    summary = summarize(block, arm_col, metrics, metric_columns, fill)
    return pa.table({SUMMARY: pa.array([pickle.dumps(summary)], pa.binary())})


def summarize_with_ray(
    files: Sequence[str],
    columns: Sequence[str],
    arm_col: str,
    metrics: list[MetricSpec],
    metric_columns: Mapping[str, str],
    fill: float | None,
    home: Home,
    num_cpus: int = 2,
) -> BatchSummary:
    """The `ray` engine: Ray Data reads the Parquet `files`, a Ray task summarises each
    block (a whole block per call, so one pickle per block), the driver adds them up."""
    from liftgate.app.local_ray import local_ray

    with local_ray(home, num_cpus=num_cpus):
        import ray.data

        summaries = ray.data.read_parquet(list(files), columns=list(columns)).map_batches(
            _summarize_block,
            fn_kwargs={
                "arm_col": arm_col,
                "metrics": metrics,
                "metric_columns": dict(metric_columns),
                "fill": fill,
            },
            batch_format="pyarrow",
            batch_size=None,
        )
        total = BatchSummary()
        for batch in summaries.iter_batches(batch_format="pyarrow", batch_size=None):
            for blob in batch[SUMMARY].to_pylist():
                total = total + pickle.loads(blob)
        return total
