"""No offer without consent: whatever the arm, policy, experiment or canary, a customer is
never ranked or chosen an action of a channel they have not consented to."""

from __future__ import annotations

import asyncio

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from configs.loader import load_config
from configs.schema import ArmConfig, ExperimentConfig
from experiments.assignment import initial_ranges
from experiments.canary import CanarySplit
from experiments.router import Assignment, ExperimentRouter, RunningExperiment
from serving.api_models import DecideRequest
from serving.service import Allocation, InvalidRequest

CONFIG = load_config()
CHANNELS = ("email", "push")
ACTION_IDS = [a.id for a in CONFIG.actions.actions]
CHANNEL_OF = {a.id: a.channel for a in CONFIG.actions.actions}
BUILT_IN = ("epsilon_greedy", "uniform_random", "rules")
ADVERSARY = "adversary"  # arms of this name prefix are served by `Adversary` below
EXAMPLES = 20
DECISIONS_PER_EXAMPLE = 500  # 10,000 decisions in all


class Adversary:
    """An arm policy that picks the candidate most likely to be forbidden (the last one, which
    in catalogue order is the push action): if consent were applied after the policy, or
    not at all, it would show."""

    name = "bandit"
    needs_scores = False

    def allocate(self, decision_id, features, eligible, scores) -> Allocation:
        k = len(eligible)
        return Allocation(k - 1, 1.0, np.linspace(0.0, 1.0, k))


@st.composite
def worlds(draw):
    """A random consent table, a random experiment (or a canary, or neither)."""
    n_customers = 60
    granted = {
        f"c{i:07d}": frozenset(c for c in CHANNELS if draw(st.booleans()))
        for i in range(n_customers)
    }
    kind = draw(st.sampled_from(["experiment", "canary", "none"]))
    arms = []
    if kind == "experiment":
        for j in range(draw(st.integers(2, 3))):
            subset = draw(
                st.one_of(st.none(), st.lists(st.sampled_from(ACTION_IDS), min_size=1, unique=True))
            )
            arms.append(
                ArmConfig(
                    name=f"{draw(st.sampled_from(('arm', ADVERSARY)))}{j}",
                    weight=1.0,
                    policy=draw(st.sampled_from(BUILT_IN)),
                    actions=subset,
                )
            )
    weight = draw(st.floats(0.05, 0.5))
    return granted, kind, arms, weight


def router_for(arms: list[ArmConfig]) -> ExperimentRouter:
    weights = {arm.name: 1.0 / len(arms) for arm in arms}
    arms = [arm.model_copy(update={"weight": weights[arm.name]}) for arm in arms]
    config = ExperimentConfig.model_validate(
        {
            "name": "consent-law",
            "arms": [arm.model_dump() for arm in arms],
            "primary_metric": {"name": "conversion", "kind": "binomial", "column": "converted"},
        }
    )
    return ExperimentRouter([RunningExperiment(config, initial_ranges(weights))])


def offered(answer: dict) -> set[str]:
    return {entry["action"] for entry in answer["ranked"]} | {answer["chosen"]}


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=worlds(), seed=st.integers(0, 2**32 - 1))
def test_no_action_is_offered_without_consent(make_service, world, seed) -> None:
    granted, kind, arms, weight = world
    router = router_for(arms) if arms else ExperimentRouter([])
    split = CanarySplit("law", "salt", weight, False, "7") if kind == "canary" else None

    def arm_policy(assignment: Assignment):
        return Adversary() if assignment.arm.name.startswith(ADVERSARY) else None

    service = make_service(
        consent=granted.__getitem__,
        experiments=lambda: router,
        arm_policies=arm_policy,
        canary=lambda: split,
        decision_log=None,
        outcome_log=None,
        outcome_ledger=None,
    )
    rng = np.random.default_rng(seed)
    customers = sorted(granted)

    async def run() -> tuple[int, int]:
        violations = answered = 0
        for _ in range(DECISIONS_PER_EXAMPLE):
            customer = customers[rng.integers(len(customers))]
            candidates = None
            if rng.random() < 0.3:
                candidates = list(rng.choice(ACTION_IDS, rng.integers(1, 4), replace=False))
            try:
                answer = await service.decide(
                    DecideRequest(customer_id=customer, candidates=candidates), "t" * 32
                )
            except InvalidRequest:
                continue  # nothing offered: allowed
            answered += 1
            forbidden = {
                action
                for action in offered(answer)
                if CHANNEL_OF[action] != "none" and CHANNEL_OF[action] not in granted[customer]
            }
            violations += bool(forbidden)
        return violations, answered

    violations, answered = asyncio.run(run())
    assert violations == 0
    assert answered > DECISIONS_PER_EXAMPLE // 4  # the law was exercised, not dodged


def test_the_adversary_would_break_the_law_without_the_consent_mask(make_service) -> None:
    """The property above can fail: with consent to everything, the adversary picks push."""
    router = router_for([ArmConfig(name=f"{ADVERSARY}{n}", weight=1.0) for n in "ab"])
    service = make_service(
        consent=lambda customer_id: frozenset(CHANNELS),
        experiments=lambda: router,
        arm_policies=lambda assignment: Adversary(),
        decision_log=None,
        outcome_log=None,
        outcome_ledger=None,
    )
    answers = [
        asyncio.run(service.decide(DecideRequest(customer_id=f"c{i:07d}"), "t" * 32))
        for i in range(40)
    ]
    assert any(answer["chosen"] == "push_reminder" for answer in answers)


def test_a_revocation_applies_to_the_next_decision(make_service) -> None:
    consent = {"c0000001": frozenset({"email"})}
    service = make_service(consent=consent.__getitem__, decision_log=None, outcome_log=None)
    request = DecideRequest(customer_id="c0000001")
    before = asyncio.run(service.decide(request, "t" * 32))
    consent["c0000001"] = frozenset()
    after = asyncio.run(service.decide(request, "t" * 32))
    assert any(CHANNEL_OF[a] == "email" for a in offered(before))
    assert offered(after) == {"no_action"}


def test_an_unreadable_consent_store_offers_only_what_needs_no_consent(make_service) -> None:
    def broken(customer_id: str) -> frozenset[str]:
        raise OSError("disk I/O error")

    service = make_service(consent=broken, decision_log=None, outcome_log=None)
    answer = asyncio.run(service.decide(DecideRequest(customer_id="c0000001"), "t" * 32))
    assert offered(answer) == {"no_action"}
    assert 'liftgate_errors_total{kind="consent"} 1.0' in service.metrics.exposition().decode()
