"""The T-learner: separate outcome models for the treated and the control group.

μ₁ is fitted on treated rows and μ₀ on control rows; the uplift is μ₁(x) − μ₀(x). Each
model sees only its group, so the difference carries both models' errors; it does well
when the two response surfaces differ a lot.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.random((4_000, 2))
>>> t = rng.integers(0, 2, 4_000)
>>> y = (rng.random(4_000) < 0.1 + 0.4 * t * (X[:, 0] > 0.5)).astype(int)
>>> from lightgbm import LGBMClassifier
>>> learner = TLearner(LGBMClassifier(n_estimators=50, verbose=-1))
>>> tau = learner.fit(X, t, y).predict_uplift(X)
>>> bool(tau[X[:, 0] > 0.5].mean() > tau[X[:, 0] < 0.5].mean() + 0.2)
True

Reference: Künzel, Sekhon, Bickel & Yu (2019), "Metalearners for estimating heterogeneous
treatment effects using machine learning", PNAS 116(10).
"""

from __future__ import annotations

import numpy as np

from experiments.base_models import mean_outcome
from experiments.uplift.base import UpliftLearner, check_fit_inputs, is_binary


class TLearner(UpliftLearner):
    """τ̂(x) = μ₁(x) − μ₀(x), one clone of ``estimator`` per group."""

    def fit(self, X, treatment, y) -> TLearner:
        X, t, y = check_fit_inputs(X, treatment, y)
        self.binary_outcome_ = is_binary(y)
        self.n_features_in_ = X.shape[1]
        binary = self.binary_outcome_
        self.model_treated_ = self._fit_base_model(self.estimator, X[t == 1], y[t == 1], binary)
        self.model_control_ = self._fit_base_model(self.estimator, X[t == 0], y[t == 0], binary)
        return self

    def predict_uplift(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        return mean_outcome(self.model_treated_, X) - mean_outcome(self.model_control_, X)
