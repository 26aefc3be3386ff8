"""The bandit policy contract: `select` a candidate with its propensities, `update` on a batch.

A policy chooses among *candidates*, the integer codes (catalogue order) of the actions that
are eligible for this decision, and returns the chosen code together with the probability of
every candidate under the policy, aligned with `candidates`. The propensities are what the
action was actually drawn from, so a log of them supports off-policy evaluation. Two
safeguards are applied here, identically for every policy:

- **burn-in**: the first `burn_in` decisions are uniform over the candidates;
- **floor**: the policy's distribution p is mixed with the uniform one,
  ``(1 − λ) p + λ / k`` with ``λ = min(1, k · floor)``, so every candidate has propensity
  ≥ `floor` (when ``k · floor ≤ 1``) and no action is ever starved of data.

A subclass implements `_distribution(context, candidates)` (its probabilities over the
candidates and, for Monte-Carlo estimates, their standard errors) and `_learn(batch)`.
Deterministic index policies (UCB, LinUCB, greedy) put their mass on the maximisers, split
equally between ties, so their propensities are exact. Sampling policies (Thompson) estimate
P(candidate is the argmax) from `n_draws` posterior draws and then draw the action *from that
estimate*: the logged propensity is then the exact probability with which the action was
taken, and `stderr_` reports how far the estimate may be from the ideal Thompson probability.

Updates arrive in batches, a `Batch` of arrays (contexts (n, d) or None, actions (n,),
rewards (n,)), because rewards arrive late and are applied together. State is JSON-able:
`state_dict()` holds the parameters, the learned arrays and the random generator's state,
and `Policy.from_state_dict` rebuilds a policy that continues exactly where it left off.

>>> import json
>>> from experiments.bandits.epsilon_greedy import EpsilonGreedy
>>> policy = EpsilonGreedy(n_actions=3, epsilon=0.1, floor=0.05, seed=0)
>>> policy.update(Batch(None, np.array([0, 1, 2, 1]), np.array([0.0, 1.0, 0.0, 1.0])))
>>> action, propensities = policy.select(None, np.array([0, 1, 2]))
>>> [round(float(p), 4) for p in propensities]
[0.0783, 0.8433, 0.0783]
>>> clone = Policy.from_state_dict(json.loads(json.dumps(policy.state_dict())))
>>> clone.select(None, np.array([0, 1, 2]))[0] == policy.select(None, np.array([0, 1, 2]))[0]
True

References: Sutton & Barto (2018), "Reinforcement Learning: An Introduction", 2nd ed.,
chapter 2; Li et al. (2011), "Unbiased offline evaluation of contextual-bandit-based news
article recommendation algorithms" (why logged propensities must be the ones drawn from).
"""

from __future__ import annotations

import abc
import inspect
from typing import Any, ClassVar, Literal, NamedTuple

import numpy as np

__all__ = ["Batch", "Policy", "apply_floor", "argmax_distribution", "mc_argmax_distribution"]

ContextKind = Literal["none", "features", "scores"]


class Batch(NamedTuple):
    """Outcomes applied at once: contexts (n, d) or None, action codes (n,), rewards (n,)."""

    contexts: np.ndarray | None
    actions: np.ndarray
    rewards: np.ndarray


def apply_floor(probabilities: np.ndarray, floor: float) -> np.ndarray:
    """Mix with the uniform distribution so that every entry is ≥ `floor` (if k·floor ≤ 1).

    >>> apply_floor(np.array([1.0, 0.0, 0.0, 0.0]), 0.01).round(4).tolist()
    [0.97, 0.01, 0.01, 0.01]
    """
    k = len(probabilities)
    mix = min(1.0, k * floor)
    if mix <= 0.0:
        return probabilities
    return (1.0 - mix) * probabilities + mix / k


def argmax_distribution(values: np.ndarray) -> np.ndarray:
    """All mass on the maximisers of `values`, split equally between ties (NaN never wins).

    >>> argmax_distribution(np.array([1.0, 3.0, 3.0])).tolist()
    [0.0, 0.5, 0.5]
    """
    best = values == np.max(values)
    return best / best.sum()


