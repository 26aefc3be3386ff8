"""Replay a logged decision: recompute its scores from the logged feature snapshot and the
logged model version, and check they match what was served."""

from __future__ import annotations

from typing import Any

import numpy as np

from configs.loader import LiftgateConfig
from experiments.logs.reader import find_decision
from liftgate.core.allocation import epsilon_greedy, unit_draw
from liftgate.core.catalogue import ActionCatalogue
from liftgate.core.errors import InputError
from liftgate.core.home import Home
from liftgate.core.scoring import score_actions
from registry.client import ModelRegistry

TOLERANCE = 1e-9


def replay(decision_id: str, config: LiftgateConfig, home: Home) -> dict[str, Any]:
    logged = find_decision(home.decision_log, decision_id)
    if logged is None:
        raise InputError(f"decision {decision_id!r} is not in {home.decision_log}")
    result: dict[str, Any] = {
        "decision_id": decision_id,
        "model": {"name": logged.model_name, "version": logged.model_version},
        "actions": logged.actions,
        "logged_scores": logged.scores,
        "chosen": logged.chosen,
        "fallback": logged.fallback,
    }
    if logged.fallback:  # no model scores were served: nothing to recompute
        return {**result, "replayed_scores": None, "max_abs_diff": None, "match": True}
    catalogue = ActionCatalogue(config.actions)
    model = (
        ModelRegistry(home, config.models.registry)
        .load(logged.model_name, version=logged.model_version)
        .model
    )
    codes = catalogue.codes(logged.actions)
    scores = score_actions(model, np.asarray(logged.features), codes, catalogue.costs)
    diff = max(
        float(np.max(np.abs(scores.expected_value - np.asarray(logged.scores)))),
        float(np.max(np.abs(scores.probability - np.asarray(logged.probabilities)))),
    )
    # The policy saw candidates in catalogue order; the draw is a hash of the decision id.
    order = np.argsort(codes)
    choice = epsilon_greedy(
        scores.expected_value[order], config.serving.epsilon, unit_draw(decision_id)
    )
    return {
        **result,
        "replayed_scores": scores.expected_value.tolist(),
        "max_abs_diff": diff,
        "match": diff <= TOLERANCE,
        "chosen_replayed": catalogue.ids[int(codes[order][choice.index])],
        "propensity_logged": logged.propensity,
        "propensity_replayed": choice.propensity,
    }
