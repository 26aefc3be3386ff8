"""Per-arm sufficient statistics from an Arrow table, in one group-by.

Every test downstream needs only, per arm and metric, the number of units, the sum, the sum
of squares and, for a ratio denominator or a CUPED covariate, the sum of cross-products.
We derive the squared and product columns with ``pyarrow.compute`` and reduce them all in a
single ``Table.group_by(arm).aggregate(...)``: no Python loop over rows, and the result
is a handful of numbers per arm whatever the table size. Partial results of partitions
(days, files, Ray blocks) merge by ``+`` on the statistics.

Each row is one unit. A null metric value counts as 0 (a unit without an outcome did not
convert and spent nothing); rows whose arm is null are dropped. Arm labels become ``str``.
Values that are not finite (NaN, ±inf), and values so large that their sums overflow, are
refused with `NonFiniteValues` naming the metrics, rather than turned into statistics of
NaN or inf that no test can read.

>>> import pyarrow as pa
>>> t = pa.table({"arm": ["a", "a", "b", "b", "b"],
...               "converted": [0, 1, 1, 1, 0],
...               "revenue": [0.0, 10.0, 5.0, 7.0, 0.0]})
>>> s = aggregate(t, "arm", [MetricSpec("cr", "converted", "binomial"),
...                          MetricSpec("rev", "revenue", "mean")])
>>> s["b"]["cr"]
ProportionStatistic(n=3, sum=2.0)
>>> s["a"]["rev"]
SampleMeanStatistic(n=2, sum=10.0, sum_squares=100.0)
>>> poisoned = t.set_column(2, "revenue", pa.array([0.0, 1e308, 5.0, 7.0, float("nan")]))
>>> try:
...     aggregate(poisoned, "arm", [MetricSpec("rev", "revenue", "mean")])
... except NonFiniteValues as refused:
...     print(refused.problems)
{'rev': "column 'revenue' holds 1 value that is not finite (NaN or ±inf)"}
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc

from experiments.stats.statistics import (
    MomentStatistic,
    ProportionStatistic,
    RatioStatistic,
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
    Statistic,
)

MetricKind = Literal["binomial", "mean", "ratio"]
KINDS = ("binomial", "mean", "ratio")


class NonFiniteValues(ValueError):
    """Metrics whose values, or the sums of their values, are not finite; `problems` maps
    each such metric's name to what is wrong."""

    def __init__(self, problems: dict[str, str]):
        self.problems = problems
        super().__init__("; ".join(f"metric {name!r}: {what}" for name, what in problems.items()))


@dataclass(frozen=True)
class MetricSpec:
    """A metric: a ``column`` of the unit table and how to analyse it.

    ``kind`` is ``binomial`` (a 0/1 column, variance p(1 - p)), ``mean`` (any numeric
    column) or ``ratio`` (sum of ``column`` / sum of ``denominator_column``, delta method).
    ``covariate_column`` (a pre-exposure value of each unit) turns on CUPED; it is not
    supported for ratio metrics.
    """

    name: str
    column: str
    kind: MetricKind = "mean"
    denominator_column: str | None = None
    covariate_column: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(
                f"metric {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}"
            )
        if self.kind == "ratio" and not self.denominator_column:
            raise ValueError(f"metric {self.name!r}: kind 'ratio' needs a denominator_column")
        if self.kind != "ratio" and self.denominator_column:
            raise ValueError(
                f"metric {self.name!r}: denominator_column is only for kind 'ratio', "
                f"got kind {self.kind!r}"
            )
        if self.kind == "ratio" and self.covariate_column:
            raise ValueError(
                f"metric {self.name!r}: covariate_column (CUPED) is not supported for ratio metrics"
            )

    @property
    def columns(self) -> list[str]:
        cols = [self.column, self.denominator_column, self.covariate_column]
        return [c for c in cols if c]


def _is_numeric(t: pa.DataType) -> bool:
    return (
        pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_boolean(t)
        or pa.types.is_decimal(t)
    )


def validate(table: pa.Table, arm_col: str, metrics: list[MetricSpec]) -> None:
    """Raise ``ValueError`` naming the column when the table cannot be aggregated."""
    names = table.column_names
    if arm_col not in names:
        raise ValueError(f"arm column {arm_col!r} not in table (expected one of {names})")
    names_seen: set[str] = set()
    for m in metrics:
        if m.name in names_seen:
            raise ValueError(f"metric name {m.name!r} is used twice; names must be unique")
        names_seen.add(m.name)
        for col in m.columns:
            if col not in names:
                raise ValueError(
                    f"metric {m.name!r}: column {col!r} not in table (expected one of {names})"
                )
            typ = table.schema.field(col).type
            if not _is_numeric(typ):
                raise ValueError(
                    f"metric {m.name!r}: column {col!r} must be numeric "
                    f"(integer, float, boolean or decimal), got {typ}"
                )
        if m.kind == "binomial":
            lo, hi = pc.min_max(table[m.column]).values()
            lo, hi = lo.as_py(), hi.as_py()
            if lo is not None and (lo < 0 or hi > 1):
                raise ValueError(
                    f"metric {m.name!r}: binomial column {m.column!r} must hold 0/1 values, "
                    f"got values in [{lo}, {hi}]"
                )


