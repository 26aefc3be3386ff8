"""Compare a current table with a reference table, column by column, in chunks of rows.

The current table is cut into consecutive chunks of ``chunk_size`` rows (the last one may
be shorter; without a size the whole table is one chunk), and each chunk is compared with
the whole reference. Each column gets the drift test Evidently's ``DataDriftPreset``
would choose for it (we call the same per-column methods, without building its plots):

- reference of at most 1 000 rows: the two-sample Kolmogorov-Smirnov test for a numerical
  column, chi-square for a categorical one (a two-proportion Z-test when it has two
  values); drift when p < 0.05 (K-S: p <= 0.05);
- larger reference: the Wasserstein distance divided by the reference's standard
  deviation for a numerical column, the Jensen-Shannon distance of the value frequencies
  for a categorical one (or a numerical one with at most five values); drift when the
  distance is >= 0.1. Distances, unlike p-values, do not become significant for any
  difference once there are enough rows.

``ColumnDrift.p_value`` is set for the tests and ``statistic`` (the distance) for the
distances. A chunk drifts as a whole (``dataset_drift``) when the share of drifted columns
is at least ``threshold``, 0.5 by default as in ``DataDriftPreset(drift_share=0.5)``.

Large inputs are sampled without replacement with a fixed seed: the reference to at most
``max_reference_rows`` rows (the same sample for every chunk) and each chunk to at most
``max_chunk_rows``, so that 1 M current rows take seconds (``load_tests/bench_drift.py``).
With ``html_dir`` an Evidently report (``Report([DataDriftPreset(...)]).save_html``) is
written per chunk on the same samples.

>>> rng = np.random.default_rng(0)
>>> reference = pd.DataFrame({"x": rng.normal(size=800), "plan": rng.choice(["a", "b"], 800)})
>>> current = pd.DataFrame(
...     {"x": rng.normal(1.0, size=500), "plan": rng.choice(["a", "b"], 500)}
... )
>>> result = compare_tables(reference, current, chunk_size=200)
>>> [(c.index, c.start, c.end, c.dataset_drift) for c in result.chunks]
[(0, 0, 200, True), (1, 200, 400, True), (2, 400, 500, True)]
>>> x = result.chunks[0].columns["x"]
>>> x.method, x.drifted, x.p_value < 0.05, x.statistic
('ks', True, True, None)
>>> result.chunks[0].columns["plan"].method
'z'

References: Evidently AI, "Data drift algorithm" (the default choice of test,
docs-old.evidentlyai.com/reference/data-drift-algorithm) and "Customize data drift"
(docs.evidentlyai.com/metrics/customize_data_drift); Rabanser, Günnemann and Lipton (2019),
"Failing Loudly: An Empirical Study of Methods for Detecting Dataset Shift", NeurIPS —
univariate two-sample tests per feature, aggregated over features.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from drift.columns import CATEGORICAL, NUMERICAL, ColumnTypes, infer_column_types
from liftgate.core.errors import InputError

#: A chunk drifts when at least this share of its columns drift (Evidently's default).
DEFAULT_THRESHOLD = 0.5
#: The reference is sampled to this many rows (one sample, reused for every chunk).
MAX_REFERENCE_ROWS = 50_000
#: Each chunk of the current table is sampled to this many rows.
MAX_CHUNK_ROWS = 100_000
DEFAULT_SEED = 0


def _finite(value: float | None) -> float | None:
    """JSON has no NaN: a score that is not a finite number becomes null."""
    return value if value is not None and np.isfinite(value) else None


@dataclass(frozen=True)
class ColumnDrift:
    """One column's verdict. ``method`` is Evidently's name of the test (``ks``,
    ``chisquare``, ``z``, ``wasserstein``, ``jensenshannon``; ``empty`` when the current
    data has no value of the column); ``p_value`` is set for a test, ``statistic`` for a
    distance; ``threshold`` is what the p-value or distance was compared with."""

    drifted: bool
    statistic: float | None
    p_value: float | None
    method: str
    threshold: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "drifted": self.drifted,
            "statistic": _finite(self.statistic),
            "p_value": _finite(self.p_value),
            "method": self.method,
            "threshold": self.threshold,
        }


@dataclass(frozen=True)
class ChunkResult:
    """Rows ``start:end`` of the current table (``rows`` of them tested after sampling)."""

    index: int
    start: int
    end: int
    dataset_drift: bool
    drift_share: float
    columns: dict[str, ColumnDrift]
    rows: int = 0
    html: str | None = None

    @property
    def drifted_columns(self) -> list[str]:
        return [name for name, column in self.columns.items() if column.drifted]

    def to_dict(self) -> dict[str, Any]:
        document = {
            "index": self.index,
            "start": self.start,
            "end": self.end,
            "dataset_drift": self.dataset_drift,
            "drift_share": self.drift_share,
            "columns": {name: column.to_dict() for name, column in self.columns.items()},
            "rows_tested": self.rows,
        }
        if self.html is not None:
            document["html"] = self.html
        return document


@dataclass(frozen=True)
class Comparison:
    chunks: list[ChunkResult]
    column_types: ColumnTypes
    reference_rows: int
    reference_rows_tested: int
    current_rows: int
    threshold: float
    seed: int
    max_chunk_rows: int = MAX_CHUNK_ROWS

    @property
    def sampled(self) -> bool:
        return self.reference_rows_tested < self.reference_rows or any(
            c.rows < c.end - c.start for c in self.chunks
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "chunks": [chunk.to_dict() for chunk in self.chunks],
            "reference_rows": self.reference_rows,
            "reference_rows_tested": self.reference_rows_tested,
            "current_rows": self.current_rows,
            "sampled": self.sampled,
            "seed": self.seed,
            "threshold": self.threshold,
            "column_types": self.column_types.types,
            "skipped_columns": self.column_types.skipped,
        }


# --- pure helpers ----------------------------------------------------------------------------


def chunk_bounds(n_rows: int, chunk_size: int | None = None) -> list[tuple[int, int]]:
    """``(start, end)`` of consecutive chunks; the last one holds the remainder.

    >>> chunk_bounds(10, 4)
    [(0, 4), (4, 8), (8, 10)]
    >>> chunk_bounds(10)
    [(0, 10)]
    """
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk size must be at least 1; got {chunk_size}")
    if n_rows <= 0:
        return []
    size = n_rows if chunk_size is None else chunk_size
    return [(start, min(start + size, n_rows)) for start in range(0, n_rows, size)]


def sample_positions(n_rows: int, max_rows: int | None, seed: int | Sequence[int]) -> np.ndarray:
    """Sorted row positions: all rows, or ``max_rows`` of them drawn without replacement."""
    if max_rows is None or n_rows <= max_rows:
        return np.arange(n_rows)
    if max_rows < 1:
        raise ValueError(f"the sample size must be at least 1; got {max_rows}")
    return np.sort(np.random.default_rng(seed).choice(n_rows, size=max_rows, replace=False))


def drift_share(columns: dict[str, ColumnDrift]) -> float:
    return sum(c.drifted for c in columns.values()) / len(columns) if columns else 0.0


def check_threshold(threshold: float) -> float:
    if not 0 < threshold <= 1:
        raise InputError(f"expected a share in (0, 1]; got {threshold}", parameter="threshold")
    return float(threshold)


# --- Evidently -------------------------------------------------------------------------------


def _clean(values: pd.Series) -> pd.Series:
    """What Evidently tests: the values without NaN and infinities."""
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        return values.replace([-np.inf, np.inf], np.nan).dropna()
    return values.dropna()


def column_drift(
    reference: pd.Series,
    current: pd.Series,
    kind: str,
    name: str | None = None,
    reference_clean: bool = False,
) -> ColumnDrift:
    """Evidently's default drift test for one column (chosen as ``DataDriftPreset`` does).

    ``reference_clean`` says NaN and infinities are already dropped from ``reference`` (the
    comparison cleans its reference sample once, not once per chunk). Raises ValueError
    naming the column when the reference has no values of it.
    """
    from evidently.legacy.calculations.stattests.registry import get_stattest
    from evidently.legacy.core import ColumnType

    name = name or str(reference.name)
    if kind not in (NUMERICAL, CATEGORICAL):
        raise ValueError(f"column {name!r}: unknown type {kind!r}")
    if kind == NUMERICAL:  # a boolean declared numerical is tested as 0/1
        if pd.api.types.is_bool_dtype(reference.dtype):
            reference = reference.astype(np.float64)
        if pd.api.types.is_bool_dtype(current.dtype):
            current = current.astype(np.float64)
    if not reference_clean:
        reference = _clean(reference)
    current = _clean(current)
    if reference.empty:
        raise ValueError(f"column {name!r} has no values in the reference")
    if current.empty:
        return ColumnDrift(drifted=True, statistic=None, p_value=None, method="empty")
    if kind == NUMERICAL and not pd.api.types.is_numeric_dtype(current.dtype):
        raise ValueError(f"current: column {name!r} is not numerical, as in the reference")
    column_type = ColumnType.Numerical if kind == NUMERICAL else ColumnType.Categorical
    test = get_stattest(reference, current, column_type, None)
    result = test(reference, current, column_type, None)
    score = float(result.drift_score)
    is_p_value = "p_value" in test.display_name  # "K-S p_value", "chi-square p_value", ...
    return ColumnDrift(
        drifted=bool(result.drifted),
        statistic=None if is_p_value else score,
        p_value=score if is_p_value else None,
        method=test.name,
        threshold=float(result.actual_threshold),
    )


def compare_chunk(
    reference: pd.DataFrame | dict[str, pd.Series],
    current: pd.DataFrame,
    types: dict[str, str],
    threshold: float,
    reference_clean: bool = False,
) -> tuple[bool, float, dict[str, ColumnDrift]]:
    """``(dataset_drift, drift_share, columns)`` of one chunk against the reference."""
    columns = {
        name: column_drift(reference[name], current[name], kind, name, reference_clean)
        for name, kind in types.items()
    }
    share = drift_share(columns)
    return share >= threshold, share, columns


def save_html_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    types: dict[str, str],
    threshold: float,
    path: Path,
    extra_columns: dict[str, str] | None = None,
) -> Path:
    """Evidently's data-drift report of ``types``' columns as one HTML file (plots included).

    ``extra_columns`` (column → type) get a per-column drift section but do not count in the
    report's share of drifted columns (the job adds the model's prediction this way).
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    everything = {**types, **(extra_columns or {})}
    definition = DataDefinition(
        numerical_columns=[c for c, k in everything.items() if k == NUMERICAL],
        categorical_columns=[c for c, k in everything.items() if k == CATEGORICAL],
    )
    names = list(everything)
    metrics = [DataDriftPreset(columns=list(types), drift_share=threshold)]
    metrics += [ValueDrift(column=c) for c in extra_columns or {}]
    snapshot = Report(metrics).run(
        current_data=Dataset.from_pandas(current[names].reset_index(drop=True), definition),
        reference_data=Dataset.from_pandas(reference[names].reset_index(drop=True), definition),
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(path))
    return path


