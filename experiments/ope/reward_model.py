"""A cross-fitted reward model q̂(x, a) for the direct and doubly robust estimators.

The model regresses the reward on the context features and the action (a categorical
column, as in :mod:`registry.training`). Cross-fitting splits the log into ``n_folds``
shuffled folds (scikit-learn's ``KFold``), fits a clone of ``estimator`` on all but each
fold and predicts q̂(x, a) for every action on the held-out fold, so no row's estimate
uses its own reward: the DR estimator keeps its guarantees without a separate holdout
(Chernozhukov et al. 2018). ``estimator`` is any scikit-learn regressor, or a classifier
for a binary reward (q̂ is then its probability of 1); None means LightGBM
(:func:`experiments.base_models.default_lightgbm`), a classifier when the reward is binary
and a regressor otherwise. ``predict`` on new rows averages the fold models.

>>> import numpy as np
>>> from lightgbm import LGBMClassifier
>>> rng = np.random.default_rng(0)
>>> x = rng.random((2_000, 1))
>>> a = rng.integers(0, 2, 2_000)
>>> r = (rng.random(2_000) < np.where(a == 1, x[:, 0], 0.1)).astype(float)
>>> model = CrossFittedRewardModel(LGBMClassifier(n_estimators=50, verbose=-1), n_folds=2)
>>> model.fit(x, a, r, n_actions=2).oof_.shape, model.objective_
((2000, 2), 'binary')
>>> bool(model.oof_[x[:, 0] > 0.8, 1].mean() > model.oof_[x[:, 0] > 0.8, 0].mean())
True

References: Dudík, Langford & Li (2011), "Doubly Robust Policy Evaluation and Learning",
ICML; Chernozhukov et al. (2018), "Double/debiased machine learning for treatment and
structural parameters", The Econometrics Journal.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.model_selection import KFold

from experiments.base_models import base_model, fit_clone, mean_outcome
from liftgate.core.contract import FeatureContract


def contract_features(frame: pd.DataFrame, contract: FeatureContract) -> tuple[np.ndarray, list]:
    """The contract's features of a log (absent ones take defaults) and categorical indices."""
    matrix, _ = contract.transform({c: frame[c] for c in frame.columns}, len(frame))
    return matrix, contract.categorical_indices


def column_features(frame: pd.DataFrame, columns: Sequence[str]) -> tuple[np.ndarray, list]:
    """Named columns as floats; non-numeric columns become categorical codes."""
    matrix = np.empty((len(frame), len(columns)))
    categorical = []
    for j, name in enumerate(columns):
        values = frame[name]
        if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
            matrix[:, j] = values.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            codes = pd.Categorical(values.astype("string")).codes.astype(np.float64)
            codes[codes < 0] = np.nan
            matrix[:, j] = codes
            categorical.append(j)
    return matrix, categorical


class CrossFittedRewardModel(BaseEstimator):
    """Out-of-fold q̂(x, a) for every row and action from ``n_folds`` clones of ``estimator``.

    ``random_state`` shuffles the folds and seeds the default LightGBM models.
    """

    def __init__(
        self,
        estimator: BaseEstimator | None = None,
        n_folds: int = 3,
        categorical_features: Sequence[int] = (),
        random_state: int = 0,
    ):
        self.estimator = estimator
        self.n_folds = n_folds
        self.categorical_features = categorical_features
        self.random_state = random_state

    @staticmethod
    def _design(x: np.ndarray, action: np.ndarray | int) -> np.ndarray:
        codes = np.broadcast_to(np.asarray(action, dtype=np.float64), (len(x),))
        return np.column_stack([x, codes])

    def _predict_all(self, model: BaseEstimator, x: np.ndarray) -> np.ndarray:
        return np.column_stack(
            [mean_outcome(model, self._design(x, a)) for a in range(self.n_actions_)]
        )

    def fit(
        self,
        X: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        n_actions: int | None = None,
    ) -> CrossFittedRewardModel:
        x = np.asarray(X, dtype=np.float64).reshape(len(reward), -1)
        action = np.asarray(action, dtype=np.int64)
        reward = np.asarray(reward, dtype=np.float64)
        folds = KFold(self.n_folds, shuffle=True, random_state=self.random_state)
        self.n_actions_ = int(n_actions if n_actions is not None else action.max() + 1)
        binary = bool(np.isin(reward, (0.0, 1.0)).all())
        self.objective_ = "binary" if binary else "regression"
        template = base_model(self.estimator, binary, self.random_state)
        categorical = [*self.categorical_features, x.shape[1]]
        self.folds_ = np.empty(len(reward), dtype=np.int64)
        self.oof_ = np.empty((len(reward), self.n_actions_))
        self.models_ = []
        for fold, (train, held_out) in enumerate(folds.split(x)):
            self.folds_[held_out] = fold
            design = self._design(x[train], action[train])
            model = fit_clone(template, design, reward[train], categorical)
            self.models_.append(model)
            self.oof_[held_out] = self._predict_all(model, x[held_out])
        return self

    def fit_predict(self, X, action, reward, n_actions: int | None = None) -> np.ndarray:
        """Fit and return the out-of-fold (n × K) estimated rewards."""
        return self.fit(X, action, reward, n_actions).oof_

    def predict(self, X: np.ndarray) -> np.ndarray:
        """(rows × K) estimated rewards for new rows: the mean of the fold models."""
        x = np.asarray(X, dtype=np.float64)
        return np.mean([self._predict_all(m, x) for m in self.models_], axis=0)
