"""Reading a user's table (Parquet file or directory, or CSV) for a command, with errors
that name the file and the column and option that asked for it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as ds


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

    Raises FileNotFoundError or ValueError naming the file and the column/option.
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
        raise ValueError(f"{path}: cannot read: {exc}") from None
    for column, option in required.items():
        if column not in available:
            raise ValueError(
                f"{path}: column {column!r} (from {option}) not found; "
                f"columns are: {', '.join(available)}"
            )
    wanted = list(dict.fromkeys([*required, *(c for c in optional if c in available)]))
    try:
        if fmt == "parquet":
            return source.to_table(columns=wanted)
        types = {column: pa.string() for column in string_columns if column}
        options = pacsv.ConvertOptions(include_columns=wanted, column_types=types)
        return pacsv.read_csv(path, convert_options=options)
    except (pa.ArrowException, OSError) as exc:
        raise ValueError(f"{path}: cannot read as {fmt.upper()}: {exc}") from None
