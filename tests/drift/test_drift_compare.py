"""The comparison core: chunk bounds, sampling, verdicts, JSON shape, parity with Evidently."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from drift.compare import (
    ColumnDrift,
    chunk_bounds,
    column_drift,
    compare_tables,
    drift_share,
    sample_positions,
)


def tables(n_reference: int, n_current: int, shift: float = 0.0, seed: int = 0):
    rng = np.random.default_rng(seed)

    def draw(n: int, s: float) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "x": rng.normal(s, 1.0, n),
                "y": rng.exponential(1.0, n),
                "plan": rng.choice(["a", "b", "c"], n, p=[0.5 - s / 4, 0.3, 0.2 + s / 4]),
                "active": rng.random(n) < 0.3,
            }
        )

    return draw(n_reference, 0.0), draw(n_current, shift)


@pytest.mark.parametrize(
    ("n", "size", "expected"),
    [
        (10, 4, [(0, 4), (4, 8), (8, 10)]),
        (8, 4, [(0, 4), (4, 8)]),
        (3, 10, [(0, 3)]),
        (5, None, [(0, 5)]),
        (1, 1, [(0, 1)]),
        (0, 3, []),
    ],
)
def test_chunk_bounds(n: int, size: int | None, expected: list) -> None:
    assert chunk_bounds(n, size) == expected


def test_chunk_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        chunk_bounds(10, 0)


def test_sampling_is_seeded_sorted_and_without_replacement() -> None:
    a, b = sample_positions(1_000, 100, 7), sample_positions(1_000, 100, 7)
    assert np.array_equal(a, b) and len(np.unique(a)) == 100
    assert np.all(np.diff(a) > 0)
    assert not np.array_equal(a, sample_positions(1_000, 100, 8))
    assert np.array_equal(sample_positions(50, 100, 7), np.arange(50))


def test_chunks_cover_the_current_table_and_keep_their_bounds() -> None:
    reference, current = tables(600, 1_050)
    result = compare_tables(reference, current, chunk_size=500)
    assert [(c.index, c.start, c.end, c.rows) for c in result.chunks] == [
        (0, 0, 500, 500),
        (1, 500, 1_000, 500),
        (2, 1_000, 1_050, 50),
    ]
    assert result.current_rows == 1_050 and result.reference_rows == 600
    assert not result.sampled


def test_json_shape() -> None:
    reference, current = tables(600, 400, shift=1.0)
    document = json.loads(json.dumps(compare_tables(reference, current).to_dict()))
    assert {"chunks", "reference_rows", "sampled", "threshold", "column_types"} <= set(document)
    (chunk,) = document["chunks"]
    assert {"index", "start", "end", "dataset_drift", "drift_share", "columns"} <= set(chunk)
    assert set(chunk["columns"]) == {"x", "y", "plan", "active"}
    for column in chunk["columns"].values():
        assert {"drifted", "statistic", "p_value", "method"} <= set(column)
    assert document["column_types"] == {
        "x": "numerical",
        "y": "numerical",
        "plan": "categorical",
        "active": "categorical",
    }


def test_small_reference_gets_tests_and_large_reference_gets_distances() -> None:
    reference, current = tables(1_000, 500, shift=1.0)
    small = compare_tables(reference, current).chunks[0].columns
    assert {n: c.method for n, c in small.items()} == {
        "x": "ks",
        "y": "ks",
        "plan": "chisquare",
        "active": "z",
    }
    assert all(c.p_value is not None and c.statistic is None for c in small.values())
    reference, current = tables(1_001, 500, shift=1.0)
    large = compare_tables(reference, current).chunks[0].columns
    assert {n: c.method for n, c in large.items()} == {
        "x": "wasserstein",
        "y": "wasserstein",
        "plan": "jensenshannon",
        "active": "jensenshannon",
    }
    assert all(c.statistic is not None and c.p_value is None for c in large.values())
    assert all(c.threshold == 0.1 for c in large.values())


def test_shift_is_found_and_identical_data_is_not() -> None:
    reference, current = tables(5_000, 2_000, shift=1.0)
    shifted = compare_tables(reference, current).chunks[0]
    assert shifted.dataset_drift and set(shifted.drifted_columns) == {"x", "plan"}
    assert shifted.drift_share == 0.5
    same = compare_tables(reference, reference.sample(2_000, random_state=1)).chunks[0]
    assert not same.dataset_drift and same.drift_share == 0.0


def test_dataset_drift_when_the_share_reaches_the_threshold() -> None:
    reference, current = tables(5_000, 2_000, shift=1.0)
    assert compare_tables(reference, current, threshold=0.5).chunks[0].dataset_drift
    assert not compare_tables(reference, current, threshold=0.51).chunks[0].dataset_drift
    with pytest.raises(ValueError, match="threshold"):
        compare_tables(reference, current, threshold=0.0)


def test_large_inputs_are_sampled_reproducibly() -> None:
    reference, current = tables(3_000, 2_500, shift=0.3)
    options = dict(chunk_size=1_250, max_reference_rows=1_500, max_chunk_rows=1_000, seed=3)
    first = compare_tables(reference, current, **options)
    second = compare_tables(reference, current, **options)
    assert first.sampled and first.reference_rows_tested == 1_500
    assert [c.rows for c in first.chunks] == [1_000, 1_000]
    assert first.to_dict() == second.to_dict()


def test_the_same_columns_and_verdicts_as_evidently_report() -> None:
    """Our per-column results equal Evidently's ValueDrift metrics on the same data."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    for n_reference in (800, 4_000):  # tests, then distances
        reference, current = tables(n_reference, 600, shift=0.4, seed=2)
        ours = compare_tables(reference, current).chunks[0].columns
        definition = DataDefinition(
            numerical_columns=["x", "y"], categorical_columns=["plan", "active"]
        )
        snapshot = Report([ValueDrift(column=c) for c in ours], include_tests=True).run(
            current_data=Dataset.from_pandas(current, definition),
            reference_data=Dataset.from_pandas(reference, definition),
        )
        document = json.loads(snapshot.json())
        values = {m["config"]["column"]: m["value"] for m in document["metrics"]}
        failed = {
            t["metric_config"]["params"]["column"]: t["status"] == "FAIL" for t in document["tests"]
        }
        for name, column in ours.items():
            score = column.p_value if column.p_value is not None else column.statistic
            assert score == pytest.approx(values[name], rel=1e-9), name
            assert column.drifted == failed[name], name


