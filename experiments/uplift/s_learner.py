"""The S-learner: one model of the outcome with the treatment as a feature.

A single model μ(x, t), a clone of ``estimator``, is fitted on the features plus the
treatment indicator; the uplift is μ(x, 1) − μ(x, 0). It pools all the data, so it is
sample-efficient, but a regularized model may ignore a weak treatment feature and shrink
the uplift towards zero.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> X = rng.random((4_000, 2))
>>> t = rng.integers(0, 2, 4_000)
>>> y = (rng.random(4_000) < 0.1 + 0.4 * t * (X[:, 0] > 0.5)).astype(int)
>>> from lightgbm import LGBMClassifier
>>> learner = SLearner(LGBMClassifier(n_estimators=50, verbose=-1))
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


class SLearner(UpliftLearner):
    """μ(x, t) with t as the last feature; τ̂(x) = μ(x, 1) − μ(x, 0)."""

    def fit(self, X, treatment, y) -> SLearner:
        X, t, y = check_fit_inputs(X, treatment, y)
        self.binary_outcome_ = is_binary(y)
        self.n_features_in_ = X.shape[1]
        self.model_ = self._fit_base_model(
            self.estimator, np.column_stack([X, t]), y, self.binary_outcome_
        )
        return self

    def predict_uplift(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        ones, zeros = np.ones(len(X)), np.zeros(len(X))
        treated = mean_outcome(self.model_, np.column_stack([X, ones]))
        control = mean_outcome(self.model_, np.column_stack([X, zeros]))
        return treated - control
