"""Arm policies beyond the built-in ones, loaded per replica by providers.

An experiment arm names its allocation policy (`ArmConfig.policy`). The built-in ones
(ε-greedy, uniform random, rules) live in the decision service; the others (a served
bandit, uplift targeting) need state that a replica loads and refreshes: learned bandit
parameters, an uplift model. A provider serves one policy name. The replica's loader
thread calls `refresh` with the running experiments (about every second); the request
path calls `get`, which must be cheap.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from configs.loader import LiftgateConfig
from experiments.router import Assignment, ExperimentRouter
from liftgate.core.home import Home
from serving.service import ArmPolicy


class ArmPolicyProvider(Protocol):
    policy: str  # the `ArmConfig.policy` value this provider serves

    def refresh(self, router: ExperimentRouter) -> None:
        """Load or reload what the running arms with this policy need (loader thread)."""

    def get(self, assignment: Assignment) -> ArmPolicy | None:
        """The loaded policy of this arm (None while it is not loaded: rules fallback)."""


class ArmPolicies:
    """Dispatch an assignment to the provider of its arm's policy."""

    def __init__(self, providers: Iterable[ArmPolicyProvider] = ()):
        self.providers = {provider.policy: provider for provider in providers}

    def refresh(self, router: ExperimentRouter) -> None:
        for provider in self.providers.values():
            provider.refresh(router)

    def get(self, assignment: Assignment) -> ArmPolicy | None:
        provider = self.providers.get(assignment.arm.policy)
        return provider.get(assignment) if provider else None


def default_providers(config: LiftgateConfig, home: Home) -> list[ArmPolicyProvider]:
    """The providers a replica runs; imported here so that a replica without such arms
    pays only for the imports."""
    from serving.bandit_arm import BanditProvider
    from serving.uplift_arm import UpliftTargetingProvider

    return [BanditProvider(config, home), UpliftTargetingProvider(config, home)]
