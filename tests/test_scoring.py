"""Scoring through prepared LightGBM calls (liftgate/core/model.py, liftgate/core/scoring.py):
the same numbers as `Booster.predict`, row by row or as a matrix, and the expected values and
intervals as their arithmetic says. Equality, not closeness: every path ends in the same C++
predictor, and the arithmetic is the same NumPy operation on the same numbers."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from liftgate.core.contract import design_matrix
from liftgate.core.model import (
    ROW_BY_ROW_MAX,
    CalibrationTable,
    PreparedBooster,
    ScoringModel,
    predict_rows,
)
from liftgate.core.scoring import score_actions, score_batch

FEATURES = 6  # the last two categorical, like the contract's categories; the action after
ACTIONS = 30
COSTS = np.linspace(0.0, 0.3, ACTIONS)


def _design(rng: np.random.Generator, rows: int) -> np.ndarray:
    design = rng.normal(size=(rows, FEATURES + 1)) * 3
    design[:, FEATURES - 2 : FEATURES] = rng.integers(0, 4, size=(rows, 2))
    design[:, FEATURES] = rng.integers(0, ACTIONS, size=rows)
    return design


@pytest.fixture(scope="module")
def model() -> ScoringModel:
    rng = np.random.default_rng(0)
    design = _design(rng, 2_000)
    signal = design[:, 0] + (design[:, FEATURES] % 3) - design[:, FEATURES - 1]
    converted = (signal + rng.normal(size=len(design)) > 1).astype(float)
    value = np.abs(signal) * 10 + rng.normal(size=len(design))
    categorical = [FEATURES - 2, FEATURES - 1, FEATURES]
    params = {"num_leaves": 15, "min_data_in_leaf": 5, "verbose": -1, "seed": 0}

    def train(objective: str, label: np.ndarray) -> lgb.Booster:
        data = lgb.Dataset(design, label, categorical_feature=categorical)
        return lgb.train({**params, "objective": objective}, data, num_boost_round=40)

    conversion = train("binary", converted)
    probability = conversion.predict(design)
    calibration = CalibrationTable.fit(converted, probability, bins=8)
    return ScoringModel(
        conversion, train("regression", value), tuple(map(str, range(ACTIONS))), "v", calibration
    )


def _odd_rows(rng: np.random.Generator, rows: int) -> np.ndarray:
    """Rows with what serving can send the models: NaN, unseen and negative categories,
    values far outside the training range."""
    design = _design(rng, rows)
    design[rng.random(design.shape) < 0.15] = np.nan
    design[rng.random(rows) < 0.2, FEATURES - 1] = 9  # an unseen category
    design[rng.random(rows) < 0.1, FEATURES - 2] = -1
    design[rng.random(rows) < 0.1, 0] = 1e300
    design[:, FEATURES] = rng.integers(0, ACTIONS + 3, size=rows)  # and unseen actions
    return design


@pytest.mark.parametrize("rows", [1, 5, ROW_BY_ROW_MAX, ROW_BY_ROW_MAX + 1, 100])
def test_prepared_calls_equal_booster_predict(model: ScoringModel, rows: int) -> None:
    rng = np.random.default_rng(rows)
    design = _odd_rows(rng, rows)
    expected_p = model.conversion.predict(design)
    expected_v = model.order_value.predict(design)
    assert (PreparedBooster(model.conversion).predict(design) == expected_p).all()
    assert (predict_rows(model.order_value, design) == expected_v).all()
    probability, value = model.predict(design)
    assert (probability == expected_p).all()
    assert (value == np.maximum(expected_v, 0.0)).all()


@pytest.mark.parametrize("candidates", [1, 4, ROW_BY_ROW_MAX])
def test_a_decisions_candidates_row_by_row_equal_the_matrix(model, candidates: int) -> None:
    rng = np.random.default_rng(candidates)
    for _ in range(20):
        features = _odd_rows(rng, 1)[0, :FEATURES]
        codes = np.sort(rng.choice(ACTIONS, candidates, replace=False))
        by_row = model.predict_candidates(features, codes.tolist())
        by_matrix = model.predict(design_matrix(features, codes))
        for mine, theirs in zip(by_row, by_matrix, strict=True):
            assert (mine == theirs).all()


def test_a_design_of_other_columns_is_refused_not_read_past(model: ScoringModel) -> None:
    with pytest.raises(ValueError, match="columns"):
        model.predict(np.zeros((3, FEATURES)))
    with pytest.raises(ValueError, match="features"):
        model.predict_candidates(np.zeros(FEATURES + 1), [0, 1])
    with pytest.raises(ValueError, match="codes"):
        model.predict_candidates(np.zeros(FEATURES), list(range(ROW_BY_ROW_MAX + 1)))


@pytest.mark.parametrize("candidates", [3, ROW_BY_ROW_MAX + 5])
def test_scores_are_the_arithmetic_of_the_predictions(model, candidates: int) -> None:
    """Expected value = p × order value − cost, its interval the calibration bin's, on
    either path; a batch of requests scores each as alone."""
    rng = np.random.default_rng(7)
    features = _odd_rows(rng, 1)[0, :FEATURES]
    codes = np.sort(rng.choice(ACTIONS, candidates, replace=False))
    scores = score_actions(model, features, codes, COSTS)
    p, v = model.predict(design_matrix(features, codes))
    edges, low, high = (np.asarray(t) for t in model.calibration.to_dict().values())
    bins = np.minimum(np.searchsorted(edges, p), len(edges) - 1)
    assert (scores.probability == p).all() and (scores.order_value == v).all()
    assert (scores.expected_value == p * v - COSTS[codes]).all()
    assert (scores.low == low[bins] * v - COSTS[codes]).all()
    assert (scores.high == high[bins] * v - COSTS[codes]).all()
    (batched, *_) = score_batch(model, [(features, codes), (features, codes[:1])], COSTS)
    assert (batched.expected_value == scores.expected_value).all()


def test_the_interval_of_any_probability_is_a_bins() -> None:
    table = CalibrationTable((0.2, 0.5, 1.0), (0.0, 0.1, 0.4), (0.3, 0.6, 0.9))
    low, high = table.interval(np.array([0.0, 0.2, 0.21, 1.0, np.nan]))
    assert low.tolist() == [0.0, 0.0, 0.1, 0.4, 0.4]  # NaN: the last bin, as before
    assert high.tolist() == [0.3, 0.3, 0.6, 0.9, 0.9]
