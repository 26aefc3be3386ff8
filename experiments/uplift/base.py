"""What the uplift meta-learners share: their base models and input checks.

Each learner is a scikit-learn meta-estimator (parameters stored unchanged in ``__init__``,
learning in ``fit(X, treatment, y)``, learned state ending in ``_``) whose
``predict_uplift(X)`` returns τ̂(x) = E[Y | x, T = 1] − E[Y | x, T = 0] per row. Its
``estimator`` is the base model, cloned for each model fitted (:mod:`experiments.base_models`;
None: LightGBM, a classifier for a binary outcome, a regressor otherwise); nested
parameters go through ``set_params(estimator__n_estimators=...)``. ``categorical_features``
reach LightGBM as in :mod:`registry.training`; ``random_state`` seeds the default models.

Reference: Künzel, Sekhon, Bickel & Yu (2019), "Metalearners for estimating heterogeneous
treatment effects using machine learning", PNAS 116(10).

>>> import numpy as np
>>> X, t, y = check_fit_inputs(np.zeros((4, 2)), [0, 1, 0, 1], [0, 1, 1, 0])
>>> t.tolist(), is_binary(y)
([0, 1, 0, 1], True)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator

from experiments.base_models import base_model, fit_clone


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


class UpliftLearner(BaseEstimator):
    """Base of the S-, T- and X-learners: holds the base model and fits clones of it."""

    def __init__(
        self,
        estimator: BaseEstimator | None = None,
        categorical_features: Sequence[int] = (),
        random_state: int = 0,
    ):
        self.estimator = estimator
        self.categorical_features = categorical_features
        self.random_state = random_state

    def _fit_base_model(self, estimator, X, y, binary: bool, name: str = "estimator"):
        template = base_model(estimator, binary, self.random_state, name)
        return fit_clone(template, X, y, self.categorical_features)

    def predict_uplift(self, X) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError
