"""S-, T- and X-learners recover the synthetic world's true uplift ranking on held-out rows.

Data: the world's uniform-policy log restricted to email_20 (treatment) and no_action
(control), a randomized experiment between them. The true uplift of a row is
``World.conversion_probability`` at email_20 minus at no_action for its customer.
"""

from __future__ import annotations

import numpy as np
import pytest

from configs.loader import load_config
from experiments.base_models import default_lightgbm
from experiments.uplift.data import two_arm_data
from experiments.uplift.learners import LEARNERS, SLearner, XLearner
from experiments.uplift.metrics import qini_auc_score
from liftgate.core.contract import FeatureContract
from liftgate.sim.world import World


@pytest.fixture(scope="module")
def split():
    world = World(seed=2, n_customers=10_000)
    logged = world.logged(rows=50_000)
    arms = two_arm_data(logged, "email_20", "no_action", FeatureContract(load_config().features))
    p = world.conversion_probability(arms.rows)
    codes = world.catalogue.index
    true_uplift = p[:, codes["email_20"]] - p[:, codes["no_action"]]
    test = np.random.default_rng(0).random(len(arms.y)) < 0.3
    return arms, true_uplift, test


@pytest.mark.slow
@pytest.mark.parametrize("name", ["s", "t", "x"])
def test_learners_rank_true_uplift_better_than_random(split, name):
    arms, true_uplift, test = split
    fast = {"estimator": default_lightgbm(classifier=True).set_params(n_estimators=100)}
    if name == "x":
        fast["effect_estimator"] = default_lightgbm(classifier=False).set_params(n_estimators=100)
    model = LEARNERS[name](**fast, categorical_features=arms.categorical)
    model.fit(arms.X[~test], arms.treatment[~test], arms.y[~test])
    score = model.predict_uplift(arms.X[test])
    corr = np.corrcoef(score, true_uplift[test])[0, 1]
    qini = qini_auc_score(arms.y[test], score, arms.treatment[test])
    random_qini = qini_auc_score(
        arms.y[test], np.random.default_rng(1).random(test.sum()), arms.treatment[test]
    )
    assert corr > 0.6, f"{name}-learner: corr(predicted, true uplift) = {corr:.3f}"
    assert qini > 0.05 and qini > random_qini, f"{name}-learner: Qini AUC {qini:.3f}"
    # the oracle ranking by true uplift is a ceiling on the same held-out rows
    assert qini <= qini_auc_score(arms.y[test], true_uplift[test], arms.treatment[test]) + 0.05


def test_inputs_are_checked_and_the_propensity_is_kept():
    # the estimator contract of every learner: tests/experiments/test_base_models.py
    rng = np.random.default_rng(0)
    X, t, y = rng.random((300, 2)), rng.integers(0, 2, 300), rng.integers(0, 2, 300)
    fast = default_lightgbm(classifier=True).set_params(n_estimators=7, min_child_samples=20)
    assert XLearner(fast, propensity=0.4).fit(X, t, y).propensity_ == 0.4
    with pytest.raises(ValueError, match="treatment"):
        SLearner().fit(X, np.zeros(300), y)
    with pytest.raises(ValueError, match="lengths differ"):
        SLearner().fit(X, t[:10], y)
