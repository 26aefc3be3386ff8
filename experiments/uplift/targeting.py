"""Uplift targeting: treat a customer when the predicted incremental value beats the cost.

An uplift model predicts τ̂(x), the change in conversion probability the treatment action
causes for a customer with features x. Treating is worth it when the expected incremental
revenue exceeds the incremental contact cost, τ̂(x) × v > c, where v is the order value of
a converting customer (the scorer's prediction for the treatment action, or a constant)
and c the treatment's contact cost minus the control's. Otherwise the customer gets the
control action. The rule ignores what a discount costs on the orders that would have
happened anyway; put that in c (or in a lower v) where it matters.

To keep the log usable for off-policy evaluation, the rule explores: with probability ε the
choice is a fair coin, so the greedy action has probability 1 − ε/2 and the other ε/2. The
random draw is an input (a hash of the decision id when served), so every choice and its
propensity can be replayed exactly.

>>> target(uplift=0.03, value=50.0, cost=0.05, epsilon=0.1, draw=0.5)
Targeting(treat=True, treat_probability=0.95, control_probability=0.05)
>>> choice = target(uplift=0.03, value=50.0, cost=0.05, epsilon=0.1, draw=0.97)  # explores
>>> choice.treat, choice.propensity
(False, 0.05)
>>> treat_probability(np.array([-0.02, 0.0005, 0.03]), 50.0, cost=0.05, epsilon=0.1).tolist()
[0.05, 0.05, 0.95]

References: Verbeke, Olaya, Guerry & Van Belle (2023), "To do or not to do?
Cost-sensitive causal classification with individual treatment effect estimates",
European Journal of Operational Research 305(2) (treat when τ̂·benefit > cost);
Sutton & Barto (2018), *Reinforcement Learning*, §2.2 (ε-greedy exploration).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Targeting:
    """One choice, treat or not, and the exact probabilities of both."""

    treat: bool
    treat_probability: float
    control_probability: float

    @property
    def propensity(self) -> float:
        """The probability of the choice made."""
        return self.treat_probability if self.treat else self.control_probability


def _check_epsilon(epsilon: float) -> None:
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon: expected a number in [0, 1]; got {epsilon}")


def treat_probability(uplift, value, cost: float, epsilon: float = 0.0) -> np.ndarray:
    """P(treat) per row: 1 − ε/2 where uplift × value > cost, else ε/2 (NaN: don't treat)."""
    _check_epsilon(epsilon)
    greedy = np.asarray(uplift, dtype=np.float64) * np.asarray(value, dtype=np.float64) > cost
    return np.where(greedy, 1.0 - epsilon / 2.0, epsilon / 2.0)


def target(uplift: float, value: float, cost: float, epsilon: float, draw: float) -> Targeting:
    """The choice for one customer given a uniform ``draw`` in [0, 1)."""
    _check_epsilon(epsilon)
    greedy, other = 1.0 - epsilon / 2.0, epsilon / 2.0
    p_treat, p_control = (greedy, other) if uplift * value > cost else (other, greedy)
    return Targeting(draw < p_treat, p_treat, p_control)
