"""Batch scoring (liftgate/core/batch_scoring.py): a customers table scored by `BatchScorer`
gives, customer by customer, what the online path computes (the online store's encoding,
then `score_actions` on one feature row), and ranks a customer's actions as a decision
ranks its candidates."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pyarrow as pa
import pytest

from configs.loader import load_config
from liftgate.core.allocation import ranked_order
from liftgate.core.batch_scoring import (
    OUTPUT_SCHEMA,
    BatchScorer,
    missing_columns,
    ranks,
    required_columns,
)
from liftgate.core.catalogue import ActionCatalogue
from liftgate.core.contract import FeatureContract, design_matrix, model_categorical_indices
from liftgate.core.model import CalibrationTable, ScoringModel
from liftgate.core.scoring import score_actions
from liftgate.sim.world import World
from serving.online_store import OnlineStore

CONFIG = load_config()
CONTRACT = FeatureContract(CONFIG.features)
CATALOGUE = ActionCatalogue(CONFIG.actions)


@pytest.fixture(scope="module")
def customers() -> pa.Table:
    return pa.Table.from_pandas(World(seed=2, n_customers=300).customers, preserve_index=False)


@pytest.fixture(scope="module")
def model(customers: pa.Table) -> ScoringModel:
    """Small boosters over the real contract's features: fast to train, real to score."""
    rng = np.random.default_rng(0)
    features, _ = CONTRACT.transform(customers)
    codes = rng.integers(0, len(CATALOGUE), size=len(features))
    design = design_matrix(features, codes)
    converted = (rng.random(len(design)) < 0.2 + 0.1 * (codes % 2)).astype(float)
    value = 50 + 10 * codes + rng.normal(size=len(design))
    params = {"num_leaves": 7, "min_data_in_leaf": 5, "verbose": -1, "seed": 0}
    categorical = model_categorical_indices(CONTRACT)

    def train(objective: str, label: np.ndarray) -> lgb.Booster:
        data = lgb.Dataset(design, label, categorical_feature=categorical)
        return lgb.train({**params, "objective": objective}, data, num_boost_round=10)

    conversion = train("binary", converted)
    calibration = CalibrationTable.fit(converted, conversion.predict(design), bins=4)
    return ScoringModel(
        conversion, train("regression", value), CATALOGUE.ids, CONTRACT.version, calibration
    )


def scorer(model: ScoringModel, actions: tuple[str, ...] = CATALOGUE.ids) -> BatchScorer:
    return BatchScorer(model, CONTRACT, CATALOGUE, "scorer", "7", actions)


def test_each_customer_is_scored_as_online(customers: pa.Table, model: ScoringModel) -> None:
    out = scorer(model)(customers)
    k = len(CATALOGUE)
    assert out.schema == OUTPUT_SCHEMA and out.num_rows == customers.num_rows * k
    store = OnlineStore(customers, CONTRACT, CATALOGUE)
    rows = out.to_pylist()
    for i, customer_id in enumerate(customers.column("customer_id").to_pylist()[:40]):
        lookup = store.lookup(customer_id)
        online = score_actions(model, lookup.features, np.arange(k), CATALOGUE.costs)
        mine = rows[i * k : (i + 1) * k]
        assert [r["customer_id"] for r in mine] == [customer_id] * k
        assert [r["action"] for r in mine] == list(CATALOGUE.ids)
        assert [r["p_conversion"] for r in mine] == pytest.approx(online.probability, abs=1e-9)
        assert [r["expected_value"] for r in mine] == pytest.approx(online.expected_value, abs=1e-9)
        assert [r["expected_value_low"] for r in mine] == pytest.approx(online.low, abs=1e-9)
        assert [r["eligible"] for r in mine] == lookup.eligible.tolist()
        best_first = [mine[j]["action"] for j in ranked_order(online.expected_value)]
        assert [r["action"] for r in sorted(mine, key=lambda r: r["rank"])] == best_first
        assert {(r["model"], r["model_version"]) for r in mine} == {("scorer", "7")}


def test_a_subset_of_actions_keeps_catalogue_order(
    customers: pa.Table, model: ScoringModel
) -> None:
    chosen = (CATALOGUE.ids[3], CATALOGUE.ids[1])
    out = scorer(model, chosen)(customers.slice(0, 10))
    assert out.column("action").to_pylist()[:2] == [CATALOGUE.ids[1], CATALOGUE.ids[3]]
    assert sorted(set(out.column("rank").to_pylist())) == [1, 2]


def test_unknown_actions_are_refused(model: ScoringModel) -> None:
    with pytest.raises(ValueError, match="fax"):
        scorer(model, ("fax",))


def test_an_empty_batch_gives_an_empty_table(customers: pa.Table, model: ScoringModel) -> None:
    out = scorer(model)(customers.slice(0, 0))
    assert out.num_rows == 0 and out.schema == OUTPUT_SCHEMA


def test_required_columns_are_the_id_and_the_stored_features() -> None:
    required = required_columns(CONTRACT)
    assert required[0] == "customer_id"
    stored = [s.name for s in CONTRACT.specs if s.source != "request"]
    assert required[1:] == stored
    assert missing_columns(["customer_id"], required) == stored


def test_ranks_break_ties_in_column_order_and_put_nan_last() -> None:
    values = np.array([[2.0, 2.0, 1.0], [np.nan, 0.0, -1.0]])
    assert ranks(values).tolist() == [[1, 2, 3], [3, 1, 2]]
