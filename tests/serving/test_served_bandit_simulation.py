"""A served bandit learns from the world's outcomes through the decision service in-process:
decide → outcomes posted to the service → update → replicas reload → the allocation shifts
toward the world's best offer."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from pathlib import Path

import numpy as np

from configs.loader import load_config
from configs.schema import ExperimentConfig
from experiments import state as experiment_state
from experiments.bandits.store import BanditStore
from experiments.bandits.updater import settle_seconds
from experiments.logs.reader import read_decisions
from liftgate.core.home import Home
from serving.api_models import DecideRequest, OutcomeRequest
from serving.bandit_arm import BanditProvider

CONFIG = load_config()
ROUNDS, DECISIONS_PER_ROUND = 6, 300
SETTLE_S = settle_seconds(CONFIG)


class CountingIds:
    """Deterministic decision ids, so that the run (and its draws) is reproducible."""

    def __init__(self) -> None:
        self._count = itertools.count()
        self._issued: dict[str, dt.datetime] = {}

    def new(self, at: dt.datetime | None = None) -> str:
        decision_id = f"decision-{next(self._count):06d}"
        self._issued[decision_id] = at or dt.datetime.now(dt.UTC)
        return decision_id

    def issued_at(self, decision_id: str) -> dt.datetime | None:
        return self._issued.get(decision_id)


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


def share_of(answers: list[dict], action: str) -> float:
    learner = [a for a in answers if a["arm"] == "learner"]
    return sum(a["chosen"] == action for a in learner) / len(learner)


def test_the_served_bandit_shifts_toward_the_best_action(make_service, world, tmp_path: Path):
    experiment = ExperimentConfig.model_validate(
        {
            "name": "bandit-sim",
            "kind": "bandit",
            "bandit": {
                "policy": "thompson",
                "attribution_window_hours": 1,
                "update_every_s": 0.001,  # an update on every refresh
            },
            "arms": [
                {"name": "uniform", "weight": 0.1, "policy": "uniform_random"},
                {"name": "learner", "weight": 0.9, "policy": "bandit"},
            ],
            "primary_metric": {"name": "conversion", "kind": "binomial", "column": "converted"},
        }
    )
    experiment_state.start(Home(tmp_path), experiment)
    router = experiment_state.router_from_state(experiment_state.read_state(Home(tmp_path)))
    clock = Clock()
    provider = BanditProvider(CONFIG, Home(tmp_path), clock=clock)
    provider.refresh(router)
    service = make_service(
        experiments=lambda: router, arm_policies=provider.get, decision_ids=CountingIds()
    )

    customers = world.customers
    truth = world.conversion_probability(customers)
    best = world.action_ids[int(np.argmax(truth.mean(axis=0)))]
    row_of = {c: i for i, c in enumerate(customers["customer_id"])}
    rng = np.random.default_rng(0)
    shares = []
    for _ in range(ROUNDS):
        answers = []
        for customer in rng.choice(customers["customer_id"].to_numpy(), DECISIONS_PER_ROUND):
            request = DecideRequest(customer_id=customer)
            answer = asyncio.run(service.decide(request, trace_id="t" * 32))
            answers.append(answer)
            code = world.action_ids.index(answer["chosen"])
            if rng.random() < truth[row_of[customer], code]:
                outcome = OutcomeRequest(decision_id=answer["decision_id"], event="conversion")
                asyncio.run(service.record_outcome(outcome))
        shares.append(share_of(answers, best))
        service.decision_log.flush()
        service.outcome_log.flush()
        # Every window has closed; the next round's decisions come after the watermark.
        clock.now = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1, seconds=SETTLE_S + 0.001)
        provider.refresh(router)  # the replica's loader: update, then reload the state

    learner = [a for a in answers if a["arm"] == "learner"]
    assert {a["policy"] for a in learner} == {"bandit:thompson"}
    assert not any(a["fallback"] for a in answers)
    state = BanditStore(Home(tmp_path), "bandit-sim").read()
    assert state.policy.n_updates_ == state.counts.sum() > 0.8 * ROUNDS * DECISIONS_PER_ROUND
    print(f"share of {best} on the learner arm by round: {[round(s, 3) for s in shares]}")
    assert best == "email_20" and shares[-1] > shares[0] + 0.3 and shares[-1] > 0.6, shares

    service.close()
    logged = read_decisions(Home(tmp_path).decision_log).to_pylist()
    by_id = {a["decision_id"]: a for a in learner}
    for row in logged:
        if row["decision_id"] in by_id:
            assert row["propensity"] == by_id[row["decision_id"]]["propensity"]
