"""The floor's workload: what POST /v1/decide does at its core, with nothing of liftgate.

A dict feature lookup (17 customer features), one LightGBM booster (20 features, 50
trees) predicting 5 rows (one per candidate action, 3 action features each,
``num_threads=1``), an argmax, JSON out. The model is trained once on random data and kept
in the temp dir (``FLOOR_MODEL`` to change the path).
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import lightgbm as lgb
import numpy as np

MODEL_PATH = os.environ.get("FLOOR_MODEL", os.path.join(tempfile.gettempdir(), "floor-model.txt"))
N_CUSTOMER_FEATURES = 17
N_ACTION_FEATURES = 3
N_ACTIONS = 5
ACTIONS = np.random.default_rng(2).normal(size=(N_ACTIONS, N_ACTION_FEATURES))
ACTION_NAMES = [f"a{i}" for i in range(N_ACTIONS)]


def train_if_needed() -> None:
    """A binary booster on 5,000 random rows, unless the model file exists."""
    if os.path.exists(MODEL_PATH):
        return
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5000, N_CUSTOMER_FEATURES + N_ACTION_FEATURES))
    latent = x[:, 0] + 0.5 * x[:, 17] - 0.3 * x[:, 3] * x[:, 18] + rng.normal(size=5000)
    params = {"objective": "binary", "num_leaves": 15, "verbose": -1, "num_threads": 1}
    booster = lgb.train(params, lgb.Dataset(x, (latent > 0).astype(int)), num_boost_round=50)
    booster.save_model(MODEL_PATH)


def load_booster() -> lgb.Booster:
    train_if_needed()
    return lgb.Booster(model_file=MODEL_PATH)


def make_feature_store(n: int = 1000) -> dict[str, list[float]]:
    """Customers c0 .. c<n-1> with random features."""
    rng = np.random.default_rng(1)
    return {f"c{i}": rng.normal(size=N_CUSTOMER_FEATURES).round(4).tolist() for i in range(n)}


def get_features(store: dict[str, list[float]], customer_id: str) -> list[float]:
    """The customer's features; zeros for an unknown id."""
    return store.get(customer_id) or [0.0] * N_CUSTOMER_FEATURES


def score(booster: lgb.Booster, features: list[float]) -> list[float]:
    """The probability of each candidate action for these customer features."""
    customer = np.tile(np.asarray(features, dtype=np.float64), (N_ACTIONS, 1))
    return booster.predict(np.hstack([customer, ACTIONS]), num_threads=1).tolist()


def allocate(scores: list[float]) -> dict[str, Any]:
    """The scores and the best action."""
    best = int(np.argmax(scores))
    return {"scores": scores, "best_index": best, "best_action": ACTION_NAMES[best]}


def handle(booster: lgb.Booster, store: dict[str, list[float]], customer_id: str) -> dict:
    """One request, in process: features, scores, allocation."""
    return allocate(score(booster, get_features(store, customer_id)))
