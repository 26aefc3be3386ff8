"""The action catalogue as arrays: ids, costs, fallback order and vectorized eligibility.

>>> from configs.loader import load_config
>>> catalogue = ActionCatalogue(load_config().actions)
>>> catalogue.ids[:2]
('no_action', 'email_10')
>>> catalogue.eligibility_mask({"device": ["desktop", "ios"]}).tolist()[0]
[True, True, True, True, False]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from configs.schema import ActionsConfig, EligibilityRule
from liftgate.core.contract import as_numpy


def _rule_holds(rule: EligibilityRule, values: np.ndarray) -> np.ndarray:
    if rule.in_ is not None:
        allowed = set(rule.in_)
        return np.fromiter((v in allowed for v in values), dtype=bool, count=len(values))
    numeric = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    holds = ~np.isnan(numeric)
    if rule.min is not None:
        holds &= numeric >= rule.min
    if rule.max is not None:
        holds &= numeric <= rule.max
    return holds


class ActionCatalogue:
    """Actions in catalogue order; index `k` is the action code the models are trained on."""

    def __init__(self, config: ActionsConfig):
        self.actions = tuple(config.actions)
        self.ids: tuple[str, ...] = tuple(a.id for a in self.actions)
        self.index: dict[str, int] = {a: k for k, a in enumerate(self.ids)}
        self.costs = np.array([a.cost for a in self.actions], dtype=np.float64)
        self.fallback_order: tuple[str, ...] = tuple(
            a.id for a in sorted(self.actions, key=lambda a: a.fallback_rank)
        )
        self.channels: tuple[str, ...] = tuple(a.channel for a in self.actions)
        #: Per action, the channel a customer must have consented to (None: no consent
        #: needed, e.g. the control, or a channel configured `consent: not_required`).
        self.consent_channels: tuple[str | None, ...] = tuple(
            a.channel if config.needs_consent(a.channel) else None for a in self.actions
        )

    def consent_mask(self, granted: frozenset[str]) -> np.ndarray:
        """Per action: may it be offered to a customer who granted the `granted` channels?

        >>> from configs.loader import load_config
        >>> ActionCatalogue(load_config().actions).consent_mask(frozenset({"email"})).tolist()
        [True, True, True, True, False]
        """
        return np.fromiter(
            (channel is None or channel in granted for channel in self.consent_channels),
            dtype=bool,
            count=len(self.ids),
        )

    def __len__(self) -> int:
        return len(self.ids)

    def codes(self, action_ids: Any) -> np.ndarray:
        """Action ids to integer codes; raises KeyError naming an unknown id."""
        try:
            return np.array([self.index[a] for a in action_ids], dtype=np.int64)
        except KeyError as exc:
            raise KeyError(
                f"unknown action id {exc.args[0]!r}; expected one of {self.ids}"
            ) from None

    def eligibility_mask(self, columns: Mapping[str, Any], n_rows: int | None = None) -> np.ndarray:
        """(rows × actions) booleans: every rule of the action holds for the raw attributes.

        A missing attribute fails the rule, so an action is never offered on unknown grounds.
        """
        if n_rows is None:
            n_rows = len(next(iter(columns.values()))) if columns else 1
        mask = np.ones((n_rows, len(self.ids)), dtype=bool)
        for k, action in enumerate(self.actions):
            for rule in action.eligibility:
                if rule.feature in columns:
                    mask[:, k] &= _rule_holds(rule, as_numpy(columns[rule.feature]))
                else:
                    mask[:, k] = False
        return mask
