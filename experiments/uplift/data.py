"""Two-arm uplift data from a logged table: one treatment action against one control action.

Under a randomized logging policy (the world's ``uniform`` policy), the rows that received
either of two actions form a randomized experiment between them, provided both actions
were eligible for the same customers (e-mail actions and ``no_action`` are eligible for
everyone). Rows logged with other actions are dropped. The features are the contract's.

>>> from liftgate.sim.world import World
>>> from configs.loader import load_config
>>> from liftgate.core.contract import FeatureContract
>>> logged = World(seed=1, n_customers=1_000).logged(rows=3_000)
>>> data = two_arm_data(logged, "email_20", "no_action", FeatureContract(load_config().features))
>>> data.X.shape[1] == 13, set(data.treatment.tolist()) == {0, 1}
(True, True)

Reference: Künzel et al. (2019), PNAS 116(10) (uplift from randomized data).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from liftgate.core.contract import FeatureContract
from liftgate.core.errors import InputError


@dataclass
class TwoArmData:
    X: np.ndarray
    treatment: np.ndarray
    y: np.ndarray
    rows: pd.DataFrame
    categorical: list[int]
    feature_names: tuple[str, ...]


def two_arm_data(
    logged: pd.DataFrame,
    treatment: str,
    control: str,
    contract: FeatureContract,
    action_col: str = "action",
    outcome_col: str = "converted",
) -> TwoArmData:
    if treatment == control:
        raise InputError(f"the treatment and control actions must differ; both are {treatment!r}")
    for column in (action_col, outcome_col):
        if column not in logged.columns:
            raise InputError(f"logged data lacks column {column!r}")
    actions = logged[action_col].astype(str)
    for parameter, action in (("treatment", treatment), ("control", control)):
        if not (actions == action).any():
            seen = ", ".join(sorted(actions.unique()))
            raise InputError(
                f"no logged rows with action {action!r}; actions: {seen}", parameter=parameter
            )
    rows = logged[actions.isin([treatment, control])].reset_index(drop=True)
    X, _ = contract.transform({c: rows[c] for c in rows.columns}, len(rows))
    return TwoArmData(
        X=X,
        treatment=(rows[action_col].astype(str) == treatment).to_numpy().astype(np.int64),
        y=rows[outcome_col].to_numpy().astype(np.float64),
        rows=rows,
        categorical=contract.categorical_indices,
        feature_names=contract.names,
    )
