"""The feature contract: one transform from raw customer attributes to the model's features.

Training calls it on a whole table and serving on one row, through the same code path (a
row is a batch of one), so the two cannot skew. Each feature is repaired as the contract
says and every repair is counted:

- missing (None/NaN) values and values that do not parse take the feature's default;
- numeric values outside the range are clipped to it;
- unknown categories take the default category;
- then `log1p` is applied where the contract asks for it.

Categories become integer codes (their index in the contract) that LightGBM treats as
categorical; the action a row is scored for is one more categorical column, appended by
`design_matrix`.

>>> from configs.loader import load_config
>>> contract = FeatureContract(load_config().features)
>>> row, repairs = contract.transform_row({"recency_days": 1e9, "device": "fridge"})
>>> row.shape == (len(contract.names),)
True
>>> repairs.by_kind()["out_of_range"], repairs.by_kind()["unknown_category"]
(1, 1)
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from configs.schema import FeaturesConfig, FeatureSpec

REPAIR_KINDS = ("missing", "invalid", "out_of_range", "unknown_category")
ACTION_COLUMN = "action"


@dataclass
class RepairCounts:
    """How many values of each feature the contract had to repair, by kind."""

    counts: Counter = field(default_factory=Counter)

    def add(self, feature: str, kind: str, n: int) -> None:
        if n:
            self.counts[(feature, kind)] += int(n)

    def by_kind(self) -> dict[str, int]:
        totals = dict.fromkeys(REPAIR_KINDS, 0)
        for (_, kind), n in self.counts.items():
            totals[kind] += n
        return totals

    def to_dict(self) -> dict[str, dict[str, int]]:
        nested: dict[str, dict[str, int]] = {}
        for (feature, kind), n in sorted(self.counts.items()):
            nested.setdefault(feature, {})[kind] = n
        return nested

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def as_numpy(column: Any) -> np.ndarray:
    if isinstance(column, (pa.Array, pa.ChunkedArray)):
        return column.to_numpy(zero_copy_only=False)
    if hasattr(column, "to_numpy"):  # pandas Series
        return column.to_numpy()
    return np.asarray(column, dtype=object)


def _encode_numeric(spec: FeatureSpec, values: np.ndarray, repairs: RepairCounts) -> np.ndarray:
    try:
        out = values.astype(np.float64)
        invalid = None
    except (TypeError, ValueError, OverflowError):
        out = np.empty(len(values), dtype=np.float64)
        invalid = np.zeros(len(values), dtype=bool)
        for i, value in enumerate(values):
            try:
                out[i] = np.nan if value is None or value is pd.NA else float(value)
            except OverflowError:  # an int too large for a float is outside any range
                out[i] = np.inf if value > 0 else -np.inf
            except (TypeError, ValueError):
                out[i], invalid[i] = np.nan, True
    # Repairs are rare: test with one reduction before counting (a row costs microseconds).
    missing = np.isnan(out)
    if missing.any():
        n_invalid = 0 if invalid is None else int(invalid.sum())
        repairs.add(spec.name, "missing", int(missing.sum()) - n_invalid)
        repairs.add(spec.name, "invalid", n_invalid)
        out[missing] = float(spec.default)
    if spec.range is not None:
        low, high = spec.range
        outside = (out < low) | (out > high)
        if outside.any():
            repairs.add(spec.name, "out_of_range", int(outside.sum()))
            np.minimum(np.maximum(out, low, out=out), high, out=out)
    if spec.dtype == "int":
        np.rint(out, out=out)
    if spec.transform == "log1p":
        np.log1p(out, out=out)
    return out


_TRUE = {True, "true", "True", "1", "yes"}  # 1 == 1.0 == True in a set
_FALSE = {False, "false", "False", "0", "no"}


def _encode_bool(spec: FeatureSpec, values: np.ndarray, repairs: RepairCounts) -> np.ndarray:
    if values.dtype == np.bool_:
        return values.astype(np.float64)
    out = np.empty(len(values), dtype=np.float64)
    missing = invalid = 0
    for i, value in enumerate(values):
        if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
            out[i], missing = float(spec.default), missing + 1
        elif value in _TRUE:
            out[i] = 1.0
        elif value in _FALSE:
            out[i] = 0.0
        else:
            out[i], invalid = float(spec.default), invalid + 1
    repairs.add(spec.name, "missing", missing)
    repairs.add(spec.name, "invalid", invalid)
    return out


def _encode_category(
    spec: FeatureSpec, codes: dict[str, int], values: np.ndarray, repairs: RepairCounts
) -> np.ndarray:
    default = codes[spec.default]
    out = np.fromiter((codes.get(v, -1) for v in values), dtype=np.float64, count=len(values))
    unmatched = out < 0
    if unmatched.any():
        missing = sum(1 for v in values[unmatched] if v is None or v is pd.NA or v != v)
        repairs.add(spec.name, "missing", missing)
        repairs.add(spec.name, "unknown_category", int(unmatched.sum()) - missing)
        out[unmatched] = default
    return out


class FeatureContract:
    """Applies a `FeaturesConfig` to raw attributes; the one transform of training and serving."""

    def __init__(self, config: FeaturesConfig):
        self.config = config
        self.specs: tuple[FeatureSpec, ...] = tuple(config.features)
        self.names: tuple[str, ...] = tuple(s.name for s in self.specs)
        self._codes = {
            s.name: {c: i for i, c in enumerate(s.categories)}
            for s in self.specs
            if s.dtype == "category"
        }
        # Where a value comes from (`source`) does not change the transform: models trained
        # before a feature's source changed stay on the same contract version.
        transform = config.model_dump(mode="json", exclude={"features": {"__all__": {"source"}}})
        canonical = json.dumps(transform, sort_keys=True)
        self.fingerprint = hashlib.sha256(canonical.encode()).hexdigest()[:12]
        self.version = f"{config.version}+{self.fingerprint}"
        #: The features a decide request's `context` may set (`source: request`).
        self.request_features = tuple(s.name for s in self.specs if s.source == "request")

    @property
    def categorical_indices(self) -> list[int]:
        return [i for i, s in enumerate(self.specs) if s.dtype == "category"]

    def transform(self, columns: Mapping[str, Any] | pa.Table, n_rows: int | None = None):
        """Encode a batch: `columns` maps feature name to a column (list, NumPy, pandas, Arrow).

        Absent features count as missing. Returns a float64 matrix (rows × features) and the
        repair counts.
        """
        if isinstance(columns, pa.Table):
            n_rows = columns.num_rows
            present = set(columns.column_names)
            get = columns.column
        else:
            present = set(columns)
            get = columns.__getitem__
            if n_rows is None:
                n_rows = len(next(iter(columns.values()))) if columns else 0
        repairs = RepairCounts()
        matrix = np.empty((n_rows, len(self.specs)), dtype=np.float64)
        for j, spec in enumerate(self.specs):
            if spec.name in present:
                values = as_numpy(get(spec.name))
            else:
                values = np.full(n_rows, None, dtype=object)
            if spec.dtype == "category":
                matrix[:, j] = _encode_category(spec, self._codes[spec.name], values, repairs)
            elif spec.dtype == "bool":
                matrix[:, j] = _encode_bool(spec, values, repairs)
            else:
                matrix[:, j] = _encode_numeric(spec, values, repairs)
        return matrix, repairs

    def context_errors(self, context: Mapping[str, Any]) -> list[tuple[str, str]]:
        """(key, what was expected) for each request-context value the contract rejects.

        Only features marked ``source: request`` may be sent: any other key would let a
        caller override what the store knows of the customer. An app's context is explicit
        input, so it must be valid as sent: unlike stored attributes, it is never repaired.

        >>> from configs.loader import load_config
        >>> FeatureContract(load_config().features).context_errors({"device": "ios"})
        [('device', 'no context key: no feature of the contract has source: request')]
        """
        errors = []
        specs = dict(zip(self.names, self.specs, strict=True))
        for key, value in context.items():
            spec = specs.get(key)
            if spec is None or spec.source != "request":
                errors.append((key, self._allowed_keys_text()))
            elif spec.dtype == "category":
                if value not in self._codes[key]:
                    errors.append((key, f"one of {spec.categories}"))
            elif spec.dtype == "bool":
                if not isinstance(value, bool):
                    errors.append((key, "true or false"))
            elif isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
                errors.append((key, f"a number in {list(spec.range or ())}"))
            elif spec.range is not None and not spec.range[0] <= value <= spec.range[1]:
                errors.append((key, f"a number in [{spec.range[0]}, {spec.range[1]}]"))
        return errors

    def _allowed_keys_text(self) -> str:
        if not self.request_features:
            return "no context key: no feature of the contract has source: request"
        return f"a feature with source: request, one of {list(self.request_features)}"

    def transform_row(self, attributes: Mapping[str, Any]):
        """Encode one customer: the same code as `transform`, on a batch of one."""
        batch = {name: np.array([attributes.get(name)], dtype=object) for name in self.names}
        matrix, repairs = self.transform(batch, n_rows=1)
        return matrix[0], repairs


def design_matrix(features: np.ndarray, action_codes: Sequence[int] | np.ndarray) -> np.ndarray:
    """The scoring models' input: contract features with the action code as the last column.

    `features` is either one row per action code, or a single row (1-D) scored for every code.
    """
    codes = np.asarray(action_codes)
    if features.ndim == 2 and len(features) != len(codes):
        raise ValueError(f"{len(features)} feature rows for {len(codes)} action codes")
    # Filled in place: 1.2 µs for five rows, against 6.2 µs broadcast and stacked.
    design = np.empty((len(codes), features.shape[-1] + 1), dtype=np.float64)
    design[:, :-1] = features
    design[:, -1] = codes
    return design


def model_feature_names(contract: FeatureContract) -> list[str]:
    return [*contract.names, ACTION_COLUMN]


def model_categorical_indices(contract: FeatureContract) -> list[int]:
    return [*contract.categorical_indices, len(contract.names)]
