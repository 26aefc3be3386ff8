"""Reading a user's table (Parquet file or directory, or CSV) for a command, with errors
that name the file and the column and option that asked for it."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as ds

from liftgate.core.errors import InputError


def table_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if ".csv" in suffixes:
        return "csv"
    if path.is_dir() or suffixes[-1:] in ([".parquet"], [".pq"]):
        return "parquet"
    with path.open("rb") as f:
        return "parquet" if f.read(4) == b"PAR1" else "csv"


def read_table(
    path: Path,
    required: Mapping[str, str],
    optional: Iterable[str] = (),
    string_columns: Iterable[str] = (),
) -> pa.Table:
    """The `required` columns (column -> the option that named it) and whichever of
    `optional` exist. `string_columns` stay strings when read from CSV (arm `01` stays `01`).

    Raises FileNotFoundError or InputError naming the file and the column/option.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        fmt = table_format(path)
        if fmt == "parquet":
            source = ds.dataset(path, format="parquet")
            available = source.schema.names
        else:
            available = pacsv.open_csv(path).schema.names
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    check_columns(path, required, available)
    wanted = list(dict.fromkeys([*required, *(c for c in optional if c in available)]))
    try:
        if fmt == "parquet":
            return source.to_table(columns=wanted)
        types = {column: pa.string() for column in string_columns if column}
        options = pacsv.ConvertOptions(include_columns=wanted, column_types=types)
        return pacsv.read_csv(path, convert_options=options)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: cannot read as {fmt.upper()}: {exc}") from None


def check_columns(path: Path, required: Mapping[str, str], available: Sequence[str]) -> None:
    """Raise InputError naming the file, the column and the option that asked for it when a
    `required` column (column -> option) is not `available`."""
    for column, option in required.items():
        if column not in available:
            raise InputError(
                f"{path}: column {column!r} (from {option}) not found; "
                f"columns are: {', '.join(available)}"
            )


def open_dataset(
    path: Path, required: Mapping[str, str], string_columns: Iterable[str] = ()
) -> ds.Dataset:
    """The table at `path` (Parquet file or directory, or CSV) as a dataset to scan in
    batches, once its `required` columns are checked; `string_columns` as in `read_table`."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        if table_format(path) == "parquet":
            source = ds.dataset(path, format="parquet")
        else:
            types = {column: pa.string() for column in string_columns if column}
            csv = ds.CsvFileFormat(convert_options=pacsv.ConvertOptions(column_types=types))
            source = ds.dataset(path, format=csv)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None
    check_columns(path, required, source.schema.names)
    return source


def scan_batches(
    path: Path,
    required: Mapping[str, str],
    string_columns: Iterable[str] = (),
    batch_rows: int = 1 << 20,
) -> Iterator[pa.RecordBatch]:
    """The `required` columns of the table at `path`, `batch_rows` rows at a time: memory
    holds a batch, not the table. Raises like `read_table`, also mid-scan."""
    source = open_dataset(path, required, string_columns)
    try:
        yield from source.to_batches(
            columns=list(required),
            batch_size=batch_rows,
            # Read ahead a little, not the default dozens of batches: memory stays a few batches.
            batch_readahead=2,
            fragment_readahead=1,
        )
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: cannot read: {exc}") from None


#: What counts as a missing cell: a null (pyarrow's CSV reader reads "", "n/a", "NA", "null",
#: "NaN" and the like as null) or a floating-point NaN.
MISSING = "blank, n/a, null or NaN"


def parse_fill(text: str) -> float:
    """A fill value for missing cells: a finite number, or ``zero``.

    >>> parse_fill("zero"), parse_fill("-1.5")
    (0.0, -1.5)
    """
    try:
        value = 0.0 if text.strip().lower() == "zero" else float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise InputError(f"expected a number or zero; got {text!r}", parameter="fill_missing")
    return value


def missing_cells(table: pa.Table, columns: Iterable[str]) -> dict[str, int]:
    """How many cells are missing (null or NaN) in each of ``columns`` that has any."""
    counts = {
        column: int(pc.sum(pc.is_null(table[column], nan_is_null=True)).as_py() or 0)
        for column in columns
    }
    return {column: n for column, n in counts.items() if n}


def missing_cells_error(
    path: Path, columns: Mapping[str, str], counts: Mapping[str, int], rows: int
) -> InputError:
    """The error for missing cells (`counts` per column) of a table of `rows` rows, naming
    the file, each column and the option that asked for it."""
    where = "; ".join(
        f"column {column!r} (from {columns[column]}): {n:,} of {rows:,}"
        for column, n in counts.items()
    )
    return InputError(
        f"{path}: missing cells ({MISSING}) in {where}; clean the file, or fill them "
        "explicitly with --fill-missing VALUE (or --fill-missing zero)"
    )


def fill_missing(
    table: pa.Table, path: Path, columns: Mapping[str, str], fill: float | None
) -> tuple[pa.Table, dict[str, int]]:
    """``table`` without missing cells in ``columns`` (column -> the option that named it),
    and how many were filled per column.

    A blank cell is not a zero: without ``fill``, missing cells are an InputError naming the
    file, each column and its count; with it, they become ``fill`` (as float64).
    """
    counts = missing_cells(table, columns)
    if counts and fill is None:
        raise missing_cells_error(path, columns, counts, table.num_rows)
    for column in counts:
        values = pc.cast(table[column], pa.float64())
        missing = pc.is_null(values, nan_is_null=True)
        filled = pc.if_else(missing, pa.scalar(fill, pa.float64()), values)
        table = table.set_column(table.column_names.index(column), column, filled)
    return table, counts
