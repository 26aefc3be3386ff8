"""A cross-fitted LightGBM reward model q̂(x, a) for the direct and doubly robust estimators.

The model regresses the reward on the context features and the action (a categorical
column, as in :mod:`registry.training`). Cross-fitting splits the log into ``n_folds``
folds, fits one booster per fold on the other folds and predicts q̂(x, a) for every action
on the held-out fold, so no row's estimate uses its own reward: the DR estimator keeps its
guarantees without a separate holdout (Chernozhukov et al. 2018). Binary rewards use the
``binary`` objective (q̂ is a probability), others squared error. ``predict`` on new rows
averages the fold models.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x = rng.random((2_000, 1))
>>> a = rng.integers(0, 2, 2_000)
>>> r = (rng.random(2_000) < np.where(a == 1, x[:, 0], 0.1)).astype(float)
>>> model = CrossFittedRewardModel(n_folds=2, num_boost_round=50).fit(x, a, r, n_actions=2)
>>> model.oof_.shape, model.objective_
((2000, 2), 'binary')
>>> bool(model.oof_[x[:, 0] > 0.8, 1].mean() > model.oof_[x[:, 0] > 0.8, 0].mean())
True

References: Dudík, Langford & Li (2011), "Doubly Robust Policy Evaluation and Learning",
ICML; Chernozhukov et al. (2018), "Double/debiased machine learning for treatment and
structural parameters", The Econometrics Journal.
"""

from __future__ import annotations

from collections.abc import Sequence

import lightgbm as lgb
import numpy as np
import pandas as pd

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


class CrossFittedRewardModel:
    """Out-of-fold q̂(x, a) for every row and action from ``n_folds`` LightGBM boosters."""

    def __init__(
        self,
        n_folds: int = 3,
        num_boost_round: int = 200,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        min_data_in_leaf: int = 100,
        lambda_l2: float = 10.0,
        categorical_features: Sequence[int] = (),
        num_threads: int = 2,
        random_state: int = 0,
    ):
        self.n_folds = n_folds
        self.num_boost_round = num_boost_round
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_data_in_leaf = min_data_in_leaf
        self.lambda_l2 = lambda_l2
        self.categorical_features = categorical_features
        self.num_threads = num_threads
        self.random_state = random_state

    def _params(self, objective: str) -> dict:
        return {
            "objective": objective,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_data_in_leaf,
            "lambda_l2": self.lambda_l2,
            "seed": self.random_state,
            "deterministic": True,
            "num_threads": self.num_threads,
            "verbose": -1,
        }

    @staticmethod
    def _design(x: np.ndarray, action: np.ndarray | int) -> np.ndarray:
        codes = np.broadcast_to(np.asarray(action, dtype=np.float64), (len(x),))
        return np.column_stack([x, codes])

    def _predict_all(self, booster: lgb.Booster, x: np.ndarray) -> np.ndarray:
        return np.column_stack(
            [booster.predict(self._design(x, a)) for a in range(self.n_actions_)]
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
        if self.n_folds < 2:
            raise ValueError(f"n_folds must be >= 2; got {self.n_folds}")
        if len(reward) < self.n_folds:
            raise ValueError(f"need at least {self.n_folds} rows to cross-fit")
        self.n_actions_ = int(n_actions if n_actions is not None else action.max() + 1)
        self.objective_ = "binary" if np.isin(reward, (0.0, 1.0)).all() else "regression"
        categorical = [*self.categorical_features, x.shape[1]]
        rng = np.random.default_rng(self.random_state)
        self.folds_ = rng.permutation(len(reward)) % self.n_folds
        self.oof_ = np.empty((len(reward), self.n_actions_))
        self.models_ = []
        for fold in range(self.n_folds):
            held_out = self.folds_ == fold
            data = lgb.Dataset(
                self._design(x[~held_out], action[~held_out]),
                reward[~held_out],
                categorical_feature=categorical,
                free_raw_data=True,
            )
            booster = lgb.train(
                self._params(self.objective_), data, num_boost_round=self.num_boost_round
            )
            self.models_.append(booster)
            self.oof_[held_out] = self._predict_all(booster, x[held_out])
        return self

    def fit_predict(self, X, action, reward, n_actions: int | None = None) -> np.ndarray:
        """Fit and return the out-of-fold (n × K) estimated rewards."""
        return self.fit(X, action, reward, n_actions).oof_

    def predict(self, X: np.ndarray) -> np.ndarray:
        """(rows × K) estimated rewards for new rows: the mean of the fold models."""
        x = np.asarray(X, dtype=np.float64)
        return np.mean([self._predict_all(m, x) for m in self.models_], axis=0)