def _non_finite_values(table: pa.Table, metric: MetricSpec) -> str | None:
    for col in metric.columns:
        if pa.types.is_floating(table.schema.field(col).type):
            bad = pc.sum(pc.invert(pc.is_finite(table[col]))).as_py() or 0
            if bad:
                values = "value that is" if bad == 1 else "values that are"
                return f"column {col!r} holds {bad} {values} not finite (NaN or ±inf)"
    return None


class _Columns:
    """Derived float64 columns, each computed once however many metrics use it."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table
        self.arrays: dict[str, pa.ChunkedArray] = {}
        self._base: dict[str, pa.ChunkedArray] = {}

    def base(self, col: str) -> pa.ChunkedArray:
        if col not in self._base:
            arr = self.table[col]
            if arr.type != pa.float64():
                arr = pc.cast(arr, pa.float64())
            if arr.null_count:
                arr = pc.fill_null(arr, 0.0)
            self._base[col] = arr
        return self._base[col]

    def value(self, col: str) -> str:
        key = f"{col}\x00"
        if key not in self.arrays:
            self.arrays[key] = self.base(col)
        return key

    def product(self, a: str, b: str) -> str:
        a, b = sorted((a, b))
        key = f"{a}\x00*\x00{b}"
        if key not in self.arrays:
            self.arrays[key] = pc.multiply(self.base(a), self.base(b))
        return key


def aggregate(
    table: pa.Table, arm_col: str, metrics: list[MetricSpec]
) -> dict[str, dict[str, Statistic]]:
    """Sufficient statistics per arm (``str`` label) and metric name, in one group-by."""
    validate(table, arm_col, metrics)
    if table[arm_col].null_count:
        table = table.filter(pc.is_valid(table[arm_col]))
    problems = {m.name: p for m in metrics if (p := _non_finite_values(table, m)) is not None}
    if problems:
        raise NonFiniteValues(problems)
    cols = _Columns(table)
    needed: dict[str, dict[str, str]] = {}
    for m in metrics:
        need = {"sum": cols.value(m.column)}
        if m.kind != "binomial":
            need["ss"] = cols.product(m.column, m.column)
        if m.denominator_column:
            d = m.denominator_column
            need["d_sum"] = cols.value(d)
            need["d_ss"] = cols.product(d, d)
            need["md"] = cols.product(m.column, d)
        if m.covariate_column:
            x = m.covariate_column
            need["x_sum"] = cols.value(x)
            need["x_ss"] = cols.product(x, x)
            need["yx"] = cols.product(m.column, x)
        needed[m.name] = need

    keys = list(cols.arrays)
    # Arrow column names: positional aliases keep user column names out of the way.
    alias = {k: f"c{i}" for i, k in enumerate(keys)}
    arm_key = "__arm__"
    work = pa.table({arm_key: table[arm_col], **{alias[k]: cols.arrays[k] for k in keys}})
    grouped = work.group_by(arm_key).aggregate(
        [([], "count_all")] + [(alias[k], "sum") for k in keys]
    )
    data = grouped.to_pydict()
    sums = {k: data[f"{alias[k]}_sum"] for k in keys}
    overflowed = {
        m.name: "the sums of its values overflow (values too large to analyse)"
        for m in metrics
        if not all(math.isfinite(x or 0.0) for k in needed[m.name].values() for x in sums[k])
    }
    if overflowed:
        raise NonFiniteValues(overflowed)

    out: dict[str, dict[str, Statistic]] = {}
    for i, arm in enumerate(data[arm_key]):
        n = int(data["count_all"][i])

        def s(key: str, i: int = i) -> float:
            return float(sums[key][i] or 0.0)

        per_metric: dict[str, Statistic] = {}
        for m in metrics:
            need = needed[m.name]
            y: MomentStatistic
            if m.kind == "binomial":
                y = ProportionStatistic(n=n, sum=s(need["sum"]))
            else:
                y = SampleMeanStatistic(n=n, sum=s(need["sum"]), sum_squares=s(need["ss"]))
            stat: Statistic = y
            if m.kind == "ratio":
                d = SampleMeanStatistic(n=n, sum=s(need["d_sum"]), sum_squares=s(need["d_ss"]))
                stat = RatioStatistic(m=y, d=d, m_d_sum_of_products=s(need["md"]), n=n)
            elif m.covariate_column:
                x = SampleMeanStatistic(n=n, sum=s(need["x_sum"]), sum_squares=s(need["x_ss"]))
                stat = RegressionAdjustedStatistic(
                    post=y, pre=x, post_pre_sum_of_products=s(need["yx"]), n=n
                )
            per_metric[m.name] = stat
        out[str(arm)] = per_metric
    return dict(sorted(out.items()))
