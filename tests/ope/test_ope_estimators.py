"""OPE estimators: hand-computed examples, Open Bandit Pipeline's outputs, bootstrap, overlap.

Open Bandit Pipeline is not a dependency: ``tests/golden/obp_estimators.json`` holds what
obp 0.5.7 estimated on seeded logs (``tests/golden/make_golden.py`` says how to regenerate it).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from experiments.base_models import default_lightgbm
from experiments.ope.bootstrap import bootstrap_totals
from experiments.ope.diagnostics import weight_diagnostics
from experiments.ope.estimators import dm, dr, estimate_all, ipw, sndr, snipw
from experiments.ope.evaluate import evaluate
from experiments.ope.policies import deterministic, greedy, uniform
from experiments.ope.reward_model import CrossFittedRewardModel

# A tiny log: 4 rows, 2 actions, logged uniformly (pscore 0.5).
ACTION = np.array([0, 1, 0, 1])
REWARD = np.array([1.0, 0.0, 0.0, 1.0])
PSCORE = np.array([0.5, 0.5, 0.5, 0.5])
TARGET = np.array([[0.8, 0.2], [0.8, 0.2], [0.8, 0.2], [0.8, 0.2]])
Q_HAT = np.array([[0.6, 0.2], [0.5, 0.1], [0.4, 0.3], [0.3, 0.7]])


def test_hand_computed_values():
    # w = [1.6, 0.4, 1.6, 0.4]; w r = [1.6, 0, 0, 0.4]
    assert ipw(REWARD, ACTION, PSCORE, TARGET).value == pytest.approx(2.0 / 4)
    assert snipw(REWARD, ACTION, PSCORE, TARGET).value == pytest.approx(2.0 / 4.0)
    # q̂(x, π) = 0.8 q0 + 0.2 q1 = [0.52, 0.42, 0.38, 0.38]
    assert dm(REWARD, ACTION, PSCORE, TARGET, Q_HAT).value == pytest.approx(1.70 / 4)
    # w (r − q̂(x, a)) = [1.6·0.4, 0.4·(−0.1), 1.6·(−0.4), 0.4·0.3] = [0.64, −0.04, −0.64, 0.12]
    assert dr(REWARD, ACTION, PSCORE, TARGET, Q_HAT).value == pytest.approx((1.70 + 0.08) / 4)
    assert sndr(REWARD, ACTION, PSCORE, TARGET, Q_HAT).value == pytest.approx(1.70 / 4 + 0.08 / 4.0)


GOLDEN = json.loads((Path(__file__).parents[1] / "golden" / "obp_estimators.json").read_text())


@pytest.mark.parametrize("case", GOLDEN["cases"], ids=lambda case: case["name"])
def test_matches_open_bandit_pipeline(case: dict) -> None:
    ours = estimate_all(
        np.array(case["reward"]),
        np.array(case["action"]),
        np.array(case["pscore"]),
        np.array(case["action_dist"]),
        np.array(case["reward_hat"]),
        n_resamples=10,
    )
    assert set(ours) == set(case["policy_value"])
    for name, expected in case["policy_value"].items():
        # obp averages per-row rewards, we divide column totals: equal up to rounding.
        assert ours[name].value == pytest.approx(expected, rel=1e-9), name


def test_on_policy_target_gives_the_logged_mean():
    rng = np.random.default_rng(0)
    n = 1_000
    logging = np.tile([0.2, 0.3, 0.5], (n, 1))
    action = rng.choice(3, n, p=[0.2, 0.3, 0.5])
    reward = rng.random(n)
    est = estimate_all(reward, action, logging[np.arange(n), action], logging, n_resamples=50)
    assert est["ipw"].value == pytest.approx(reward.mean())
    assert est["snipw"].value == pytest.approx(reward.mean())


def test_dr_equals_dm_with_perfect_residuals_and_ipw_with_zero_model():
    q_zero = np.zeros_like(Q_HAT)
    assert dr(REWARD, ACTION, PSCORE, TARGET, q_zero).value == pytest.approx(
        ipw(REWARD, ACTION, PSCORE, TARGET).value
    )
    q_exact = np.tile(REWARD[:, None], (1, 2))  # q̂(x, a) = r for the logged action
    assert dr(REWARD, ACTION, PSCORE, TARGET, q_exact).value == pytest.approx(
        dm(REWARD, ACTION, PSCORE, TARGET, q_exact).value
    )


def test_bootstrap_interval_matches_the_standard_error():
    rng = np.random.default_rng(1)
    n = 4_000
    action = rng.integers(0, 2, n)
    reward = rng.normal(1.0, 1.0, n)
    target = deterministic(np.ones(n, dtype=int), 2)
    est = ipw(reward, action, np.full(n, 0.5), target, n_resamples=2_000)
    se = (2 * reward * (action == 1)).std() / np.sqrt(n)
    assert (est.ci_high - est.ci_low) / (2 * 1.96 * se) == pytest.approx(1.0, abs=0.1)
    assert est.ci_low < est.value < est.ci_high


def test_grouped_bootstrap_agrees_with_the_row_bootstrap():
    x = np.random.default_rng(2).exponential(size=(50_000, 1))
    columns = np.hstack([np.ones_like(x), x])
    rows = bootstrap_totals(columns, 1_000, 0, max_groups=100_000)
    groups = bootstrap_totals(columns, 1_000, 0, max_groups=2_000)
    sd_rows = (rows[:, 1] / rows[:, 0]).std()
    sd_groups = (groups[:, 1] / groups[:, 0]).std()
    assert sd_groups == pytest.approx(sd_rows, rel=0.1)


def test_bootstrap_is_seeded():
    a = ipw(REWARD, ACTION, PSCORE, TARGET, random_state=5)
    b = ipw(REWARD, ACTION, PSCORE, TARGET, random_state=5)
    assert a == b


def test_diagnostics_and_warnings():
    d = weight_diagnostics(np.array([1.6, 0.4, 1.6, 0.4]))
    assert d.ess == pytest.approx(16.0 / 5.44)
    assert d.max_weight == 1.6 and d.warnings == []
    assert "largest importance weight" in " ".join(
        weight_diagnostics(np.r_[np.ones(1000), 150.0]).warnings
    )
    assert (
        "effective sample size" in weight_diagnostics(np.r_[np.zeros(95), np.ones(5)]).warnings[0]
    )
    assert "never takes a logged action" in weight_diagnostics(np.zeros(3)).warnings[0]


def test_evaluate_reports_poor_overlap():
    n = 1_000
    action = np.zeros(n, dtype=int)
    action[:5] = 1
    pscore = np.where(action == 1, 0.005, 0.995)
    report = evaluate(np.ones(n), action, pscore, deterministic(np.ones(n, dtype=int), 2))
    assert report.max_weight == pytest.approx(200.0)
    assert len(report.warnings) == 3  # ESS, max weight, no reward model
    assert set(report.to_dict()["estimates"]) == {"ipw", "snipw", "dm", "dr", "sndr"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pscore": np.array([0.5, 0.0, 0.5, 0.5])}, "pscore"),
        ({"action": np.array([0, 1, 2, 0])}, "action"),
        ({"action_dist": np.tile([0.5, 0.6], (4, 1))}, "sum to 1"),
        ({"reward": np.array([1.0, np.nan, 0.0, 1.0])}, "reward"),
    ],
)
def test_bad_inputs_name_the_argument(kwargs, message):
    args = {"reward": REWARD, "action": ACTION, "pscore": PSCORE, "action_dist": TARGET}
    with pytest.raises(ValueError, match=message):
        ipw(**{**args, **kwargs})
    with pytest.raises(ValueError, match="reward_hat"):
        dr(REWARD, ACTION, PSCORE, TARGET, Q_HAT[:, :1])


def test_policies():
    support = np.array([[True, False, True], [True, True, True]])
    assert uniform(support)[0].tolist() == [0.5, 0.0, 0.5]
    chosen = greedy(np.array([[0.0, 9.0, 1.0], [0.0, 9.0, 1.0]]), support)
    assert chosen.argmax(axis=1).tolist() == [2, 1]


def test_reward_model_is_cross_fitted_and_follows_the_estimator_contract():
    rng = np.random.default_rng(0)
    x = rng.random((1_500, 2))
    a = rng.integers(0, 3, 1_500)
    r = x[:, 0] * (a == 2) + rng.normal(0, 0.1, 1_500)
    fast = default_lightgbm(classifier=False).set_params(n_estimators=30)
    model = CrossFittedRewardModel(fast, n_folds=3)
    model.fit(x, a, r, n_actions=3)
    assert model.objective_ == "regression" and len(model.models_) == 3
    assert sorted(np.bincount(model.folds_)) == [500, 500, 500]
    assert model.predict(x[:10]).shape == (10, 3)
    assert np.corrcoef(model.oof_[:, 2], x[:, 0])[0, 1] > 0.8
