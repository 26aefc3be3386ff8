"""One OPE report: every estimator with its interval, overlap diagnostics and the logged value.

:func:`evaluate` is what ``liftgate ope`` prints: the five estimators of
:mod:`experiments.ope.estimators` from a single bootstrap, the weight diagnostics of
:mod:`experiments.ope.diagnostics`, and the logged (behaviour) policy's mean reward, the
value any candidate is compared to.

>>> import numpy as np
>>> rng = np.random.default_rng(1)
>>> n = 20_000
>>> action = rng.integers(0, 2, n)                   # uniform logging over two actions
>>> reward = (rng.random(n) < np.where(action == 1, 0.3, 0.1)).astype(float)
>>> always_1 = np.tile([0.0, 1.0], (n, 1))
>>> report = evaluate(reward, action, np.full(n, 0.5), always_1, np.tile([0.1, 0.3], (n, 1)))
>>> round(report.estimates["ipw"].value, 1), round(report.on_policy_value, 1)
(0.3, 0.2)
>>> round(report.ess_ratio, 1)
0.5
>>> report.estimates["ipw"].ci_low < 0.3 < report.estimates["ipw"].ci_high
True

Reference: Saito et al. (2021), "Open Bandit Dataset and Pipeline", NeurIPS Datasets and
Benchmarks (``OffPolicyEvaluation.summarize_off_policy_estimates``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from experiments.ope.bootstrap import DEFAULT_RESAMPLES
from experiments.ope.diagnostics import weight_diagnostics
from experiments.ope.estimators import (
    ESTIMATOR_NAMES,
    Estimate,
    check_inputs,
    estimate_all,
    importance_weights,
)


@dataclass(frozen=True)
class OPEReport:
    n: int
    n_actions: int
    estimates: dict[str, Estimate]
    ess: float
    max_weight: float
    on_policy_value: float
    warnings: list[str]

    @property
    def ess_ratio(self) -> float:
        return self.ess / self.n

    def to_dict(self) -> dict:
        return {
            "n": self.n,
            "n_actions": self.n_actions,
            "estimates": {
                name: self.estimates[name].to_dict() if name in self.estimates else None
                for name in ESTIMATOR_NAMES
            },
            "ess": self.ess,
            "ess_ratio": self.ess_ratio,
            "max_weight": self.max_weight,
            "on_policy_value": self.on_policy_value,
            "warnings": list(self.warnings),
        }


def evaluate(
    reward: np.ndarray,
    action: np.ndarray,
    pscore: np.ndarray,
    action_dist: np.ndarray,
    reward_hat: np.ndarray | None = None,
    alpha: float = 0.05,
    n_resamples: int = DEFAULT_RESAMPLES,
    random_state: int | None = 0,
) -> OPEReport:
    """Estimate the value of ``action_dist`` on the log; see the module docstring."""
    reward, action, pscore, action_dist, reward_hat = check_inputs(
        reward, action, pscore, action_dist, reward_hat
    )
    estimates = estimate_all(
        reward, action, pscore, action_dist, reward_hat, alpha, n_resamples, random_state
    )
    diagnostics = weight_diagnostics(importance_weights(action, pscore, action_dist))
    warnings = list(diagnostics.warnings)
    if reward_hat is None:
        warnings.append("no reward model: DM, DR and SNDR are not estimated")
    return OPEReport(
        n=len(reward),
        n_actions=action_dist.shape[1],
        estimates=estimates,
        ess=diagnostics.ess,
        max_weight=diagnostics.max_weight,
        on_policy_value=float(reward.mean()),
        warnings=warnings,
    )
