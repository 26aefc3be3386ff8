"""Batch scoring: a table of customers in, one row per customer and action out.

The online path (`serving.online_store` → `liftgate.core.scoring.score_actions`) encodes the
customers table through the feature contract and scores a customer's candidates with the
scoring model; `BatchScorer` does the same on a whole Arrow batch at once: the same
`FeatureContract.transform`, the same `score_actions` (its matrix path, which ends in the same
C++ predictor as the single-row one: the numbers are equal). Pure: no I/O, no Ray; the Ray
Data adapter (`liftgate.app.batch_score`) and the local loop both call it.

Each customer's actions are ranked by expected value, best first, ties in catalogue order:
`liftgate.core.allocation.ranked_order` over all the scored actions. `eligible` is the
eligibility rules of actions.yaml on the customer's attributes (a decision offers only
eligible actions; consent, a live store, is not part of a batch score).

>>> import pyarrow as pa
>>> missing_columns(["customer_id", "recency_days"], ["customer_id", "device", "region"])
['device', 'region']
>>> ranks(np.array([[1.0, 3.0, 3.0], [0.5, float("nan"), 2.0]])).tolist()
[[3, 1, 2], [2, 3, 1]]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from liftgate.core.catalogue import ActionCatalogue
from liftgate.core.contract import FeatureContract
from liftgate.core.model import ScoringModel
from liftgate.core.scoring import score_actions

CUSTOMER_ID = "customer_id"

#: The output of a batch score, one row per customer and action.
OUTPUT_SCHEMA = pa.schema(
    [
        (CUSTOMER_ID, pa.string()),
        ("action", pa.string()),
        ("p_conversion", pa.float64()),
        ("order_value", pa.float64()),
        ("expected_value", pa.float64()),
        ("expected_value_low", pa.float64()),  # the 95 % interval of the online "confidence"
        ("expected_value_high", pa.float64()),
        ("rank", pa.int32()),  # 1: the best of the customer's actions
        ("eligible", pa.bool_()),
        ("model", pa.string()),
        ("model_version", pa.string()),
    ]
)


def required_columns(contract: FeatureContract) -> list[str]:
    """The columns a customers table must have: the id and every stored feature (those with
    `source: request` come with a decide request, never from the table)."""
    stored = [s.name for s in contract.specs if s.source != "request"]
    return [CUSTOMER_ID, *stored]


def missing_columns(present: Iterable[str], required: Sequence[str]) -> list[str]:
    have = set(present)
    return [name for name in required if name not in have]


def ranks(expected_values: np.ndarray) -> np.ndarray:
    """Per row of (customers × actions) expected values, each action's rank (1 = best):
    descending, ties in column order, NaN last, as `ranked_order` orders a decision's."""
    order = np.argsort(-expected_values, axis=1, kind="stable")
    out = np.empty_like(order, dtype=np.int32)
    np.put_along_axis(out, order, np.arange(1, order.shape[1] + 1, dtype=np.int32), axis=1)
    return out


@dataclass(frozen=True)
class BatchScorer:
    """Scores customers batches for `action_ids` (catalogue order) with one model version."""

    model: ScoringModel
    contract: FeatureContract
    catalogue: ActionCatalogue
    model_name: str
    model_version: str
    action_ids: tuple[str, ...]

    def __post_init__(self) -> None:
        unknown = [a for a in self.action_ids if a not in self.catalogue.index]
        if unknown or not self.action_ids:
            raise ValueError(
                f"expected action ids of the catalogue {list(self.catalogue.ids)}; got "
                f"{list(unknown) or 'none'}"
            )

    @property
    def codes(self) -> np.ndarray:
        return np.array(sorted(self.catalogue.index[a] for a in self.action_ids), np.int64)

    def __call__(self, customers: pa.Table) -> pa.Table:
        """One row per customer and action, customers in input order, their actions in
        catalogue order."""
        codes = self.codes
        n, k = customers.num_rows, len(codes)
        features, _ = self.contract.transform(customers)
        # Each customer's row once per action: the design rows of all its candidates.
        scores = score_actions(
            self.model, np.repeat(features, k, axis=0), np.tile(codes, n), self.catalogue.costs
        )
        columns = {name: customers.column(name) for name in customers.column_names}
        eligible = self.catalogue.eligibility_mask(columns, n_rows=n)[:, codes]
        ids = np.asarray(self.catalogue.ids, dtype=object)[codes]
        customer_ids = customers.column(CUSTOMER_ID).cast(pa.string()).to_numpy(False)
        rows = n * k
        return pa.Table.from_arrays(
            [
                pa.array(np.repeat(customer_ids, k), pa.string()),
                pa.array(np.tile(ids, n), pa.string()),
                pa.array(scores.probability),
                pa.array(scores.order_value),
                pa.array(scores.expected_value),
                pa.array(scores.low),
                pa.array(scores.high),
                pa.array(ranks(scores.expected_value.reshape(n, k)).ravel()),
                pa.array(eligible.ravel()),
                pa.repeat(pa.scalar(self.model_name), rows),
                pa.repeat(pa.scalar(self.model_version), rows),
            ],
            schema=OUTPUT_SCHEMA,
        )
