"""A served bandit experiment's policy, contexts and rewards, built from its configuration.

`BanditSpec` ties a ``kind: bandit`` experiment's ``bandit:`` block to the action catalogue
and the feature contract, so that the loader (validation), the serving replicas
(:mod:`serving.bandit_arm`) and the updater (:mod:`experiments.bandits.updater`)
build the same policy and see the same contexts and rewards:

- **policy**: ``POLICY_CLASSES[bandit.policy]`` with ``bandit.params``; ``n_actions`` is the
  catalogue's size, ``n_features`` (linear policies) the encoded context's length, ``floor``
  the config's and ``seed`` a hash of the experiment's name. Burn-in is applied by the
  served policy (uniform until ``burn_in`` decisions have been learned), not by the class:
  a replica's own count of decisions would differ from its neighbours'.
- **context**, by the class's ``context_kind``: ``none`` → None; ``scores`` → the scoring
  model's expected value per action code (NaN where not scored); ``features`` → the
  decision's contract vector (as served and logged) encoded for a linear model by
  :class:`experiments.bandits.context.LinearContext` (intercept, one-hot categories, 0/1
  booleans, numbers scaled by their contract range), the encoder the simulation uses too.
- **reward**: :func:`liftgate.core.reward.reward_of` of the configured kind — ``converted``
  (0/1), ``revenue``, or ``profit`` (revenue − the action's cost) — within the attribution
  window (``bandit.attribution_window_hours``, default the experiment's); a decision
  without an outcome in the window has converted 0, revenue 0.

>>> from configs.loader import load_config
>>> config = load_config()
>>> spec = BanditSpec(config.experiments["bandit-offers"], config.features, config.actions)
>>> spec.served_name, spec.arms, spec.context_kind, spec.window_s
('bandit:thompson', ('learner',), 'none', 86400.0)
>>> policy = spec.new_policy()
>>> type(policy).__name__, policy.n_actions, policy.floor
('BetaThompson', 5, 0.01)
>>> spec.rewards(converted=np.array([True, False]), revenue=np.array([40.0, 0.0]),
...              codes=np.array([1, 2])).tolist()
[1.0, 0.0]
>>> spec.context(np.zeros(len(config.features.features)), None) is None  # Thompson: none
True

References: Li, Chu, Langford & Schapire (2010), "A Contextual-Bandit Approach to
Personalized News Article Recommendation", WWW 2010, section 5.2 (a context of an intercept,
binary user features and scaled numeric ones); Chapelle & Li (2011), "An Empirical Evaluation
of Thompson Sampling", NeurIPS 24, section 4 (rewards observed after a delay).
"""

from __future__ import annotations

import hashlib
import inspect
from typing import Any

import numpy as np

from configs.loader import LiftgateConfig
from configs.schema import (
    ActionsConfig,
    BanditConfig,
    ExperimentConfig,
    FeaturesConfig,
)
from experiments.bandits.base import Policy
from experiments.bandits.context import LinearContext
from experiments.bandits.policies import POLICY_CLASSES
from liftgate.core.reward import reward_of
from liftgate.core.vocabulary import BANDIT, OLD_BANDIT_POLICIES, served_bandit_name, spellings

#: Parameters the platform sets; `bandit.params` may not.
PLATFORM_PARAMS = ("n_actions", "n_features", "floor", "burn_in", "seed")


#: A parameter's kind (from its default) → the kinds of value it takes.
_ACCEPTED_KINDS = {
    "an integer": {"an integer"},
    "a number": {"an integer", "a number"},
    "a string": {"a string"},
}


def _value_kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    return "a string" if isinstance(value, str) else None


