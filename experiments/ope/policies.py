"""Built-in evaluation policies as (n × K) action distributions computed from a log.

- ``uniform``: uniform over the actions that are supported for the row (eligible);
- ``greedy-model``: all mass on the supported action with the highest estimated reward
  q̂(x, a) (ties go to the lowest code);
- :func:`deterministic` turns any chosen action codes into a one-hot distribution.

``support`` is an (n × K) boolean mask of the actions a policy may take per row; with the
catalogue it is the eligibility mask, so a target never takes an action that the logging
policy could not have taken (which no estimator could evaluate without a model).

>>> import numpy as np
>>> support = np.array([[True, True, False], [True, True, True]])
>>> uniform(support).round(2).tolist()
[[0.5, 0.5, 0.0], [0.33, 0.33, 0.33]]
>>> greedy(np.array([[0.1, 0.2, 0.9], [0.1, 0.2, 0.9]]), support).tolist()
[[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]

Reference: Saito et al. (2021), "Open Bandit Dataset and Pipeline", NeurIPS Datasets and
Benchmarks (``action_dist`` as the evaluation policy's interface).
"""

from __future__ import annotations

import numpy as np

from liftgate.core.errors import InputError

BUILT_IN = ("uniform", "greedy-model")


def _check_support(support: np.ndarray) -> np.ndarray:
    support = np.asarray(support, dtype=bool)
    if not support.any(axis=1).all():
        raise InputError("some rows have no supported action", parameter="support")
    return support


def uniform(support: np.ndarray) -> np.ndarray:
    support = _check_support(support)
    return support / support.sum(axis=1, keepdims=True)


def deterministic(actions: np.ndarray, n_actions: int) -> np.ndarray:
    actions = np.asarray(actions, dtype=np.int64)
    dist = np.zeros((len(actions), n_actions))
    dist[np.arange(len(actions)), actions] = 1.0
    return dist


def greedy(reward_hat: np.ndarray, support: np.ndarray) -> np.ndarray:
    support = _check_support(support)
    scores = np.where(support, np.asarray(reward_hat, dtype=np.float64), -np.inf)
    return deterministic(scores.argmax(axis=1), scores.shape[1])
