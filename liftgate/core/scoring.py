"""Scoring: per candidate action, P(conversion), order value, expected value and confidence.

Expected value = P(conversion) × order value − contact cost. Confidence is the calibration
interval of the probability (`liftgate.core.model.CalibrationTable`), carried to the expected
value by the same affine map.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from liftgate.core.contract import design_matrix
from liftgate.core.model import ScoringModel


@dataclass(frozen=True)
class Scores:
    action_codes: np.ndarray
    probability: np.ndarray
    order_value: np.ndarray
    expected_value: np.ndarray
    low: np.ndarray  # interval of the expected value
    high: np.ndarray


def score_actions(
    model: ScoringModel, features: np.ndarray, action_codes: np.ndarray, costs: np.ndarray
) -> Scores:
    return score_batch(model, [(features, action_codes)], costs)[0]


def score_batch(
    model: ScoringModel,
    requests: list[tuple[np.ndarray, np.ndarray]],
    costs: np.ndarray,
) -> list[Scores]:
    """Many requests in one predict call (Ray Serve's `@serve.batch` in composed mode)."""
    designs = [design_matrix(features, codes) for features, codes in requests]
    probability, order_value = model.predict(np.vstack(designs))
    p_low, p_high = model.calibration.interval(probability)
    results, start = [], 0
    for (_, codes), design in zip(requests, designs, strict=True):
        part = slice(start, start + len(design))
        start += len(design)
        cost = costs[codes]
        results.append(
            Scores(
                codes,
                probability[part],
                order_value[part],
                probability[part] * order_value[part] - cost,
                p_low[part] * order_value[part] - cost,
                p_high[part] * order_value[part] - cost,
            )
        )
    return results
