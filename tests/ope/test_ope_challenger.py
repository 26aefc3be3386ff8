"""OPE of a challenger scorer on the champion's decision log (experiments.ope.challenger).

The synthetic world (seed 11, 3 000 customers) trains a champion; the champion serves
ε-greedy decisions (ε = serving.yaml's) that are written to a real decision log and outcome
log under a temporary LIFTGATE_HOME, with outcomes drawn from the world's truth. Then:

- the champion itself, evaluated as a challenger, passes (every importance weight is 1);
- a challenger trained on labels with a tracking bug (every ``no_action`` row marked as a
  conversion worth the average basket) prefers doing nothing, is truly much worse (checked
  against the world's truth), and fails.

The scorers use faster boosters than models.yaml (this only changes training time).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest

from configs.loader import load_config
from configs.schema import OpeRequirement
from experiments.logs.schema import DecisionRecord, OutcomeRecord
from experiments.logs.writer import LogWriter
from experiments.ope.challenger import (
    ChallengerEvaluation,
    challenger_policy_probabilities,
    evaluate_challenger,
    judge,
    relative_threshold,
)
from liftgate.core.allocation import epsilon_greedy
from liftgate.core.contract import FeatureContract
from liftgate.core.home import Home
from liftgate.core.scoring import score_actions
from liftgate.core.vocabulary import EPSILON_GREEDY, RULES_FALLBACK
from liftgate.sim.world import World
from registry.training import train_scorer

CONFIG = load_config()
FAST = {"learning_rate": 0.2, "num_boost_round": 150, "early_stopping_rounds": 10}
N_LOGGED = 20_000
N_FALLBACK = 100
N_RECENT = 50  # inside the attribution window: their outcomes may still come
WINDOW_S = 3_600.0
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
BROKEN_ACTION = "no_action"


def fast_config():
    scorer = CONFIG.models.scorer
    scorer = scorer.model_copy(
        update={
            "conversion": scorer.conversion.model_copy(update=FAST),
            "order_value": scorer.order_value.model_copy(update=FAST),
        }
    )
    models = CONFIG.models.model_copy(update={"scorer": scorer})
    return dataclasses.replace(CONFIG, models=models)


# --------------------------------------------------------------------------- pure core


def test_probabilities_per_row_candidate_sets_match_the_served_policy():
    rng = np.random.default_rng(0)
    n, k, epsilon = 500, 5, 0.1
    candidates = rng.random((n, k)) < 0.6
    candidates[np.arange(n), rng.integers(0, k, n)] = True  # at least one per row
    values = np.round(rng.normal(size=(n, k)), 1)  # rounding makes ties
    values[~candidates] = 99.0  # outside the candidate set: must be ignored
    chosen = np.array([rng.choice(np.flatnonzero(row)) for row in candidates])

    dist, p_chosen = challenger_policy_probabilities(values, candidates, chosen, epsilon)

    np.testing.assert_allclose(dist.sum(axis=1), 1.0)
    assert (dist[~candidates] == 0).all()
    assert (dist[candidates] >= epsilon / k).all()
    np.testing.assert_array_equal(p_chosen, dist[np.arange(n), chosen])
    for i in range(n):  # the service: candidates in catalogue order, epsilon_greedy
        codes = np.flatnonzero(candidates[i])
        served = epsilon_greedy(values[i, codes], epsilon, draw=0.0).propensities
        np.testing.assert_allclose(dist[i, codes], served)


def test_probabilities_of_two_rows_with_different_candidates():
    values = np.array([[0.0, 2.0, 1.0, 5.0], [3.0, 3.0, 1.0, 9.0]])
    candidates = np.array([[True, True, True, False], [True, True, False, False]])
    dist, p = challenger_policy_probabilities(values, candidates, np.array([2, 1]), 0.3)
    np.testing.assert_allclose(dist, [[0.1, 0.8, 0.1, 0.0], [0.85, 0.15, 0.0, 0.0]])
    np.testing.assert_allclose(p, [0.1, 0.15])  # ties go to catalogue order (action 0)


def test_probabilities_reject_a_logged_action_outside_its_candidates():
    with pytest.raises(ValueError, match="not among its row's candidates"):
        challenger_policy_probabilities(
            np.zeros((1, 2)), np.array([[True, False]]), np.array([1]), 0.1
        )


def test_threshold_and_judge_with_negative_values():
    assert relative_threshold(10.0, 0.98) == pytest.approx(9.8)
    assert relative_threshold(-10.0, 0.98) == pytest.approx(-10.2)  # a 2 % larger loss
    assert relative_threshold(-10.0, 1.05) == pytest.approx(-9.5)  # demands an improvement
    passed, threshold, _ = judge("dr", -10.1, -10.3, -9.9, -10.0, (-0.1, -0.15, -0.05), 0.98)
    assert passed and threshold == pytest.approx(-10.2)
    passed, _, _ = judge("dr", -10.3, -10.5, -10.1, -10.0, (-0.3, -0.5, -0.1), 0.98)
    assert not passed
    passed, _, reason = judge("dr", float("nan"), 0, 0, 1.0, (0.0, float("nan"), 0.0), 0.98)
    assert not passed and "undefined" in reason


# --------------------------------------------------------------------------- the world


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=11, n_customers=3_000)


@pytest.fixture(scope="module")
def training(world: World) -> pd.DataFrame:
    return world.logged(rows=20_000)


@pytest.fixture(scope="module")
def champion(training: pd.DataFrame):
    return train_scorer(training, fast_config(), seed=0).model


@pytest.fixture(scope="module")
def broken(training: pd.DataFrame):
    """Trained on a tracking bug: every no_action row is a conversion of an average basket."""
    bugged = training.copy()
    rows = bugged["action"] == BROKEN_ACTION
    basket = training.loc[training["converted"], "revenue"].mean()
    bugged.loc[rows & ~bugged["converted"], "revenue"] = round(basket, 2)
    bugged.loc[rows, "converted"] = True
    return train_scorer(bugged, fast_config(), seed=0).model


class Log:
    """The champion's served decisions: written to a home, kept in memory for the truth."""

    def __init__(self, home, features, candidates, true_reward):
        self.home = home
        self.features = features
        self.candidates = candidates
        self.true_reward = true_reward  # (n × K) expected profit per action, from the world

    def true_value(self, model, epsilon: float) -> float:
        """The world's expected profit per decision of the model's ε-greedy policy."""
        dist, _ = challenger_policy_probabilities(
            expected_values(model, self.features, self.candidates),
            self.candidates,
            self.candidates.argmax(axis=1),
            epsilon,
        )
        return float((dist * self.true_reward).sum(axis=1).mean())


def expected_values(model, features: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    rows, codes = np.nonzero(candidates)
    costs = np.array([a.cost for a in CONFIG.actions.actions])
    values = np.full(candidates.shape, -np.inf)
    values[rows, codes] = score_actions(model, features[rows], codes, costs).expected_value
    return values


@pytest.fixture(scope="module")
def log(world: World, champion, tmp_path_factory) -> Log:
    """N_LOGGED matured ε-greedy decisions of the champion, plus fallback and recent rows."""
    home = Home(tmp_path_factory.mktemp("home"))
    rng = np.random.default_rng(5)
    epsilon = CONFIG.serving.epsilon
    n = N_LOGGED + N_FALLBACK + N_RECENT
    customers = world.customers.iloc[rng.integers(0, len(world.customers), n)]
    customers = customers.reset_index(drop=True)
    contract = FeatureContract(CONFIG.features)
    features, _ = contract.transform({c: customers[c] for c in customers.columns}, n)
    candidates = world.eligibility(customers)
    values = expected_values(champion, features, candidates)
    dist, _ = challenger_policy_probabilities(values, candidates, candidates.argmax(1), epsilon)
    chosen = np.minimum((rng.random((n, 1)) > dist.cumsum(axis=1)).sum(axis=1), dist.shape[1] - 1)
    rows = np.arange(n)
    converted = rng.random(n) < world.conversion_probability(customers)[rows, chosen]
    basket = world.order_value(customers)[rows, chosen] * rng.lognormal(-0.045, 0.3, n)

    ids = world.action_ids
    ts = [NOW - dt.timedelta(days=3) + dt.timedelta(seconds=10 * i) for i in range(n)]
    ts[-N_RECENT:] = [NOW - dt.timedelta(minutes=10)] * N_RECENT
    with (
        LogWriter(home.decision_log, DecisionRecord, max_rows=n + 1) as decisions,
        LogWriter(home.outcome_log, OutcomeRecord, max_rows=3 * n) as outcomes,
    ):
        for i in range(n):
            fallback = N_LOGGED <= i < N_LOGGED + N_FALLBACK
            codes = np.flatnonzero(candidates[i])
            ranked = codes[np.argsort(-values[i, codes], kind="stable")]  # as the service logs
            decisions.append(
                DecisionRecord(
                    decision_id=f"d{i}",
                    ts=ts[i],
                    customer_id=str(customers.at[i, "customer_id"]),
                    features=features[i].tolist(),
                    contract_version=contract.version,
                    actions=[ids[c] for c in ranked],
                    scores=values[i, ranked].tolist(),
                    probabilities=[0.0] * len(ranked),
                    chosen=ids[chosen[i]],
                    propensity=1.0 if fallback else float(dist[i, chosen[i]]),
                    policy=RULES_FALLBACK if fallback else EPSILON_GREEDY,
                    model_name="liftgate-scorer",
                    model_version="1",
                    model_alias="champion",
                    fallback=fallback,
                    cold_start=False,
                    latency_ms=1.0,
                    trace_id=f"t{i}",
                )
            )
            if converted[i]:
                at = ts[i] + dt.timedelta(minutes=10)
                for event, value in (("conversion", 1.0), ("revenue", round(basket[i], 2))):
                    outcomes.append(
                        OutcomeRecord(
                            outcome_id=f"o{i}{event}",
                            decision_id=f"d{i}",
                            ts=at,
                            event=event,
                            value=float(value),
                            received_ts=at,
                            known_decision=True,
                        )
                    )
    true_reward = world.expected_reward(customers)  # P × order value − cost, per action
    served = slice(0, N_LOGGED)
    return Log(home, features[served], candidates[served], true_reward[served])


def evaluate(log: Log, model, estimator: str = "dr", **options) -> ChallengerEvaluation:
    requirement = OpeRequirement(estimator=estimator, min_relative_value=0.98)
    return evaluate_challenger(
        log.home, CONFIG, model, requirement, window_s=WINDOW_S, now=NOW, **options
    )


# --------------------------------------------------------------------------- the shell


def test_the_champion_as_challenger_passes(log: Log, champion):
    result = evaluate(log, champion)
    print(json.dumps(result.to_dict(), indent=1))
    assert result.passed, result.reason
    assert result.n == N_LOGGED
    assert result.dropped == {"fallback": N_FALLBACK, "window_open": N_RECENT}
    assert result.max_weight == pytest.approx(1.0)  # the same policy: every weight is 1
    assert result.ess == pytest.approx(N_LOGGED)
    assert result.on_policy_value == pytest.approx(result.value, rel=0.02)
    assert result.ci_low <= result.on_policy_value <= result.ci_high
    assert result.threshold == pytest.approx(0.98 * result.on_policy_value)
    json.dumps(result.to_dict())  # serialisable as it is


def test_the_champion_as_challenger_passes_ipw_exactly(log: Log, champion):
    result = evaluate(log, champion, "ipw", reward="converted")
    assert result.passed, result.reason
    assert result.value == pytest.approx(result.on_policy_value)
    assert result.difference_ci_low == pytest.approx(0.0, abs=1e-12)


def test_a_challenger_trained_on_a_tracking_bug_fails(log: Log, champion, broken):
    epsilon = CONFIG.serving.epsilon
    truth_champion = log.true_value(champion, epsilon)
    truth_broken = log.true_value(broken, epsilon)
    print(f"true value per decision: champion {truth_champion:.3f}, broken {truth_broken:.3f}")
    assert truth_broken < 0.9 * truth_champion  # the premise: the bug really costs money

    result = evaluate(log, broken)
    print(json.dumps(result.to_dict(), indent=1))
    assert not result.passed, result.reason
    assert result.value < result.threshold
    assert result.on_policy_value + result.difference_ci_low < result.threshold
    assert result.max_weight > 1.0


def test_the_window_and_max_rows_select_the_last_matured_rows(log: Log, champion):
    requirement = OpeRequirement(estimator="snipw", max_rows=1_000)
    result = evaluate_challenger(
        log.home, CONFIG, champion, requirement, "revenue", WINDOW_S, now=NOW
    )
    assert result.n == 1_000 and result.estimator == "snipw" and result.reward == "revenue"
    assert result.dropped["older_than_max_rows"] == N_LOGGED - 1_000
    assert result.passed, result.reason


def test_an_empty_log_fails_with_a_reason(tmp_path, champion):
    result = evaluate_challenger(Home(tmp_path), CONFIG, champion, OpeRequirement())
    assert not result.passed and result.n == 0
    assert "no logged decision" in result.reason
    assert result.to_dict()["value"] is None
