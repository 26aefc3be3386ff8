"""Training the scoring models on logged decisions: pure functions, no MLflow.

`train_scorer` splits the log by decision time (the most recent rows validate), fits the
LightGBM conversion and order-value models and a logistic-regression baseline, and returns
them with their validation metrics. `registry.training_run` logs the result to MLflow.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, mean_absolute_error, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from configs.loader import LiftgateConfig
from configs.schema import BoosterParams, ScorerSpec
from liftgate.core.catalogue import ActionCatalogue
from liftgate.core.contract import (
    FeatureContract,
    design_matrix,
    model_categorical_indices,
    model_feature_names,
)
from liftgate.core.errors import InputError
from liftgate.core.model import CalibrationTable, ScoringModel, predict_rows

REQUIRED_COLUMNS = ("decision_ts", "action", "converted", "revenue")
#: Converted and not-converted rows needed among both the training and the validation rows:
#: below it the validation AUC, the calibration and the order-value model rest on a handful
#: of rows, or cannot be computed at all (LightGBM fails on an empty order-value fit).
MIN_ROWS_PER_CLASS = 10


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """ECE over equal-mass bins: Σ_b (n_b / n) · |mean(y_b) − mean(p_b)| (Naeini et al. 2015)."""
    order = np.argsort(p, kind="stable")
    error = 0.0
    for chunk in np.array_split(order, bins):
        if len(chunk):
            error += len(chunk) / len(p) * abs(y[chunk].mean() - p[chunk].mean())
    return float(error)


def data_fingerprint(frame: pd.DataFrame) -> str:
    """Content hash of a training table (row order and values), independent of file layout."""
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(hashed.tobytes()).hexdigest()[:16]


def _booster_params(params: BoosterParams, objective: str, seed: int) -> dict:
    return {
        "objective": objective,
        "num_leaves": params.num_leaves,
        "learning_rate": params.learning_rate,
        "min_data_in_leaf": params.min_data_in_leaf,
        "feature_fraction": params.feature_fraction,
        "lambda_l2": params.lambda_l2,
        "seed": seed,
        "deterministic": True,
        "num_threads": 2,
        "verbose": -1,
    }


@dataclass
class Dataset:
    """A logged table turned into design matrices, split by decision time."""

    design: np.ndarray
    converted: np.ndarray
    revenue: np.ndarray
    action: np.ndarray
    is_valid: np.ndarray
    repairs: dict = field(default_factory=dict)

    @property
    def train(self) -> np.ndarray:
        return ~self.is_valid


def build_dataset(
    logged: pd.DataFrame,
    contract: FeatureContract,
    catalogue: ActionCatalogue,
    validation_fraction: float,
) -> Dataset:
    missing = [c for c in REQUIRED_COLUMNS if c not in logged.columns]
    if missing:
        raise InputError(f"logged data lacks required columns {missing}")
    logged = logged.sort_values("decision_ts", kind="stable").reset_index(drop=True)
    features, repairs = contract.transform({c: logged[c] for c in logged.columns}, len(logged))
    action = catalogue.codes(logged["action"])
    n_valid = validation_rows(len(logged), validation_fraction)
    is_valid = np.zeros(len(logged), dtype=bool)
    is_valid[-n_valid:] = True
    return Dataset(
        design=design_matrix(features, action),
        converted=logged["converted"].to_numpy().astype(np.float64),
        revenue=logged["revenue"].to_numpy().astype(np.float64),
        action=action,
        is_valid=is_valid,
        repairs=repairs.to_dict(),
    )


def classification_metrics(
    y: np.ndarray, p: np.ndarray, action: np.ndarray, action_ids: tuple[str, ...]
) -> dict[str, float]:
    metrics = {
        "auc": float(roc_auc_score(y, p)),
        "log_loss": float(log_loss(y, np.clip(p, 1e-7, 1 - 1e-7))),
        "calibration_error": expected_calibration_error(y, p),
        "mean_prediction": float(p.mean()),
        "base_rate": float(y.mean()),
    }
    for k, action_id in enumerate(action_ids):
        rows = action == k
        if rows.any() and 0 < y[rows].mean() < 1:
            metrics[f"auc_{action_id}"] = float(roc_auc_score(y[rows], p[rows]))
    return metrics


def baseline_model(contract: FeatureContract, params, seed: int):
    """Logistic regression on one-hot categories (and action) and standardized numerics."""
    categorical = model_categorical_indices(contract)
    numeric = [i for i in range(len(contract.names)) if i not in categorical]
    encode = ColumnTransformer(
        [
            ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical),
            ("numeric", StandardScaler(), numeric),
        ]
    )
    model = LogisticRegression(C=params.C, max_iter=params.max_iter, random_state=seed)
    return make_pipeline(encode, model)


def validation_rows(n_rows: int, validation_fraction: float) -> int:
    """How many of ``n_rows`` logged rows (the most recent) validate."""
    return max(1, int(round(n_rows * validation_fraction)))


def early_stopping_rows(n_rows: int) -> int:
    """How many of a booster's ``n_rows`` (the most recent) only decide when to stop."""
    return max(1, n_rows // 10)


def fit_rows(n_rows: int, validation_fraction: float) -> int:
    """Rows the conversion booster fits on, of ``n_rows`` logged rows.

    >>> fit_rows(500, 0.2), fit_rows(50, 0.2)
    (360, 36)
    """
    training = n_rows - validation_rows(n_rows, validation_fraction)
    return training - early_stopping_rows(training)


def rows_needed(spec: ScorerSpec) -> int:
    """The fewest logged rows whose conversion booster can split once: it needs twice its
    ``min_data_in_leaf`` rows to fit on.

    >>> from configs.schema import BoosterParams, ScorerSpec
    >>> rows_needed(ScorerSpec(name="m", conversion=BoosterParams(min_data_in_leaf=200)))
    555
    """
    needed = 2 * spec.conversion.min_data_in_leaf
    n = needed
    while fit_rows(n, spec.validation_fraction) < needed:
        n += 1
    return n


def check_training_data(data: Dataset, spec: ScorerSpec) -> None:
    """Raise InputError when ``data`` is too small to train and validate the models.

    The conversion booster fits on the training rows less those kept for early stopping;
    with fewer than twice its ``min_data_in_leaf`` it cannot split once and would be a
    constant. Each class needs ``MIN_ROWS_PER_CLASS`` rows among the training rows and
    among the validation rows.
    """
    splits = {"training": data.converted[data.train], "validation": data.converted[data.is_valid]}
    converted = {which: int((y == 1).sum()) for which, y in splits.items()}
    fewest = min(min(n, len(splits[which]) - n) for which, n in converted.items())
    n_rows, needed = len(data.converted), rows_needed(spec)
    if n_rows >= needed and fewest >= MIN_ROWS_PER_CLASS:
        return
    have = "; ".join(
        f"{which} {len(y):,} rows, {converted[which]:,} converted" for which, y in splits.items()
    )
    raise InputError(
        f"too few logged decisions to train: {n_rows:,} rows ({have}). Expected at least "
        f"{needed:,} rows (the conversion model fits on the oldest "
        f"{1 - spec.validation_fraction:.0%} less a tenth kept for early stopping, and needs "
        f"twice its min_data_in_leaf {spec.conversion.min_data_in_leaf} there to split once) "
        f"and at least {MIN_ROWS_PER_CLASS} converted and {MIN_ROWS_PER_CLASS} not converted "
        "rows among both the training and the validation rows; generate more, e.g. "
        "`liftgate world generate --rows 10000`"
    )


def _fit_booster(design, target, rows, params: BoosterParams, objective, seed, names, categorical):
    """Boost on `rows`, stopping early on their most recent tenth (rows are in time order)."""
    index = np.flatnonzero(rows)
    n_stop = early_stopping_rows(len(index))
    fit, stop = index[:-n_stop], index[-n_stop:]
    target = np.asarray(target)
    target_by_row = np.empty(len(design))
    target_by_row[index] = target

    def dataset(idx):
        return lgb.Dataset(
            design[idx], target_by_row[idx], feature_name=names, categorical_feature=categorical
        )

    return lgb.train(
        _booster_params(params, objective, seed),
        dataset(fit),
        num_boost_round=params.num_boost_round,
        valid_sets=[dataset(stop)],
        callbacks=[lgb.early_stopping(params.early_stopping_rounds, verbose=False)],
    )


@dataclass
class TrainingResult:
    model: ScoringModel
    metrics: dict[str, float]
    params: dict[str, object]
    feature_importance: dict[str, float]
    dataset: Dataset
    feature_names: list[str]


def train_scorer(
    logged: pd.DataFrame,
    config: LiftgateConfig,
    seed: int = 0,
    shuffle_labels: bool = False,
    progress: Callable[[str], None] = lambda message: None,
) -> TrainingResult:
    """Fit the conversion, order-value and baseline models; metrics are on validation rows.

    `shuffle_labels` permutes the training labels: a deliberately broken model the gate
    must reject.
    """
    spec = config.models.scorer
    contract = FeatureContract(config.features)
    catalogue = ActionCatalogue(config.actions)
    progress(f"building features for {len(logged):,} rows (contract {contract.version})")
    data = build_dataset(logged, contract, catalogue, spec.validation_fraction)
    check_training_data(data, spec)
    train, valid = data.train, data.is_valid
    y_train = data.converted[train]
    if shuffle_labels:
        y_train = np.random.default_rng(seed).permutation(y_train)
    names = model_feature_names(contract)
    categorical = model_categorical_indices(contract)

    progress(f"training conversion model on {train.sum():,} rows")
    conversion = _fit_booster(
        data.design, y_train, train, spec.conversion, "binary", seed, names, categorical
    )
    progress("training order-value model on converted rows")
    bought = train & (data.converted == 1)
    order_value = _fit_booster(
        data.design,
        data.revenue[bought],
        bought,
        spec.order_value,
        "regression",
        seed,
        names,
        categorical,
    )
    progress("training logistic-regression baseline")
    baseline = baseline_model(contract, spec.baseline, seed).fit(data.design[train], y_train)

    y_valid = data.converted[valid]
    probability = predict_rows(conversion, data.design[valid])
    calibration = CalibrationTable.fit(y_valid, probability)
    model = ScoringModel(conversion, order_value, catalogue.ids, contract.version, calibration)
    _, value = model.predict(data.design[valid])
    metrics = classification_metrics(y_valid, probability, data.action[valid], catalogue.ids)
    metrics["baseline_auc"] = float(
        roc_auc_score(y_valid, baseline.predict_proba(data.design[valid])[:, 1])
    )
    bought_valid = y_valid == 1
    metrics["order_value_mae"] = float(
        mean_absolute_error(data.revenue[valid][bought_valid], value[bought_valid])
    )
    metrics["n_train"] = int(train.sum())
    metrics["n_valid"] = int(valid.sum())
    gains = conversion.feature_importance(importance_type="gain")
    importance = dict(zip(names, (gains / max(gains.sum(), 1e-12)).tolist(), strict=True))
    params = {
        "conversion": spec.conversion.model_dump(),
        "order_value": spec.order_value.model_dump(),
        "baseline": spec.baseline.model_dump(),
        "validation_fraction": spec.validation_fraction,
        "seed": seed,
        "shuffle_labels": shuffle_labels,
    }
    return TrainingResult(model, metrics, params, importance, data, names)
