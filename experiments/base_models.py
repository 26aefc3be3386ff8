"""The base models of the meta-estimators: any scikit-learn estimator, LightGBM by default.

The uplift learners (:mod:`experiments.uplift`) and the OPE reward model
(:class:`experiments.ope.reward_model.CrossFittedRewardModel`) take an ``estimator``
parameter and fit a :func:`sklearn.base.clone` of it for each model they need, as
scikit-learn's meta-estimators do (Buitinck et al. 2013). ``estimator=None`` means
:func:`default_lightgbm`: a classifier for a binary outcome, a regressor otherwise. A
classifier's mean outcome is its probability of the class 1; categorical feature indices
reach LightGBM's ``fit(categorical_feature=...)`` as in :mod:`registry.training`, other
estimators see the codes as numbers.

>>> import numpy as np
>>> X = np.random.default_rng(0).random((1_000, 2))
>>> y = (X[:, 0] > 0.5).astype(float)
>>> template = base_model(None, binary=True, random_state=0)
>>> type(template).__name__, template.get_params()["num_leaves"]
('LGBMClassifier', 15)
>>> model = fit_clone(template, X, y)
>>> model is template, "booster_" in vars(template)
(False, False)
>>> bool(mean_outcome(model, np.array([[0.9, 0.5]]))[0] > 0.9)
True

Reference: Buitinck et al. (2013), "API design for machine learning software: experiences
from the scikit-learn project", ECML PKDD workshop.
"""

from __future__ import annotations

from collections.abc import Sequence

import lightgbm as lgb
import numpy as np
from sklearn.base import BaseEstimator, clone, is_classifier


def default_lightgbm(classifier: bool, random_state: int = 0) -> lgb.LGBMModel:
    """The LightGBM base model the meta-estimators use when ``estimator`` is None."""
    cls = lgb.LGBMClassifier if classifier else lgb.LGBMRegressor
    return cls(
        n_estimators=200,
        learning_rate=0.05,
        num_leaves=15,
        min_child_samples=100,
        reg_lambda=10.0,
        n_jobs=2,
        random_state=random_state,
        deterministic=True,
        verbose=-1,
    )


def base_model(
    estimator: BaseEstimator | None, binary: bool, random_state: int, name: str = "estimator"
) -> BaseEstimator:
    """``estimator`` (parameter ``name``), or the default for a binary or other outcome."""
    if estimator is None:
        return default_lightgbm(classifier=binary, random_state=random_state)
    if is_classifier(estimator) and not binary:
        raise ValueError(
            f"{name}: {type(estimator).__name__} is a classifier, the outcome is not binary 0/1"
        )
    return estimator


def fit_clone(
    estimator: BaseEstimator, X: np.ndarray, y: np.ndarray, categorical: Sequence[int] = ()
) -> BaseEstimator:
    """An unfitted copy of ``estimator`` fitted on (X, y); ``estimator`` is left as it was."""
    model = clone(estimator)
    if isinstance(model, lgb.LGBMModel) and len(categorical):
        return model.fit(X, y, categorical_feature=list(categorical))
    return model.fit(X, y)


def mean_outcome(model: BaseEstimator, X: np.ndarray) -> np.ndarray:
    """E[Y | X]: a classifier's probability of the class 1, a regressor's prediction."""
    if not is_classifier(model):
        return model.predict(X)
    proba = model.predict_proba(X)
    return proba[:, np.flatnonzero(model.classes_ == 1)].sum(axis=1)
