"""The meta-estimators over a base model (experiments/base_models.py) follow scikit-learn's
estimator contract: the S-, T- and X-learners and the cross-fitted OPE reward model."""

from __future__ import annotations

import joblib
import numpy as np
import pytest
from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.utils.validation import check_is_fitted

from experiments.base_models import base_model, default_lightgbm, fit_clone, mean_outcome
from experiments.ope.reward_model import CrossFittedRewardModel
from experiments.uplift.learners import SLearner, TLearner, XLearner

N, CATEGORICAL = 600, [2]


def fast(classifier: bool) -> LGBMClassifier | LGBMRegressor:
    return default_lightgbm(classifier).set_params(n_estimators=10, min_child_samples=20)


# name: (unfitted meta-estimator, predict method, predicted shape for N rows)
CASES = {
    "s": (lambda: SLearner(fast(True), CATEGORICAL), "predict_uplift", (N,)),
    "t": (lambda: TLearner(fast(True), CATEGORICAL), "predict_uplift", (N,)),
    "x": (lambda: XLearner(fast(True), fast(False), CATEGORICAL), "predict_uplift", (N,)),
    "reward": (lambda: CrossFittedRewardModel(fast(True), 3, CATEGORICAL), "predict", (N, 2)),
}


def data():
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.random((N, 2)), rng.integers(0, 3, N)])
    t = rng.integers(0, 2, N)
    y = (rng.random(N) < 0.2 + 0.3 * t * X[:, 0]).astype(float)
    return X, t, y


def plain_params(estimator: BaseEstimator) -> dict:
    """get_params(deep=True) without the estimator objects (compared by their own params)."""
    return {k: v for k, v in estimator.get_params().items() if not isinstance(v, BaseEstimator)}


@pytest.mark.parametrize("name", CASES)
def test_meta_estimator_contract(name):
    make, predict, shape = CASES[name]
    model = make()
    assert not [k for k in vars(model) if k.endswith("_")]  # nothing learned in __init__
    assert "estimator__num_leaves" in model.get_params()  # the base model's, nested
    assert plain_params(clone(model)) == plain_params(model)
    rebuilt = type(model)().set_params(**model.get_params(deep=False))
    assert plain_params(rebuilt) == plain_params(model)
    model.set_params(estimator__n_estimators=12)
    assert model.estimator.n_estimators == 12

    X, t, y = data()
    X_before = X.copy()
    assert model.fit(X, t, y) is model
    np.testing.assert_array_equal(X, X_before)
    with pytest.raises(NotFittedError):  # fit fitted clones, not the given estimator
        check_is_fitted(model.estimator)
    first = getattr(model, predict)(X)
    assert first.shape == shape and np.isfinite(first).all()
    state = joblib.hash(model)
    getattr(model, predict)(X[:7])
    assert joblib.hash(model) == state  # predict does not mutate
    np.testing.assert_array_equal(getattr(model, predict)(X), first)


def test_default_is_lightgbm_with_todays_settings_and_any_estimator_works():
    X, t, y = data()
    learner = TLearner().fit(X[:, :2], t, y)
    assert isinstance(learner.model_treated_, LGBMClassifier)
    settings = learner.model_treated_.get_params()
    assert (settings["n_estimators"], settings["num_leaves"]) == (200, 15)
    assert (settings["min_child_samples"], settings["reg_lambda"]) == (100, 10.0)
    assert settings["learning_rate"] == pytest.approx(0.05)
    linear = XLearner(LogisticRegression(), LinearRegression()).fit(X[:, :2], t, y)
    assert linear.predict_uplift(X[:, :2]).shape == (N,)
    reward = CrossFittedRewardModel(LinearRegression(), n_folds=2).fit(X[:, :2], t, X[:, 0])
    assert reward.objective_ == "regression" and isinstance(reward.models_[0], LinearRegression)


def test_a_classifier_needs_a_binary_outcome():
    X, t, _ = data()
    continuous = X[:, 0]
    with pytest.raises(ValueError, match="estimator: LGBMClassifier is a classifier"):
        SLearner(fast(True)).fit(X, t, continuous)
    with pytest.raises(ValueError, match="effect_estimator: LGBMClassifier"):
        XLearner(fast(True), fast(True)).fit(X, t, (continuous > 0.5).astype(float))
    assert isinstance(base_model(None, binary=False, random_state=0), LGBMRegressor)


def test_mean_outcome_is_the_probability_of_one_even_with_a_single_class():
    X = np.random.default_rng(0).random((200, 2))
    for label in (0.0, 1.0):
        model = fit_clone(fast(True), X, np.full(200, label))
        np.testing.assert_allclose(mean_outcome(model, X[:5]), label, atol=1e-6)
