"""Column types for drift detection: which columns are numerical and which categorical.

The type decides the family of test Evidently applies to a column (see
:mod:`drift.compare`): K-S or a Wasserstein distance for numerical columns, chi-square, Z or
a Jensen-Shannon distance for categorical ones. Inference is by dtype, as pandas reports
it for the reference table:

- booleans, strings, objects and pandas categoricals are categorical;
- integers and floats are numerical;
- anything else (timestamps, durations, lists) cannot be tested and is skipped, unless the
  caller names the column explicitly, which is an error.

The caller's ``categorical`` and ``numerical`` lists override inference: integer codes of a
category (``device`` encoded as 0, 1, 2 by the feature contract) are declared categorical;
a boolean may be declared numerical (tested as 0/1). Evidently itself adds one rule on
top: a numerical column with at most five distinct values gets a categorical-style test.

>>> import pandas as pd
>>> frame = pd.DataFrame(
...     {"age": [31, 45], "plan": ["a", "b"], "opted_in": [True, False], "device": [0.0, 2.0],
...      "seen_at": pd.to_datetime(["2026-01-01", "2026-01-02"])}
... )
>>> types = infer_column_types(frame, categorical=["device"])
>>> types.types
{'age': 'numerical', 'plan': 'categorical', 'opted_in': 'categorical', 'device': 'categorical'}
>>> types.skipped
{'seen_at': 'datetime64[ns]'}
>>> infer_column_types(frame, columns=["seen_at"])
Traceback (most recent call last):
...
ValueError: column 'seen_at' has type datetime64[ns], which has no drift test; declare it \
categorical or numerical, or leave it out
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd

NUMERICAL = "numerical"
CATEGORICAL = "categorical"


@dataclass(frozen=True)
class ColumnTypes:
    """``types``: column → ``"numerical"`` | ``"categorical"``, in the order tested;
    ``skipped``: columns left out because their dtype has no test (column → dtype)."""

    types: dict[str, str]
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def numerical(self) -> list[str]:
        return [c for c, kind in self.types.items() if kind == NUMERICAL]

    @property
    def categorical(self) -> list[str]:
        return [c for c, kind in self.types.items() if kind == CATEGORICAL]


def kind_of(dtype) -> str | None:
    """``"categorical"``, ``"numerical"`` or None (no drift test) for a pandas dtype."""
    if pd.api.types.is_bool_dtype(dtype):
        return CATEGORICAL
    if isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_string_dtype(dtype):
        return CATEGORICAL
    if pd.api.types.is_object_dtype(dtype):
        return CATEGORICAL
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        return NUMERICAL
    return None


def infer_column_types(
    frame: pd.DataFrame,
    columns: Sequence[str] | None = None,
    categorical: Iterable[str] = (),
    numerical: Iterable[str] = (),
) -> ColumnTypes:
    """Types of ``columns`` of ``frame`` (default: every column whose dtype has a test).

    Raises ValueError naming the column when an override names an absent column, a column
    is declared both ways, a non-numeric column is declared numerical, or an explicitly
    requested column has no test.
    """
    categorical, numerical = list(dict.fromkeys(categorical)), list(dict.fromkeys(numerical))
    both = sorted(set(categorical) & set(numerical))
    if both:
        raise ValueError(f"column {both[0]!r} is declared both categorical and numerical")
    for name in [*categorical, *numerical]:
        if name not in frame.columns:
            raise ValueError(
                f"column {name!r} not found; columns are: {', '.join(map(str, frame.columns))}"
            )
    explicit = columns is not None
    wanted = list(dict.fromkeys(columns)) if explicit else list(frame.columns)
    overrides = {**dict.fromkeys(categorical, CATEGORICAL), **dict.fromkeys(numerical, NUMERICAL)}
    if not explicit:  # an override also selects its column
        wanted += [c for c in overrides if c not in wanted]
    types: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for name in wanted:
        if name not in frame.columns:
            raise ValueError(
                f"column {name!r} not found; columns are: {', '.join(map(str, frame.columns))}"
            )
        dtype = frame[name].dtype
        inferred = kind_of(dtype)
        kind = overrides.get(name, inferred)
        if kind == NUMERICAL and inferred != NUMERICAL and not pd.api.types.is_bool_dtype(dtype):
            raise ValueError(f"column {name!r} has type {dtype}, which cannot be numerical")
        if kind is None:
            if explicit:
                raise ValueError(
                    f"column {name!r} has type {dtype}, which has no drift test; declare it "
                    "categorical or numerical, or leave it out"
                )
            skipped[name] = str(dtype)
            continue
        types[name] = kind
    return ColumnTypes(types, skipped)
