"""Serving a bandit experiment's arms from the persisted policy, reloaded when it changes.

`BanditProvider` serves the arms with ``policy: bandit`` (a `serving.arm_policies`
provider). On the replica's loader thread, `refresh` keeps one `ServedBandit` per running
``kind: bandit`` experiment: it runs the update (`experiments.bandits.updater`) every
``bandit.update_every_s``, and re-reads the state file (`experiments.bandits.store`) when
it has changed — after this replica's update or another's — so every replica serves the
last learned state within about a second. A state file that another configuration made is
not served: the arm answers from the rules fallback (``policy_unavailable``) and the
replica logs why. A failed update is logged and the last loaded state stays served.

`ServedBandit.allocate` is a pure function of the loaded state, the decision id and the
context: the action is drawn by inverse CDF with ``liftgate.core.allocation.unit_draw(decision
id)`` and a sampling policy's posterior draws come from a generator seeded by the decision
id, so a logged decision can be replayed from the state it was served with, and the logged
propensity is exactly the probability the action was drawn with. Until ``burn_in``
decisions have been learned, allocation is uniform over the eligible actions.

>>> from configs.loader import load_config
>>> from experiments.bandits.spec import BanditSpec
>>> config = load_config()
>>> spec = BanditSpec(config.experiments["bandit-offers"], config.features, config.actions)
>>> served = ServedBandit(spec, spec.new_policy())
>>> eligible = np.array([0, 1, 2, 3])
>>> choice = served.allocate("decision-1", np.zeros(13), eligible, None)
>>> replayed = ServedBandit(spec, spec.new_policy())
>>> again = replayed.allocate("decision-1", np.zeros(13), eligible, None)
>>> served.name, choice.index == again.index, choice.propensity == again.propensity
('bandit:thompson', True, True)
>>> bool(choice.propensities.sum().round(12) == 1.0), choice.propensity >= 0.01
(True, True)

References: Li, Chu, Langford & Schapire (2011), "Unbiased offline evaluation of
contextual-bandit-based news article recommendation algorithms", WSDM (log the exact
propensity the action was drawn with); Chapelle & Li (2011), "An Empirical Evaluation of
Thompson Sampling", NeurIPS 24 (a policy refreshed from batched updates).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from configs.loader import LiftgateConfig
from configs.schema import ExperimentConfig
from experiments.bandits.base import Policy
from experiments.bandits.spec import BanditSpec
from experiments.bandits.store import BanditState, BanditStateError, BanditStore
from experiments.bandits.updater import settle_seconds, update_experiment
from experiments.router import Assignment, ExperimentRouter
from liftgate.core.allocation import unit_draw
from liftgate.core.home import Home
from liftgate.core.scoring import Scores
from liftgate.core.vocabulary import BANDIT
from serving.service import Allocation

logger = logging.getLogger(__name__)


_PCG64_INCREMENT = np.random.PCG64(0).state["state"]["inc"]  # any odd stream constant


def reseed(generator: np.random.Generator, decision_id: str) -> np.random.Generator:
    """Put a PCG64 `generator` in the state of a decision's posterior draws: a pure function
    of its id, independent of `unit_draw` (which picks the action). Setting the state costs
    ~3 µs where seeding a new generator costs ~30."""
    digest = hashlib.blake2b(decision_id.encode(), digest_size=16, person=b"bandit").digest()
    generator.bit_generator.state = {
        "bit_generator": "PCG64",
        "state": {"state": int.from_bytes(digest, "big"), "inc": _PCG64_INCREMENT},
        "has_uint32": 0,
        "uinteger": 0,
    }
    return generator


class ServedBandit:
    """An `ArmPolicy` over one loaded snapshot of a bandit's policy (read-only but for the
    per-decision generator)."""

    def __init__(self, spec: BanditSpec, policy: Policy):
        self.spec = spec
        self.policy = policy
        self.policy.rng_ = np.random.Generator(np.random.PCG64())  # reseeded per decision
        self.name = spec.served_name
        self.needs_scores = spec.context_kind == "scores"

    def allocate(
        self, decision_id: str, features: np.ndarray, eligible: np.ndarray, scores: Scores | None
    ) -> Allocation:
        eligible = np.asarray(eligible, dtype=np.int64)
        draw = unit_draw(decision_id)
        k = len(eligible)
        if self.policy.n_updates_ < self.spec.bandit.burn_in:
            uniform = np.full(k, 1.0 / k)
            return Allocation(min(int(draw * k), k - 1), 1.0 / k, uniform)
        by_code = None
        if scores is not None:
            by_code = self.spec.scores_by_code(scores.action_codes, scores.expected_value)
        context = self.spec.context(features, by_code)
        reseed(self.policy.rng_, decision_id)
        code, propensities = self.policy.select(context, eligible, draw=draw)
        index = int(np.flatnonzero(eligible == code)[0])
        return Allocation(index, float(propensities[index]), propensities)


class BanditProvider:
    """Serves the ``policy: bandit`` arms of the running bandit experiments."""

    policy = BANDIT

    def __init__(
        self,
        config: LiftgateConfig,
        home: Home,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ):
        self.config = config
        self.home = home
        self.clock = clock
        self.settle_s = settle_seconds(config)
        self._served: dict[str, ServedBandit] = {}  # by experiment; read on the request path
        self._specs: dict[str, BanditSpec] = {}
        self._stores: dict[str, BanditStore] = {}
        self._last_update: dict[str, dt.datetime] = {}

    def refresh(self, router: ExperimentRouter) -> None:
        running = {e.config.name: e.config for e in router.running if e.config.kind == "bandit"}
        for name in set(self._served) - set(running):
            del self._served[name]
        for name, experiment in running.items():
            try:
                self._refresh(experiment)
            except Exception as exc:  # one broken bandit must not stop the others
                self._served.pop(name, None)
                logger.warning("bandit %s is not served (rules fallback): %s", name, exc)

    def _refresh(self, experiment: ExperimentConfig) -> None:
        name = experiment.name
        spec = self._specs.get(name)
        if spec is None or spec.experiment != experiment:
            spec = self._specs[name] = BanditSpec(
                experiment, self.config.features, self.config.actions
            )
            self._stores[name] = BanditStore(self.home, name)  # a new spec: re-read
        store = self._stores[name]
        now, last = self.clock(), self._last_update.get(name)
        if last is None or not 0 <= (now - last).total_seconds() < spec.bandit.update_every_s:
            self._last_update[name] = now  # also after a failure: retried on schedule
            try:
                summary = update_experiment(self.home, spec, self.settle_s, now)
            except Exception as exc:  # the last loaded state stays served
                logger.warning("bandit %s: update failed: %s", name, exc)
            else:
                if summary["learned"]:
                    logger.info("bandit %s learned %d decisions", name, summary["learned"])
        state = store.read_if_changed()
        if state is None and name not in self._served:
            state = store.ensure(lambda: BanditState.initial(spec))
        if state is not None:
            problem = spec.mismatch(state.policy)
            if problem:
                raise BanditStateError(f"{store.path} was made by another configuration: {problem}")
            self._served[name] = ServedBandit(spec, state.policy)

    def get(self, assignment: Assignment) -> ServedBandit | None:
        return self._served.get(assignment.experiment)


def bandit_status(spec: BanditSpec, state: BanditState, features: np.ndarray) -> dict[str, Any]:
    """Per action: decisions learned, mean reward and the propensity served now to a
    customer with contract vector `features` (all actions eligible; None for a scores
    policy, whose propensities depend on the model's scores)."""
    propensities: list[float | None] = [None] * len(spec.action_ids)
    if spec.context_kind != "scores":
        served = ServedBandit(spec, Policy.from_state_dict(state.policy.state_dict()))
        codes = np.arange(len(spec.action_ids))
        propensities = served.allocate("status", features, codes, None).propensities.tolist()
    actions = [
        {
            "action": action,
            "learned": int(n),
            "mean_reward": float(total / n) if n else None,
            "propensity": p,
        }
        for action, n, total, p in zip(
            spec.action_ids, state.counts, state.reward_sums, propensities, strict=True
        )
    ]
    return {
        "experiment": spec.name,
        "policy": spec.served_name,
        "reward": spec.bandit.reward,
        "watermark": None if state.watermark is None else state.watermark.isoformat(),
        "n_updates": state.policy.n_updates_,
        "n_runs": state.n_runs,
        "n_skipped": state.n_skipped,  # closed decisions whose reward was not finite
        "updated_at": None if state.updated_at is None else state.updated_at.isoformat(),
        "burn_in_left": max(0, spec.bandit.burn_in - state.policy.n_updates_),
        "actions": actions,
    }