def test_a_column_without_current_values_drifts_and_one_without_reference_values_is_an_error():
    reference, current = tables(500, 200)
    current["y"] = np.nan
    chunk = compare_tables(reference, current).chunks[0]
    assert chunk.columns["y"] == ColumnDrift(True, None, None, "empty")
    reference["x"] = np.nan
    with pytest.raises(ValueError, match="reference: column 'x' has no values"):
        compare_tables(reference, current)


def test_errors_name_the_table_and_the_column() -> None:
    reference, current = tables(500, 200)
    with pytest.raises(ValueError, match="current: column 'plan' not found"):
        compare_tables(reference, current.drop(columns="plan"))
    with pytest.raises(ValueError, match="reference: column 'plan' not found"):
        compare_tables(reference.drop(columns="plan"), current)
    narrower = compare_tables(reference.drop(columns="plan"), current, columns=["x", "y"])
    assert set(narrower.chunks[0].columns) == {"x", "y"}  # named columns: the rest may differ
    with pytest.raises(ValueError, match="column 'nope' not found"):
        compare_tables(reference, current, columns=["x", "nope"])
    with pytest.raises(ValueError, match="current: the table has no rows"):
        compare_tables(reference, current.iloc[:0])
    current["x"] = "text"
    with pytest.raises(ValueError, match="current: column 'x' is not numerical"):
        compare_tables(reference, current)


def test_column_drift_and_share_helpers() -> None:
    rng = np.random.default_rng(0)
    same = column_drift(
        pd.Series(rng.normal(size=2_000)), pd.Series(rng.normal(size=500)), "numerical"
    )
    assert same.method == "wasserstein" and not same.drifted
    columns = {"a": same, "b": ColumnDrift(True, 0.3, None, "wasserstein")}
    assert drift_share(columns) == 0.5 and drift_share({}) == 0.0


def test_html_report_per_chunk(tmp_path) -> None:
    reference, current = tables(300, 150, shift=1.0)
    result = compare_tables(reference, current, chunk_size=100, html_dir=tmp_path / "html")
    paths = [chunk.html for chunk in result.chunks]
    assert paths == [str(tmp_path / "html" / f"chunk-000{i}.html") for i in range(2)]
    text = (tmp_path / "html" / "chunk-0000.html").read_text()
    assert "<html" in text and "Drift" in text and '"plan"' in text


def test_codes_read_as_numbers_in_one_table_are_compared_as_text() -> None:
    reference = pd.DataFrame({"plan": ["1", "2", "3"] * 400})
    current = pd.DataFrame({"plan": [1, 2, 3] * 200})
    chunk = compare_tables(reference, current, categorical=["plan"]).chunks[0]
    assert not chunk.columns["plan"].drifted and chunk.columns["plan"].statistic == 0.0
    assert current["plan"].tolist()[:3] == [1, 2, 3]  # the caller's frame is untouched


def test_scores_that_are_not_numbers_become_null_in_json() -> None:
    assert ColumnDrift(False, float("nan"), None, "wasserstein").to_dict()["statistic"] is None
