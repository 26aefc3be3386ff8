"""The X-learner: impute individual effects with the other group's model, then regress them.

Stage 1 fits μ₀ and μ₁ as the T-learner does (clones of ``estimator``). Stage 2 imputes
each row's effect with the *other* group's model — D = y − μ₀(x) for treated rows,
D = μ₁(x) − y for control rows — and fits τ₁ on the treated and τ₀ on the control
imputations (clones of the regressor ``effect_estimator``; None: the default LightGBM
regressor). The uplift blends them with the propensity g(x) = P(T = 1 | x):
τ̂(x) = g(x) τ₀(x) + (1 − g(x)) τ₁(x), so the estimate trained on the larger group gets more
weight. Logged data here are randomized, so g is the treated share (``propensity=None``)
or a given constant.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.random((4_000, 2))
>>> t = rng.integers(0, 2, 4_000)
>>> y = (rng.random(4_000) < 0.1 + 0.4 * t * (X[:, 0] > 0.5)).astype(int)
>>> from lightgbm import LGBMClassifier, LGBMRegressor
>>> learner = XLearner(
...     LGBMClassifier(n_estimators=50, verbose=-1), LGBMRegressor(n_estimators=50, verbose=-1)
... )
>>> tau = learner.fit(X, t, y).predict_uplift(X)
>>> bool(tau[X[:, 0] > 0.5].mean() > tau[X[:, 0] < 0.5].mean() + 0.2)
True

Reference: Künzel, Sekhon, Bickel & Yu (2019), "Metalearners for estimating heterogeneous
treatment effects using machine learning", PNAS 116(10).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator

from experiments.base_models import mean_outcome
from experiments.uplift.base import UpliftLearner, check_fit_inputs, is_binary


class XLearner(UpliftLearner):
    """Künzel et al.'s X-learner: outcome models, then effect models on imputed effects."""

    def __init__(
        self,
        estimator: BaseEstimator | None = None,
        effect_estimator: BaseEstimator | None = None,
        categorical_features: Sequence[int] = (),
        random_state: int = 0,
        propensity: float | None = None,
    ):
        super().__init__(estimator, categorical_features, random_state)
        self.effect_estimator = effect_estimator
        self.propensity = propensity

    def fit(self, X, treatment, y) -> XLearner:
        X, t, y = check_fit_inputs(X, treatment, y)
        if self.propensity is not None and not 0 < self.propensity < 1:
            raise ValueError(f"propensity: expected a number in (0, 1); got {self.propensity}")
        self.binary_outcome_ = is_binary(y)
        self.n_features_in_ = X.shape[1]
        treated, control = t == 1, t == 0
        binary = self.binary_outcome_
        mu1 = self._fit_base_model(self.estimator, X[treated], y[treated], binary)
        mu0 = self._fit_base_model(self.estimator, X[control], y[control], binary)
        imputed_treated = y[treated] - mean_outcome(mu0, X[treated])
        imputed_control = mean_outcome(mu1, X[control]) - y[control]
        effect, name = self.effect_estimator, "effect_estimator"
        self.model_treated_ = self._fit_base_model(effect, X[treated], imputed_treated, False, name)
        self.model_control_ = self._fit_base_model(effect, X[control], imputed_control, False, name)
        self.propensity_ = float(treated.mean() if self.propensity is None else self.propensity)
        return self

    def predict_uplift(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        g = self.propensity_
        return g * self.model_control_.predict(X) + (1 - g) * self.model_treated_.predict(X)