def experiment_seed(name: str) -> int:
    """A stable 32-bit seed of the experiment's name."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=4).digest(), "big")


class BanditSpec:
    """The learner of a ``kind: bandit`` experiment, for a catalogue and a contract."""

    def __init__(
        self, experiment: ExperimentConfig, features: FeaturesConfig, actions: ActionsConfig
    ):
        if experiment.bandit is None:
            raise ValueError(f"experiment {experiment.name!r} is not of kind bandit")
        self.experiment = experiment
        self.bandit: BanditConfig = experiment.bandit
        self.policy_class = POLICY_CLASSES[self.bandit.policy]
        self.context_kind = self.policy_class.context_kind
        self.encoder = LinearContext(features)
        self.action_ids = tuple(a.id for a in actions.actions)
        self.costs = np.array([a.cost for a in actions.actions], dtype=np.float64)

    @property
    def name(self) -> str:
        return self.experiment.name

    @property
    def served_name(self) -> str:
        """What the response and the decision log carry as `policy`."""
        return served_bandit_name(self.bandit.policy)

    @property
    def logged_names(self) -> tuple[str, ...]:
        """`served_name` as the decision logs of every release carry it."""
        names = spellings(self.bandit.policy, OLD_BANDIT_POLICIES)
        return tuple(served_bandit_name(name) for name in names)

    @property
    def arms(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.experiment.arms if a.policy == BANDIT)

    @property
    def window_s(self) -> float:
        hours = self.bandit.attribution_window_hours or self.experiment.attribution_window_hours
        return hours * 3600.0

    def policy_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"n_actions": len(self.action_ids)}
        if "n_features" in inspect.signature(self.policy_class).parameters:
            params["n_features"] = self.encoder.dimension
        return {
            **params,
            **self.bandit.params,
            "floor": self.bandit.floor,
            "seed": experiment_seed(self.name),
        }

    def new_policy(self) -> Policy:
        """The policy before any update (raises ValueError naming a bad `bandit.params` key)."""
        accepted = inspect.signature(self.policy_class).parameters
        for key, value in self.bandit.params.items():
            if key in PLATFORM_PARAMS:
                raise ValueError(
                    f"bandit.params.{key}: set by the platform "
                    "(n_actions and n_features from the catalogue and contract; floor, burn_in "
                    "are keys of `bandit:`)"
                )
            if key not in accepted:
                expected = sorted(set(accepted) - set(PLATFORM_PARAMS))
                raise ValueError(
                    f"bandit.params.{key}: not a parameter of {self.policy_class.__name__}; "
                    f"expected one of {expected}"
                )
            kind = _value_kind(accepted[key].default)
            if kind is not None and _value_kind(value) not in _ACCEPTED_KINDS[kind]:
                raise ValueError(f"bandit.params.{key}: expected {kind}; found {value!r}")
        try:
            return self.policy_class(**self.policy_params())
        except (TypeError, ValueError) as exc:
            raise ValueError(f"bandit.params: {exc}") from None

    def mismatch(self, policy: Policy) -> str | None:
        """Why a persisted policy is not this configuration's (None if it is)."""
        expected = self.new_policy().get_params()
        if type(policy) is not self.policy_class:
            return f"it is a {type(policy).__name__}; the configuration says {self.bandit.policy}"
        changed = sorted(k for k, v in expected.items() if policy.get_params().get(k) != v)
        if changed:
            return f"its parameters {changed} differ from the configuration's"
        return None

    def context(self, features: np.ndarray, scores: np.ndarray | None) -> np.ndarray | None:
        """The context of one decision: `scores` is the length-n_actions expected values."""
        if self.context_kind == "features":
            return self.encoder.encode(features)[0]
        if self.context_kind == "scores":
            return scores
        return None

    def scores_by_code(self, codes: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Expected values of the scored `codes` in a length-n_actions array (NaN elsewhere)."""
        out = np.full(len(self.action_ids), np.nan)
        out[np.asarray(codes, dtype=np.int64)] = values
        return out

    def batch_contexts(self, features: np.ndarray) -> np.ndarray | None:
        """Contexts of a batch of logged decisions (rows × contract features) for `update`;
        only feature policies learn from contexts."""
        return self.encoder.encode(features) if self.context_kind == "features" else None

    def rewards(self, converted: np.ndarray, revenue: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """The configured reward of each decision from its attributed outcomes."""
        cost = self.costs[np.asarray(codes, dtype=np.int64)]
        return reward_of(self.bandit.reward, converted, revenue, cost)


def bandit_config_problems(config: LiftgateConfig) -> list[str]:
    """`file: key: problem` for each bandit experiment whose policy cannot be built.

    A check for :func:`configs.loader.load_config` (its `checks`): it builds the policy.
    """
    problems = []
    for name, experiment in config.experiments.items():
        if experiment.bandit is None:
            continue
        try:
            BanditSpec(experiment, config.features, config.actions).new_policy()
        except ValueError as exc:
            problems.append(f"{config.directory / 'experiments' / f'{name}.yaml'}: {exc}")
    return problems
