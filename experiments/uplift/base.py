"""What the uplift meta-learners share: LightGBM base models and input checks.

Each learner is a scikit-learn estimator (parameters stored unchanged in ``__init__``,
learning in ``fit(X, treatment, y)``, learned state ending in ``_``) whose
``predict_uplift(X)`` returns τ̂(x) = E[Y | x, T = 1] − E[Y | x, T = 0] per row. Base models
are LightGBM (classifiers for a binary outcome, regressors otherwise), with categorical
feature indices passed through as in :mod:`registry.training`.

Reference: Künzel, Sekhon, Bickel & Yu (2019), "Metalearners for estimating heterogeneous
treatment effects using machine learning", PNAS 116(10).

>>> import numpy as np
>>> X, t, y = check_fit_inputs(np.zeros((4, 2)), [0, 1, 0, 1], [0, 1, 1, 0])
>>> t.tolist(), is_binary(y)
([0, 1, 0, 1], True)
"""

from __future__ import annotations

from collections.abc import Sequence

import lightgbm as lgb
import numpy as np
from sklearn.base import BaseEstimator


def is_binary(y: np.ndarray) -> bool:
    return bool(np.isin(y, (0, 1)).all())


def check_fit_inputs(X, treatment, y) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    t = np.asarray(treatment)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X: expected a 2-d array; got shape {X.shape}")
    if not len(X) == len(t) == len(y):
        raise ValueError(f"X, treatment, y: lengths differ ({len(X)}, {len(t)}, {len(y)})")
    if not np.isin(t, (0, 1)).all():
        raise ValueError("treatment: expected binary values 0/1")
    t = t.astype(np.int64)
    if t.min() == t.max():
        raise ValueError("treatment: both groups (0 and 1) must be present")
    if not np.isfinite(y).all():
        raise ValueError("y: contains NaN or infinite values")
    return X, t, y


class LightGBMUpliftLearner(BaseEstimator):
    """Base of the S-, T- and X-learners: holds the LightGBM parameters."""

    def __init__(
        self,
        n_estimators: int = 200,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        min_child_samples: int = 100,
        reg_lambda: float = 10.0,
        categorical_features: Sequence[int] = (),
        n_jobs: int = 2,
        random_state: int = 0,
    ):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.reg_lambda = reg_lambda
        self.categorical_features = categorical_features
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _model(self, classifier: bool):
        cls = lgb.LGBMClassifier if classifier else lgb.LGBMRegressor
        return cls(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            reg_lambda=self.reg_lambda,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
            deterministic=True,
            verbose=-1,
        )

    def _fit_model(self, X, y, classifier: bool, categorical: Sequence[int] | None = None):
        cat = list(self.categorical_features if categorical is None else categorical)
        return self._model(classifier).fit(X, y, categorical_feature=cat or "auto")

    @staticmethod
    def _mean_outcome(model, X) -> np.ndarray:
        if hasattr(model, "predict_proba"):
            return model.predict_proba(X)[:, 1]
        return model.predict(X)

    def predict_uplift(self, X) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError
