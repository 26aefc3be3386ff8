"""Serving a bandit's arms from the shared state (serving/bandit_arm.py)."""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pytest
from served_helpers import CONFIG, NOON, bandit_experiment, decision, spec_of, write_logs

from experiments import state as experiment_state
from experiments.bandits.base import Batch, Policy
from experiments.bandits.store import BanditState, BanditStore
from experiments.router import Assignment
from liftgate.core.allocation import unit_draw
from liftgate.core.contract import FeatureContract
from liftgate.core.home import Home
from liftgate.core.scoring import Scores
from serving.arm_policies import ArmPolicies, default_providers
from serving.bandit_arm import BanditProvider, ServedBandit, reseed

ALL = np.arange(5)
CONTRACT = FeatureContract(CONFIG.features)


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def running(home: Home, experiment) -> Assignment:
    """Start `experiment` under `home`; return the router and an assignment to its learner."""
    experiment_state.start(home, experiment)
    router = experiment_state.router_from_state(experiment_state.read_state(home))
    arm = next(a for a in experiment.arms if a.name == "learner")
    return router, Assignment(experiment.name, "learner", arm)


def trained(spec, n: int = 200) -> Policy:
    policy = spec.new_policy()
    actions = np.arange(n) % 5
    policy.update(Batch(None, actions, (actions == 2).astype(float)))
    return policy


def test_the_provider_is_registered_and_serves_the_learner_arm(home: Home) -> None:
    router, assignment = running(home, bandit_experiment())
    policies = ArmPolicies(default_providers(CONFIG, home))
    policies.refresh(router)
    served = policies.get(assignment)
    assert served.name == "bandit:thompson" and served.needs_scores is False
    assert BanditStore(home, "bandit-test").path.exists()  # a fresh store was created
    assert policies.get(Assignment("another", "learner", assignment.arm)) is None


def test_logged_propensities_are_the_distribution_the_action_was_drawn_from() -> None:
    spec = spec_of(bandit_experiment())
    served = ServedBandit(spec, trained(spec))
    reference = Policy.from_state_dict(served.policy.state_dict())
    eligible = np.array([0, 1, 2, 4])
    for i in range(50):
        decision_id = f"decision-{i}"
        choice = served.allocate(decision_id, np.zeros(13), eligible, None)
        reseed(reference.rng_, decision_id)
        p, _ = reference.distribution(None, eligible)
        np.testing.assert_array_equal(choice.propensities, p)
        expected = np.searchsorted(np.cumsum(p), unit_draw(decision_id), side="right")
        assert choice.index == min(int(expected), len(p) - 1)
        assert choice.propensity == p[choice.index] >= spec.bandit.floor


def test_a_decision_replays_from_the_state_it_was_served_with(home: Home) -> None:
    spec = spec_of(bandit_experiment())
    store = BanditStore(home, spec.name)
    with store.transaction(lambda: BanditState.initial(spec)) as state:
        state.policy = trained(spec)
    replicas = [ServedBandit(spec, BanditStore(home, spec.name).read().policy) for _ in "ab"]
    ids = [f"d{i}" for i in range(30)]
    first = [replicas[0].allocate(d, np.zeros(13), ALL, None) for d in ids]
    second = [replicas[1].allocate(d, np.zeros(13), ALL, None) for d in reversed(ids)][::-1]
    assert [(c.index, c.propensity) for c in first] == [(c.index, c.propensity) for c in second]
    shares = np.bincount([c.index for c in first], minlength=5) / len(first)
    assert shares[2] > 0.5  # the learned best action


def test_burn_in_is_uniform_until_enough_decisions_are_learned() -> None:
    spec = spec_of(bandit_experiment(burn_in=100))
    policy = trained(spec, n=99)
    choice = ServedBandit(spec, policy).allocate("d", np.zeros(13), ALL, None)
    assert choice.propensities.tolist() == [0.2] * 5 and choice.propensity == 0.2
    policy.update(Batch(None, [2], [1.0]))
    choice = ServedBandit(spec, policy).allocate("d", np.zeros(13), ALL, None)
    assert choice.propensities.max() > 0.5


def test_linear_policies_see_the_encoded_contract_vector() -> None:
    spec = spec_of(bandit_experiment(policy="linucb", params={"alpha": 0.0}))
    policy = spec.new_policy()
    mobile, _ = CONTRACT.transform_row({"device": "ios"})
    desktop, _ = CONTRACT.transform_row({"device": "desktop"})
    contexts = spec.batch_contexts(np.array([mobile, desktop] * 50))
    actions = np.array([4, 0] * 50)
    policy.update(Batch(contexts, actions, np.ones(100)))
    served = ServedBandit(spec, policy)
    assert ALL[served.allocate("d", mobile, ALL, None).index] == 4
    assert ALL[served.allocate("d", desktop, ALL, None).index] == 0