def mc_argmax_distribution(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P(column is the row-wise argmax), estimated from `samples` (draws × candidates).

    Returns the frequencies and their Monte-Carlo standard errors sqrt(p(1 − p)/M).

    >>> p, se = mc_argmax_distribution(np.array([[0.0, 1.0], [2.0, 1.0], [0.0, 3.0], [0, 5]]))
    >>> p.tolist(), se.round(3).tolist()
    ([0.25, 0.75], [0.217, 0.217])
    """
    draws, k = samples.shape
    counts = np.bincount(samples.argmax(axis=1), minlength=k)
    p = counts / draws
    return p, np.sqrt(p * (1.0 - p) / draws)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


class Policy(abc.ABC):
    """A bandit policy over integer action codes ``0 … n_actions − 1``.

    Parameters are stored unchanged by ``__init__``; learned state ends in ``_``.
    `context_kind` tells a caller what `select` expects as context: ``"none"`` (ignored),
    ``"features"`` (one feature vector of length `n_features`) or ``"scores"`` (one model
    score per action code, length `n_actions`).
    """

    context_kind: ClassVar[ContextKind] = "none"
    #: Array attributes (ending in `_`) that `state_dict` saves; subclasses extend this.
    _state: ClassVar[tuple[str, ...]] = ()
    _registry: ClassVar[dict[str, type[Policy]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not inspect.isabstract(cls):
            Policy._registry[cls.__name__] = cls

    def __init__(
        self,
        n_actions: int,
        floor: float = 0.01,
        burn_in: int = 0,
        seed: int | None = None,
    ):
        if n_actions < 1:
            raise ValueError(f"n_actions must be ≥ 1; got {n_actions}")
        if not 0.0 <= floor <= 1.0:
            raise ValueError(f"floor must be in [0, 1]; got {floor}")
        if burn_in < 0:
            raise ValueError(f"burn_in must be ≥ 0; got {burn_in}")
        self.n_actions = n_actions
        self.floor = floor
        self.burn_in = burn_in
        self.seed = seed
        self.rng_ = np.random.default_rng(seed)
        self.n_selected_ = 0  # decisions taken
        self.n_updates_ = 0  # outcomes learned from
        self.stderr_ = np.zeros(0)  # Monte-Carlo standard errors of the last propensities

    # --- the contract ------------------------------------------------------------------------

    @abc.abstractmethod
    def _distribution(
        self, context: np.ndarray | None, candidates: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The policy's probabilities over `candidates` and their MC standard errors (or None)."""

    @abc.abstractmethod
    def _learn(self, batch: Batch) -> None:
        """Apply a validated batch to the learned state."""

    def distribution(
        self, context: np.ndarray | None, candidates: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Propensities over `candidates` (burn-in and floor applied) and their MC errors.

        Sampling policies consume random numbers here; nothing else changes.
        """
        candidates = np.asarray(candidates, dtype=np.int64)
        k = len(candidates)
        if k == 0:
            raise ValueError("candidates is empty: at least one eligible action is needed")
        if self.n_selected_ < self.burn_in:
            return np.full(k, 1.0 / k), np.zeros(k)
        p, stderr = self._distribution(context, candidates)
        mix = min(1.0, k * self.floor)
        stderr = np.zeros(k) if stderr is None else (1.0 - mix) * stderr
        return apply_floor(p, self.floor), stderr

    def select(
        self, context: np.ndarray | None, candidates: np.ndarray, draw: float | None = None
    ) -> tuple[int, np.ndarray]:
        """Choose one of `candidates` (action codes); return it and every candidate's propensity.

        `draw` is an optional uniform number in [0, 1) (e.g. `liftgate.core.allocation.unit_draw`
        of the decision id) that picks the action by inverse CDF, so a decision can be
        replayed; without it the policy's own generator draws.
        """
        candidates = np.asarray(candidates, dtype=np.int64)
        p, self.stderr_ = self.distribution(context, candidates)
        u = self.rng_.random() if draw is None else draw
        index = min(int(np.searchsorted(np.cumsum(p), u, side="right")), len(p) - 1)
        while p[index] <= 0.0:  # never return a zero-probability candidate (rounding at the end)
            index -= 1
        self.n_selected_ += 1
        return int(candidates[index]), p

    def update(self, batch: Batch | tuple) -> None:
        """Learn from a batch of outcomes ``(contexts or None, actions, rewards)``."""
        contexts, actions, rewards = batch
        actions = np.asarray(actions, dtype=np.int64).reshape(-1)
        rewards = np.asarray(rewards, dtype=np.float64).reshape(-1)
        if len(actions) != len(rewards):
            raise ValueError(f"{len(actions)} actions but {len(rewards)} rewards")
        if len(actions) and (actions.min() < 0 or actions.max() >= self.n_actions):
            raise ValueError(f"action codes must be in [0, {self.n_actions}); got {actions}")
        if not np.isfinite(rewards).all():
            raise ValueError("rewards must be finite")
        if contexts is not None:
            contexts = np.asarray(contexts, dtype=np.float64)
            if contexts.ndim != 2 or len(contexts) != len(actions):
                raise ValueError(
                    f"contexts must be ({len(actions)}, d); got shape {contexts.shape}"
                )
        if len(actions) == 0:
            return
        self._learn(Batch(contexts, actions, rewards))
        self.n_updates_ += len(actions)

    # --- parameters and state ----------------------------------------------------------------

    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters, as stored (scikit-learn convention)."""
        names = [
            name
            for cls in type(self).__mro__
            if cls is not object
            for name in inspect.signature(cls.__init__).parameters
            if name != "self"
            and inspect.signature(cls.__init__).parameters[name].kind
            not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
        ]
        return {name: getattr(self, name) for name in dict.fromkeys(names)}

    def state_dict(self) -> dict[str, Any]:
        """A JSON-able snapshot: class, parameters, learned arrays, counters and RNG state."""
        return {
            "policy": type(self).__name__,
            "params": {k: _jsonable(v) for k, v in self.get_params().items()},
            "state": {name: _jsonable(getattr(self, name)) for name in self._state},
            "n_selected": self.n_selected_,
            "n_updates": self.n_updates_,
            "rng": self.rng_.bit_generator.state,
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> Policy:
        """Rebuild the policy a `state_dict` describes (called on `Policy` or its class)."""
        name = state.get("policy")
        target = Policy._registry.get(name)
        if target is None:
            raise ValueError(
                f"unknown policy {name!r}; known: {', '.join(sorted(Policy._registry))}"
            )
        if cls is not Policy and not issubclass(target, cls):
            raise ValueError(f"state is of a {name}, not a {cls.__name__}")
        policy = target(**state["params"])
        for key in target._state:
            current = getattr(policy, key)
            value = state["state"][key]
            setattr(policy, key, np.asarray(value, dtype=np.asarray(current).dtype))
        policy.n_selected_ = int(state["n_selected"])
        policy.n_updates_ = int(state["n_updates"])
        policy.rng_.bit_generator.state = state["rng"]
        policy._restored()
        return policy

    def _restored(self) -> None:  # noqa: B027 - an optional hook, not part of the contract
        """Recompute derived state after `from_state_dict` (hook)."""

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({params})"
