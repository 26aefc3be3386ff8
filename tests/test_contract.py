"""Tests for the feature contract (liftgate/core/contract.py): no training/serving skew, every
repair counted, and any input mapped into the model's domain."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from configs.loader import load_config
from configs.schema import FeatureSpec
from liftgate.core.contract import (
    REPAIR_KINDS,
    FeatureContract,
    RepairCounts,
    design_matrix,
    model_categorical_indices,
    model_feature_names,
)
from liftgate.sim.world import World

CONTRACT = FeatureContract(load_config().features)
# The contract's np.log1p runs SIMD loops that may round differently in the last bit from
# math.log1p, or from itself on an array of another length (seen on AVX-512 CPUs): encoded
# numbers from different paths are compared to a few ulps, category codes and counts exactly.
ULPS = 1e-14
SPECS = {s.name: s for s in CONTRACT.specs}
COLUMN = {name: j for j, name in enumerate(CONTRACT.names)}
NUMERIC = [s.name for s in CONTRACT.specs if s.dtype in ("float", "int")]
CATEGORY = [s.name for s in CONTRACT.specs if s.dtype == "category"]
BOOL = [s.name for s in CONTRACT.specs if s.dtype == "bool"]


def encoded_default(spec: FeatureSpec) -> float:
    """What the contract must produce for a missing value, computed from the spec alone."""
    if spec.dtype == "category":
        return float(spec.categories.index(spec.default))
    value = float(spec.default)
    return math.log1p(value) if spec.transform == "log1p" else value


def encoded_bounds(spec: FeatureSpec) -> tuple[float, float]:
    low, high = spec.range
    if spec.transform == "log1p":
        return math.log1p(low), math.log1p(high)
    return low, high


def summed(repairs: list[RepairCounts]) -> Counter:
    total: Counter = Counter()
    for r in repairs:
        total.update(r.counts)
    return total


def rows_of(batch: dict[str, list], n: int) -> list[dict[str, Any]]:
    return [{name: column[i] for name, column in batch.items()} for i in range(n)]


# --- training/serving skew --------------------------------------------------------------------

N_DIRTY = 40  # values broken per kind of damage


@pytest.fixture(scope="module")
def dirty_customers() -> pd.DataFrame:
    """1,000 customers of the world, with missing, unknown and out-of-range values injected,
    and one contract feature absent."""
    frame = World(seed=21, n_customers=1_000).customers.copy()
    rng = np.random.default_rng(5)

    def some() -> np.ndarray:
        return rng.choice(len(frame), size=N_DIRTY, replace=False)

    frame.loc[some(), "recency_days"] = np.nan
    frame.loc[some(), "avg_order_value"] = 1e7
    frame.loc[some(), "email_open_rate"] = -0.5
    frame["sessions_30d"] = frame["sessions_30d"].astype(np.float64)
    frame.loc[some(), "sessions_30d"] = np.inf
    frame["orders_12m"] = frame["orders_12m"].astype(object)
    frame.loc[some(), "orders_12m"] = None
    frame["cart_abandoned_7d"] = frame["cart_abandoned_7d"].astype(object)
    frame.loc[some(), "cart_abandoned_7d"] = None
    frame.loc[some(), "device"] = "fridge"
    frame.loc[some(), "segment"] = None
    frame.loc[some(), "region"] = "atlantis"
    return frame.drop(columns=["push_open_rate"])


def test_dataframe_arrow_and_rows_encode_identically(dirty_customers: pd.DataFrame) -> None:
    frame = dirty_customers
    n = len(frame)
    from_pandas, pandas_repairs = CONTRACT.transform({c: frame[c] for c in frame.columns}, n)
    from_arrow, arrow_repairs = CONTRACT.transform(
        pa.Table.from_pandas(frame, preserve_index=False)
    )
    rows = [CONTRACT.transform_row(record) for record in frame.to_dict("records")]
    from_rows = np.vstack([row for row, _ in rows])

    assert from_pandas.shape == (n, len(CONTRACT.names))
    assert np.isfinite(from_pandas).all()
    np.testing.assert_array_equal(from_pandas, from_arrow)  # same arrays through one path
    np.testing.assert_allclose(from_rows, from_pandas, rtol=ULPS, atol=0)
    assert pandas_repairs.counts == arrow_repairs.counts
    assert pandas_repairs.counts == summed([r for _, r in rows])


def test_the_injected_damage_is_counted_exactly(dirty_customers: pd.DataFrame) -> None:
    frame = dirty_customers
    _, repairs = CONTRACT.transform(pa.Table.from_pandas(frame, preserve_index=False))
    counts = repairs.to_dict()
    n = len(frame)
    assert counts["recency_days"] == {"missing": N_DIRTY}
    assert counts["orders_12m"] == {"missing": N_DIRTY}
    assert counts["cart_abandoned_7d"] == {"missing": N_DIRTY}
    assert counts["segment"] == {"missing": N_DIRTY}
    assert counts["push_open_rate"] == {"missing": n}  # the absent column
    assert counts["avg_order_value"] == {"out_of_range": N_DIRTY}
    assert counts["email_open_rate"] == {"out_of_range": N_DIRTY}
    assert counts["sessions_30d"] == {"out_of_range": N_DIRTY}
    assert counts["device"] == {"unknown_category": N_DIRTY}
    assert counts["region"] == {"unknown_category": N_DIRTY}
    untouched = {"tenure_days", "discount_affinity", "channel_pref"}
    assert untouched.isdisjoint(counts)


def test_clean_world_customers_need_no_repair() -> None:
    customers = World(seed=4, n_customers=500).customers
    matrix, repairs = CONTRACT.transform(pa.Table.from_pandas(customers, preserve_index=False))
    assert repairs.total == 0
    expected_device = customers["device"].map(SPECS["device"].categories.index).to_numpy()
    np.testing.assert_array_equal(matrix[:, COLUMN["device"]], expected_device)
    np.testing.assert_allclose(
        matrix[:, COLUMN["recency_days"]], np.log1p(customers["recency_days"].to_numpy())
    )


# --- repairs, one kind at a time --------------------------------------------------------------


def test_each_repair_kind_is_counted() -> None:
    matrix, repairs = CONTRACT.transform(
        {
            "recency_days": [None, "abc", 1e6, 10.0],
            "device": ["fridge", None, "ios", "ios"],
            "cart_abandoned_7d": [True, "maybe", np.nan, False],
        },
        n_rows=4,
    )
    counts = repairs.to_dict()
    assert counts["recency_days"] == {"missing": 1, "invalid": 1, "out_of_range": 1}
    assert counts["device"] == {"missing": 1, "unknown_category": 1}
    assert counts["cart_abandoned_7d"] == {"missing": 1, "invalid": 1}
    default_recency = encoded_default(SPECS["recency_days"])
    np.testing.assert_allclose(
        matrix[:, COLUMN["recency_days"]],
        [default_recency, default_recency, math.log1p(730.0), math.log1p(10.0)],
        rtol=ULPS,
    )
    desktop = SPECS["device"].categories.index("desktop")
    ios = SPECS["device"].categories.index("ios")
    np.testing.assert_array_equal(matrix[:, COLUMN["device"]], [desktop, desktop, ios, ios])
    by_kind = repairs.by_kind()
    assert set(by_kind) == set(REPAIR_KINDS)
    assert by_kind["unknown_category"] == 1
    assert by_kind["invalid"] == 2
    assert repairs.total == sum(by_kind.values())


def test_log1p_is_applied_after_clipping() -> None:
    row, repairs = CONTRACT.transform_row(
        {"recency_days": 1e9, "avg_order_value": -20.0, "orders_12m": 2.4, "tenure_days": 9999}
    )
    assert row[COLUMN["recency_days"]] == pytest.approx(math.log1p(730.0), rel=ULPS)
    assert row[COLUMN["avg_order_value"]] == 0.0  # clipped to 0 first; log1p(-20) is NaN
    # an int feature is rounded
    assert row[COLUMN["orders_12m"]] == pytest.approx(math.log1p(2.0), rel=ULPS)
    assert row[COLUMN["tenure_days"]] == 3650.0  # no transform
    counts = repairs.to_dict()
    for name in ("recency_days", "avg_order_value", "tenure_days"):
        assert counts[name] == {"out_of_range": 1}
    assert "orders_12m" not in counts


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, 1.0),
        ("true", 1.0),
        ("True", 1.0),
        ("1", 1.0),
        ("yes", 1.0),
        (1, 1.0),
        (False, 0.0),
        ("false", 0.0),
        ("0", 0.0),
        ("no", 0.0),
        (0, 0.0),
    ],
)
def test_bool_parsing(value: Any, expected: float) -> None:
    row, repairs = CONTRACT.transform_row({"cart_abandoned_7d": value})
    assert row[COLUMN["cart_abandoned_7d"]] == expected
    assert "cart_abandoned_7d" not in repairs.to_dict()


@pytest.mark.parametrize(
    ("value", "kind"), [("maybe", "invalid"), (2, "invalid"), (None, "missing")]
)
def test_unparseable_bools_take_the_default(value: Any, kind: str) -> None:
    row, repairs = CONTRACT.transform_row({"cart_abandoned_7d": value})
    assert row[COLUMN["cart_abandoned_7d"]] == float(SPECS["cart_abandoned_7d"].default)
    assert repairs.to_dict()["cart_abandoned_7d"] == {kind: 1}


def test_absent_columns_count_as_missing() -> None:
    matrix, repairs = CONTRACT.transform({}, n_rows=3)
    defaults = [encoded_default(s) for s in CONTRACT.specs]
    np.testing.assert_allclose(matrix, np.tile(defaults, (3, 1)), rtol=ULPS)
    assert repairs.to_dict() == {name: {"missing": 3} for name in CONTRACT.names}
    row, row_repairs = CONTRACT.transform_row({})
    np.testing.assert_allclose(row, defaults, rtol=ULPS)
    assert row_repairs.by_kind()["missing"] == len(CONTRACT.names)


def test_pandas_nullable_missing_values_are_missing() -> None:
    """pd.NA of nullable dtypes is a missing value, like None and NaN (not a crash)."""
    frame = pd.DataFrame(
        {
            "device": pd.Series(["ios", None], dtype="string"),
            "orders_12m": pd.Series([3, None], dtype="Int64"),
            "cart_abandoned_7d": pd.Series([True, None], dtype="boolean"),
        }
    )
    matrix, repairs = CONTRACT.transform({c: frame[c] for c in frame.columns}, 2)
    counts = repairs.to_dict()
    for name in frame.columns:
        assert counts[name] == {"missing": 1}
        assert matrix[1, COLUMN[name]] == pytest.approx(encoded_default(SPECS[name]), rel=ULPS)
    assert matrix[0, COLUMN["orders_12m"]] == pytest.approx(math.log1p(3.0), rel=ULPS)
    row, row_repairs = CONTRACT.transform_row({"device": pd.NA, "orders_12m": pd.NA})
    assert row_repairs.to_dict()["device"] == {"missing": 1}
    assert row_repairs.to_dict()["orders_12m"] == {"missing": 1}


def test_contract_version_names_config_version_and_content() -> None:
    config = load_config().features
    assert CONTRACT.version.startswith(f"{config.version}+")
    changed = config.model_copy(update={"features": config.features[:-1]})
    assert FeatureContract(changed).version != CONTRACT.version
    assert FeatureContract(config).version == CONTRACT.version


def with_request_features(*names: str) -> FeatureContract:
    """The default contract with `names` marked ``source: request``."""
    config = load_config().features
    features = [
        f.model_copy(update={"source": "request"}) if f.name in names else f
        for f in config.features
    ]
    return FeatureContract(config.model_copy(update={"features": features}))


def test_context_may_set_only_features_with_source_request() -> None:
    """A stored attribute (the customer's device, segment) cannot be overridden by a
    request: each such key is an error naming the keys that are allowed."""
    assert CONTRACT.request_features == ()
    assert CONTRACT.context_errors({"device": "ios", "segment": "loyal"}) == [
        ("device", "no context key: no feature of the contract has source: request"),
        ("segment", "no context key: no feature of the contract has source: request"),
    ]
    contract = with_request_features("device")
    assert contract.context_errors({"device": "ios"}) == []
    assert contract.context_errors({"segment": "loyal", "colour": "red"}) == [
        ("segment", "a feature with source: request, one of ['device']"),
        ("colour", "a feature with source: request, one of ['device']"),
    ]
    assert contract.context_errors({"device": "fridge"}) == [
        ("device", "one of ['ios', 'android', 'desktop']")
    ]


def test_the_source_of_a_feature_does_not_change_the_contract_version() -> None:
    """Where a value comes from does not change the transform: models trained on the
    contract stay on its version."""
    assert with_request_features("device").version == CONTRACT.version


# --- properties -------------------------------------------------------------------------------

huge_ints = st.integers(min_value=-(10**400), max_value=10**400)
any_number = st.one_of(st.floats(allow_nan=True, allow_infinity=True), huge_ints)


@given(name=st.sampled_from(NUMERIC), value=any_number)
def test_any_number_lands_finite_and_inside_the_range(name: str, value: float) -> None:
    row, repairs = CONTRACT.transform_row({name: value})
    low, high = encoded_bounds(SPECS[name])
    out = row[COLUMN[name]]
    assert math.isfinite(out)
    assert low <= out <= high
    kind = repairs.to_dict().get(name)
    raw_low, raw_high = SPECS[name].range
    if value != value:
        assert kind == {"missing": 1}
    elif not raw_low <= value <= raw_high:
        assert kind == {"out_of_range": 1}
    else:
        assert kind is None


@given(name=st.sampled_from(NUMERIC), value=st.one_of(any_number, st.text(max_size=8)))
def test_any_value_of_a_numeric_feature_is_finite_and_in_range(name: str, value: Any) -> None:
    matrix, _ = CONTRACT.transform({name: [value]}, n_rows=1)
    low, high = encoded_bounds(SPECS[name])
    assert math.isfinite(matrix[0, COLUMN[name]])
    assert low <= matrix[0, COLUMN[name]] <= high


@given(name=st.sampled_from(CATEGORY), value=st.one_of(st.none(), st.text()))
def test_any_string_maps_to_a_valid_category_code(name: str, value: str | None) -> None:
    row, repairs = CONTRACT.transform_row({name: value})
    categories = SPECS[name].categories
    code = row[COLUMN[name]]
    assert code in range(len(categories))
    if value in categories:
        assert code == categories.index(value)
        assert name not in repairs.to_dict()
    else:
        assert code == categories.index(SPECS[name].default)
        kind = "missing" if value is None else "unknown_category"
        assert repairs.to_dict()[name] == {kind: 1}


def value_strategy(spec: FeatureSpec) -> st.SearchStrategy:
    if spec.dtype == "category":
        return st.one_of(st.none(), st.sampled_from(spec.categories), st.text(max_size=5))
    if spec.dtype == "bool":
        return st.one_of(
            st.none(), st.booleans(), st.sampled_from(["yes", "no", "maybe", 0, 1, 2, np.nan])
        )
    return st.one_of(
        st.none(),
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(-(10**6), 10**6),
        st.sampled_from(["12", " 3.5 ", "abc", "nan", "-inf", ""]),
    )


@settings(max_examples=60, deadline=None)
@given(
    rows=st.lists(
        st.fixed_dictionaries({}, optional={s.name: value_strategy(s) for s in CONTRACT.specs}),
        min_size=1,
        max_size=12,
    )
)
def test_a_batch_is_the_stack_of_its_rows(rows: list[dict[str, Any]]) -> None:
    batch = {name: [row.get(name) for row in rows] for name in CONTRACT.names}
    matrix, repairs = CONTRACT.transform(batch, n_rows=len(rows))
    single = [CONTRACT.transform_row(row) for row in rows]
    np.testing.assert_allclose(matrix, np.vstack([r for r, _ in single]), rtol=ULPS, atol=0)
    assert repairs.counts == summed([r for _, r in single])
    assert np.isfinite(matrix).all()


# --- design matrix ----------------------------------------------------------------------------


def test_design_matrix_of_one_row_scores_every_action() -> None:
    row, _ = CONTRACT.transform_row({"recency_days": 3.0, "device": "ios"})
    design = design_matrix(row, [0, 1, 2, 3, 4])
    assert design.shape == (5, len(CONTRACT.names) + 1)
    np.testing.assert_array_equal(design[:, :-1], np.tile(row, (5, 1)))
    np.testing.assert_array_equal(design[:, -1], [0, 1, 2, 3, 4])


def test_design_matrix_of_a_batch_appends_one_code_per_row() -> None:
    matrix, _ = CONTRACT.transform({"recency_days": [1.0, 2.0, 3.0]}, n_rows=3)
    design = design_matrix(matrix, np.array([4, 0, 2]))
    assert design.shape == (3, len(CONTRACT.names) + 1)
    np.testing.assert_array_equal(design[:, :-1], matrix)
    np.testing.assert_array_equal(design[:, -1], [4, 0, 2])
    with pytest.raises(ValueError):
        design_matrix(matrix, [0, 1])


def test_model_columns_end_with_the_categorical_action() -> None:
    names = model_feature_names(CONTRACT)
    assert names[-1] == "action"
    categorical = model_categorical_indices(CONTRACT)
    assert categorical[-1] == len(names) - 1
    assert [names[i] for i in categorical[:-1]] == CATEGORY