# --- the comparison --------------------------------------------------------------------------


def _frame(table: Any, what: str) -> pd.DataFrame:
    if isinstance(table, pd.DataFrame):
        return table
    if hasattr(table, "to_pandas"):  # a pyarrow Table
        return table.to_pandas()
    raise TypeError(f"{what}: expected a pandas DataFrame or a pyarrow Table")


def is_text(values: pd.Series) -> bool:
    dtype = values.dtype
    return isinstance(dtype, pd.CategoricalDtype) or (
        not pd.api.types.is_bool_dtype(dtype)
        and (pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype))
    )


def as_text(values: pd.Series) -> pd.Series:
    """Values as strings, missing values kept missing (``1`` becomes ``"1"``)."""
    return (
        values.astype(object).where(values.notna(), None).map(lambda v: v if v is None else str(v))
    )


def harmonize(
    reference: pd.DataFrame, current: pd.DataFrame, types: dict[str, str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A categorical column that is text in one table and numbers in the other (a CSV column
    of codes parsed as integers) is compared as text in both."""
    mixed = [
        name
        for name, kind in types.items()
        if kind == CATEGORICAL and is_text(reference[name]) != is_text(current[name])
    ]
    if not mixed:
        return reference, current
    reference, current = reference.copy(), current.copy()
    for name in mixed:
        reference[name], current[name] = as_text(reference[name]), as_text(current[name])
    return reference, current


def _require_columns(frame: pd.DataFrame, names: Iterable[str], table: str) -> None:
    """Raise ValueError naming ``table`` and the first of ``names`` it lacks."""
    absent = [name for name in names if name not in frame.columns]
    if absent:
        raise ValueError(
            f"{table}: column {absent[0]!r} not found; "
            f"columns are: {', '.join(map(str, frame.columns))}"
        )


def compare_tables(
    reference: Any,
    current: Any,
    *,
    columns: Sequence[str] | None = None,
    chunk_size: int | None = None,
    categorical: Iterable[str] = (),
    numerical: Iterable[str] = (),
    threshold: float = DEFAULT_THRESHOLD,
    max_reference_rows: int | None = MAX_REFERENCE_ROWS,
    max_chunk_rows: int | None = MAX_CHUNK_ROWS,
    seed: int = DEFAULT_SEED,
    html_dir: Path | None = None,
) -> Comparison:
    """Compare ``current`` (in chunks of ``chunk_size`` rows) with ``reference`` (see module).

    ``columns`` default to the reference's columns that have a test (a current column the
    reference lacks is then an error, as a reference column the current table lacks is);
    types are inferred from the reference (:func:`drift.columns.infer_column_types`), with
    ``categorical`` and ``numerical`` as overrides. Raises ValueError naming the table and the
    column that is missing or cannot be tested.
    """
    reference, current = _frame(reference, "reference"), _frame(current, "current")
    threshold = check_threshold(threshold)
    if columns is None:  # a current column the reference lacks would go untested unnoticed
        _require_columns(reference, current.columns, "reference")
    column_types = infer_column_types(reference, columns, categorical, numerical)
    types = column_types.types
    if not types:
        raise ValueError("no column to compare: the reference has no column with a drift test")
    _require_columns(current, types, "current")
    if len(reference) == 0:
        raise ValueError("reference: the table has no rows")
    bounds = chunk_bounds(len(current), chunk_size)
    if not bounds:
        raise ValueError("current: the table has no rows")
    names = list(types)
    reference, current = harmonize(reference[names], current[names], types)
    positions = sample_positions(len(reference), max_reference_rows, seed)
    reference_sample = reference[names].iloc[positions].reset_index(drop=True)
    cleaned = {name: _clean(reference_sample[name]) for name in names}
    for name, values in cleaned.items():
        if values.empty:
            raise ValueError(f"reference: column {name!r} has no values")
    chunks = []
    for index, (start, end) in enumerate(bounds):
        chunk = current[names].iloc[start:end]
        tested = sample_positions(end - start, max_chunk_rows, (seed, index))
        if len(tested) < end - start:
            chunk = chunk.iloc[tested]
        dataset_drift, share, results = compare_chunk(cleaned, chunk, types, threshold, True)
        html = None
        if html_dir is not None:
            path = Path(html_dir) / f"chunk-{index:04d}.html"
            html = str(save_html_report(reference_sample, chunk, types, threshold, path))
        chunks.append(
            ChunkResult(index, start, end, dataset_drift, share, results, len(chunk), html)
        )
    return Comparison(
        chunks=chunks,
        column_types=column_types,
        reference_rows=len(reference),
        reference_rows_tested=len(positions),
        current_rows=len(current),
        threshold=threshold,
        seed=seed,
        max_chunk_rows=max_chunk_rows or 0,
    )
