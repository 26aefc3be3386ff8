"""The drift job's pure parts: windows, and decision-log rows as training-profile columns."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pytest

from configs.loader import load_config
from drift.compare import ColumnDrift
from drift.job import (
    DriftJobResult,
    Window,
    column_types,
    decision_frame,
    parse_window,
    select_window,
)
from experiments.logs.schema import DecisionRecord, to_table
from liftgate.core.catalogue import ActionCatalogue
from liftgate.core.errors import InputError
from liftgate.core.vocabulary import EPSILON_GREEDY

CONFIG = load_config()
CATALOGUE = ActionCatalogue(CONFIG.actions)
NOON = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)


def decision(i: int, **overrides) -> DecisionRecord:
    record = DecisionRecord(
        decision_id=f"d{i}",
        ts=NOON + dt.timedelta(minutes=i),
        customer_id=f"c{i}",
        features=[float(i), 1.0, 2.0],
        contract_version="1+abc",
        actions=["email_10", "no_action", "push_reminder"],
        scores=[3.0, 2.0, 1.0],
        probabilities=[0.3, 0.1, 0.2],
        chosen="no_action",
        propensity=0.9,
        policy=EPSILON_GREEDY,
        model_name="liftgate-scorer",
        model_version="2",
        model_alias="champion",
        experiment=None,
        arm=None,
        fallback=False,
        fallback_reason=None,
        cold_start=False,
        latency_ms=1.0,
        trace_id="t",
        request_id=None,
    )
    return replace(record, **overrides)


def table(records: list[DecisionRecord]) -> pa.Table:
    return to_table(DecisionRecord, records)


@pytest.mark.parametrize(
    ("text", "seconds", "rows"),
    [
        ("30m", 1_800.0, None),
        ("1h", 3_600.0, None),
        ("1d", 86_400.0, None),
        ("90s", 90.0, None),
        ("1.5h", 5_400.0, None),
        ("5000", None, 5_000),
        ("5000 rows", None, 5_000),
        ("10_000rows", None, 10_000),
        ("1 row", None, 1),
    ],
)
def test_parse_window(text: str, seconds: float | None, rows: int | None) -> None:
    window = parse_window(text)
    assert (window.seconds, window.rows) == (seconds, rows)


@pytest.mark.parametrize("text", ["", "soon", "0h", "0", "-1h", "1y", "h1"])
def test_bad_windows_are_refused(text: str) -> None:
    with pytest.raises(InputError, match="expected a time span") as refused:
        parse_window(text)
    assert refused.value.parameter == "window"  # the command line names its flag


def test_features_are_named_after_the_profile_and_fallbacks_dropped() -> None:
    nan = float("nan")
    records = [decision(i) for i in range(4)]
    records.append(decision(4, fallback=True, probabilities=[nan, nan, nan], model_version=""))
    frame = decision_frame(table(records), ["a", "b", "c"], CATALOGUE, "chosen")
    assert list(frame.columns) == ["a", "b", "c", "action", "prediction"]
    assert frame["a"].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert frame["prediction"].tolist() == [0.1] * 4  # the chosen action's probability
    assert frame["action"].tolist() == [float(CATALOGUE.index["no_action"])] * 4


def test_uniform_prediction_draws_each_candidate_equally_often() -> None:
    records = [decision(i) for i in range(3_000)]
    frame = decision_frame(table(records), ["a", "b", "c"], CATALOGUE, "uniform", seed=1)
    shares = frame["prediction"].value_counts(normalize=True).sort_index()
    assert shares.index.tolist() == [0.1, 0.2, 0.3]
    assert np.allclose(shares.to_numpy(), 1 / 3, atol=0.03)
    codes = {CATALOGUE.index[a] for a in ["email_10", "no_action", "push_reminder"]}
    assert set(frame["action"].astype(int)) == codes
    # the action and the probability belong together
    by_action = frame.groupby("action")["prediction"].unique()
    assert by_action[float(CATALOGUE.index["email_10"])].tolist() == [0.3]
    again = decision_frame(table(records), ["a", "b", "c"], CATALOGUE, "uniform", seed=1)
    assert again.equals(frame)


def test_feature_vectors_of_another_length_are_refused() -> None:
    records = [decision(0), decision(1, features=[1.0, 2.0])]
    with pytest.raises(ValueError, match="feature vectors of length \\[2\\]"):
        decision_frame(table(records), ["a", "b", "c"], CATALOGUE)
    with pytest.raises(InputError, match="expected one of uniform, chosen") as refused:
        decision_frame(table(records), ["a", "b", "c"], CATALOGUE, "best")
    assert refused.value.parameter == "prediction_action"


def test_an_empty_log_gives_an_empty_frame() -> None:
    frame = decision_frame(table([]), ["a"], CATALOGUE)
    assert list(frame.columns) == ["a", "action", "prediction"] and frame.empty


def test_window_selects_the_version_and_the_span_before_now() -> None:
    records = [decision(i) for i in range(10)]  # minutes 0..9 after noon
    records += [decision(10 + i, model_version="1") for i in range(5)]
    decisions = table(records[::-1])  # order in the log does not matter
    now = NOON + dt.timedelta(minutes=8)  # decisions at minutes 8 and 9 are after "now"
    last_5m = select_window(decisions, parse_window("5m"), "liftgate-scorer", "2", now)
    assert last_5m["decision_id"].to_pylist() == ["d3", "d4", "d5", "d6", "d7"]
    last_3 = select_window(decisions, Window("3", rows=3), "liftgate-scorer", "2", now)
    assert last_3["decision_id"].to_pylist() == ["d5", "d6", "d7"]
    other = select_window(decisions, Window("1d", seconds=86_400), "liftgate-scorer", "1", now)
    assert other.num_rows == 0  # version 1 served after "now"


def test_types_come_from_the_contract() -> None:
    types = column_types(["recency_days", "device", "cart_abandoned_7d", "unknown"], CONFIG)
    assert types == {
        "recency_days": "numerical",
        "device": "categorical",
        "cart_abandoned_7d": "categorical",
        "unknown": "numerical",
    }


def test_result_document_has_what_the_guard_reads() -> None:
    column = ColumnDrift(False, 0.01, None, "wasserstein", 0.1)
    result = DriftJobResult(
        model={"name": "m", "version": "2", "alias": "champion"},
        window={"spec": "1h"},
        rows=900,
        reference_rows=20_000,
        dataset_drift=False,
        drift_share=0.0,
        drifted_columns=[],
        prediction_drift=ColumnDrift(True, 0.2, None, "wasserstein", 0.1),
        columns={"a": column},
        html=None,
        threshold=0.5,
        prediction_action="uniform",
        rows_tested=900,
    )
    document = result.to_dict()
    assert {
        "model",
        "window",
        "rows",
        "dataset_drift",
        "drift_share",
        "drifted_columns",
        "prediction_drift",
        "columns",
        "html",
    } <= set(document)
    assert document["prediction_drift"]["method"] == "wasserstein"
    assert result.drifted  # the prediction drifted
