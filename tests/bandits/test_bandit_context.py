"""The linear context (experiments/bandits/context.py): its encoding, and one encoder for the
served bandit and the simulation."""

from __future__ import annotations

import numpy as np
from served_helpers import CONFIG, bandit_experiment, spec_of

from configs.schema import FeaturesConfig
from experiments.bandits.context import LinearContext
from liftgate.core.contract import FeatureContract
from liftgate.core.vocabulary import LINUCB
from liftgate.sim.bandit_arena import build_arena
from liftgate.sim.world import World

FEATURES = FeaturesConfig.model_validate(
    {
        "version": 1,
        "features": [
            {
                "name": "spend",
                "dtype": "float",
                "range": [0, 99],
                "default": 0,
                "transform": "log1p",
            },
            {"name": "device", "dtype": "category", "categories": ["ios", "web"], "default": "web"},
            {"name": "opted_in", "dtype": "bool", "default": False},
            {"name": "age", "dtype": "int", "range": [20, 70], "default": 40},
            {"name": "score", "dtype": "float", "default": 0.0},
        ],
    }
)


def test_intercept_one_hot_booleans_and_range_scaled_numbers() -> None:
    encoder = LinearContext(FEATURES)
    rows, _ = FeatureContract(FEATURES).transform(
        {
            "spend": [0.0, 99.0, 9.0],
            "device": ["ios", "web", "tv"],  # an unknown category takes the default
            "opted_in": [True, False, True],
            "age": [20, 70, 45],
            "score": [-3.0, 0.0, 2.5],  # no range: as it is
        }
    )
    expected = [
        [1, 0.0, 1, 0, 1, 0.0, -3.0],
        [1, 1.0, 0, 1, 0, 1.0, 0.0],
        [1, np.log(10) / np.log(100), 0, 1, 1, 0.5, 2.5],
    ]
    assert encoder.dimension == 7
    np.testing.assert_allclose(encoder.encode(rows), expected, rtol=0, atol=1e-12)


def test_the_arena_and_the_served_bandit_encode_a_customer_identically() -> None:
    """The simulation's regret describes the served LinUCB only if both see the same x."""
    world = World(seed=5, n_customers=300, actions=CONFIG.actions)
    arena = build_arena(world=world)
    spec = spec_of(bandit_experiment(policy=LINUCB))
    contract = FeatureContract(CONFIG.features)
    for i in range(0, 300, 37):  # a customer as the service sees them: one row, at a time
        attributes = world.customers.iloc[i].to_dict()
        features, _ = contract.transform_row(attributes)
        np.testing.assert_allclose(spec.context(features, None), arena.contexts[i], atol=1e-12)
