"""Column type inference: booleans and strings categorical, numbers numerical, overridable."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from drift.columns import CATEGORICAL, NUMERICAL, infer_column_types, kind_of


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": np.array([31, 45, 27], dtype=np.int64),
            "spend": [10.5, np.nan, 3.0],
            "plan": ["a", "b", "a"],
            "opted_in": [True, False, True],
            "tier": pd.Categorical(["gold", "silver", "gold"]),
            "label": pd.array(["x", None, "y"], dtype="string"),
            "device": [0.0, 2.0, 1.0],
            "seen_at": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03"]),
        }
    )


def test_dtypes_map_to_kinds(frame: pd.DataFrame) -> None:
    kinds = {name: kind_of(frame[name].dtype) for name in frame.columns}
    assert kinds == {
        "age": NUMERICAL,
        "spend": NUMERICAL,
        "plan": CATEGORICAL,
        "opted_in": CATEGORICAL,
        "tier": CATEGORICAL,
        "label": CATEGORICAL,
        "device": NUMERICAL,
        "seen_at": None,
    }


def test_inference_skips_untestable_columns_and_keeps_order(frame: pd.DataFrame) -> None:
    types = infer_column_types(frame)
    assert list(types.types) == [c for c in frame.columns if c != "seen_at"]
    assert types.skipped == {"seen_at": "datetime64[ns]"}
    assert types.categorical == ["plan", "opted_in", "tier", "label"]
    assert types.numerical == ["age", "spend", "device"]


def test_overrides_win_over_inference(frame: pd.DataFrame) -> None:
    types = infer_column_types(frame, categorical=["device", "age"], numerical=["opted_in"])
    assert types.types["device"] == CATEGORICAL
    assert types.types["age"] == CATEGORICAL
    assert types.types["opted_in"] == NUMERICAL  # a boolean may be tested as 0/1


def test_an_override_can_make_a_timestamp_categorical(frame: pd.DataFrame) -> None:
    types = infer_column_types(frame, categorical=["seen_at"])
    assert types.types["seen_at"] == CATEGORICAL and not types.skipped


def test_explicit_columns_restrict_and_order(frame: pd.DataFrame) -> None:
    types = infer_column_types(frame, columns=["plan", "age"])
    assert types.types == {"plan": CATEGORICAL, "age": NUMERICAL}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"columns": ["nope"]}, "column 'nope' not found"),
        ({"categorical": ["nope"]}, "column 'nope' not found"),
        ({"categorical": ["age"], "numerical": ["age"]}, "'age' is declared both"),
        ({"numerical": ["plan"]}, "column 'plan' has type object, which cannot be numerical"),
        ({"columns": ["seen_at"]}, "column 'seen_at' has type datetime64[ns], which has no"),
    ],
)
def test_errors_name_the_column(frame: pd.DataFrame, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as error:
        infer_column_types(frame, **kwargs)
    assert message in str(error.value)