def test_a_scores_policy_needs_scores_and_explores_around_them() -> None:
    spec = spec_of(bandit_experiment(policy="model", params={"temperature": 0.1}))
    served = ServedBandit(spec, spec.new_policy())
    assert served.needs_scores
    eligible = np.array([1, 2, 3])
    value = np.array([0.1, 0.5, 0.2])
    scores = Scores(eligible, value, np.ones(3), value, value, value)
    choice = served.allocate("d", np.zeros(13), eligible, scores)
    softmax = np.exp(value / 0.1) / np.exp(value / 0.1).sum()
    np.testing.assert_allclose(choice.propensities, 0.97 * softmax + 0.01)


def test_replicas_update_on_schedule_and_reload_what_others_learned(home: Home) -> None:
    router, assignment = running(home, bandit_experiment(update_every_s=60))
    closed = NOON + dt.timedelta(hours=1, minutes=1)  # the 1 h window and the settle margin
    write_logs(home, [decision(f"d{i}", NOON, "email_20") for i in range(5)])
    write_logs(home, [decision("later", NOON + dt.timedelta(seconds=30), "email_20")])
    clocks = [Clock(closed), Clock(closed)]
    replicas = [BanditProvider(CONFIG, home, clock=c) for c in clocks]
    replicas[0].refresh(router)
    assert replicas[0].get(assignment).policy.n_updates_ == 5
    replicas[1].refresh(router)  # its own update finds nothing new; it loads the state
    assert replicas[1].get(assignment).policy.n_updates_ == 5
    clocks[1].now = closed + dt.timedelta(seconds=59)  # "later" is closed, but no update is due
    replicas[1].refresh(router)
    assert replicas[1].get(assignment).policy.n_updates_ == 5
    clocks[1].now = closed + dt.timedelta(seconds=60)
    replicas[1].refresh(router)
    assert replicas[1].get(assignment).policy.n_updates_ == 6
    clocks[0].now = closed + dt.timedelta(seconds=1)
    replicas[0].refresh(router)  # no update of its own: it reloads the changed file
    assert replicas[0].get(assignment).policy.n_updates_ == 6


def test_a_state_of_another_configuration_is_not_served(home: Home, caplog) -> None:
    router, assignment = running(home, bandit_experiment())
    spec = spec_of(bandit_experiment(policy="ucb"))
    BanditStore(home, spec.name).ensure(lambda: BanditState.initial(spec))
    provider = BanditProvider(CONFIG, home)
    with caplog.at_level(logging.WARNING):
        provider.refresh(router)
    assert provider.get(assignment) is None
    assert "is not served (rules fallback)" in caplog.text and "UCB" in caplog.text


def test_a_failed_update_keeps_the_last_state_served(home: Home, monkeypatch, caplog):
    router, assignment = running(home, bandit_experiment(update_every_s=0.001))
    provider = BanditProvider(CONFIG, home)
    provider.refresh(router)

    def unreadable_logs(*args, **kwargs):
        raise OSError("decision log unreadable")

    monkeypatch.setattr("serving.bandit_arm.update_experiment", unreadable_logs)
    with caplog.at_level(logging.WARNING):
        provider.refresh(router)
    assert provider.get(assignment) is not None
    assert "update failed: decision log unreadable" in caplog.text


def test_stopped_experiments_are_dropped(home: Home) -> None:
    router, assignment = running(home, bandit_experiment())
    provider = BanditProvider(CONFIG, home)
    provider.refresh(router)
    assert provider.get(assignment) is not None
    experiment_state.stop(home, "bandit-test")
    provider.refresh(experiment_state.router_from_state(experiment_state.read_state(home)))
    assert provider.get(assignment) is None


@pytest.mark.parametrize(
    "policy", ["thompson", "ucb", "epsilon_greedy", "gaussian_ts", "uniform_random"]
)
def test_every_context_free_policy_serves_valid_propensities(policy: str) -> None:
    spec = spec_of(bandit_experiment(policy=policy))
    choice = ServedBandit(spec, spec.new_policy()).allocate("d", np.zeros(13), ALL, None)
    assert choice.propensities.sum() == pytest.approx(1.0)
    assert choice.propensity == choice.propensities[choice.index] >= 0.01
