"""The ``uplift_targeting`` arm policy, served from a model of ``liftgate uplift train``.

An experiment arm with ``policy: uplift_targeting`` names a pickled uplift model
(``uplift.model_path``, relative to LIFTGATE_HOME or absolute). The replica's loader thread
calls :meth:`UpliftTargetingProvider.refresh` about every second: it loads each running
arm's model once per file version (path and modification time), checks that its actions
are in the catalogue and that it was trained on the serving feature contract, and logs a
warning otherwise (the arm then answers from the rules fallback, ``policy_unavailable``,
until the file changes). Pickles run code when loaded: serve only models you trained.
The learner's LightGBM models predict single-threaded, as the scorer does.

On the request path, :class:`UpliftTargetingPolicy` predicts the customer's uplift from the
contract features and applies :func:`experiments.uplift.targeting.target` with the
treatment's contact cost over the control's and, unless the arm sets ``value``, the
scorer's predicted order value of the treatment (the arm then needs scores). The draw is a
hash of the decision id. When the treatment or the control is not eligible (the request's
candidates, the arm's actions, eligibility rules), the other is taken with propensity 1;
when neither is, the first eligible action of the catalogue's fallback order is.

>>> from configs.loader import load_config
>>> from liftgate.core.catalogue import ActionCatalogue
>>> class Constant:
...     def predict_uplift(self, X):
...         return np.full(len(X), 0.02)
>>> catalogue = ActionCatalogue(load_config().actions)
>>> policy = UpliftTargetingPolicy(
...     UpliftModel(Constant(), "email_20", "no_action"), catalogue, value=40.0, epsilon=0.1)
>>> eligible = catalogue.codes(["no_action", "email_10", "email_20"])
>>> choice = policy.allocate("decision-1", np.zeros(13), eligible, scores=None)
>>> catalogue.ids[eligible[choice.index]], choice.propensity, choice.propensities.tolist()
('email_20', 0.95, [0.05, 0.0, 0.95])
"""

from __future__ import annotations

import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np

from configs.loader import LiftgateConfig
from configs.schema import UpliftArmConfig
from experiments.router import Assignment, ExperimentRouter
from experiments.uplift.targeting import target
from liftgate.core.allocation import unit_draw
from liftgate.core.catalogue import ActionCatalogue
from liftgate.core.contract import FeatureContract
from liftgate.core.home import Home
from liftgate.core.scoring import Scores
from liftgate.core.vocabulary import UPLIFT_TARGETING
from serving.service import Allocation

logger = logging.getLogger(__name__)

MODEL_KEYS = ("model", "treatment", "control", "contract_version")


@dataclass(frozen=True)
class UpliftModel:
    """A fitted uplift learner (``predict_uplift(X)``) of a treatment against a control."""

    model: Any
    treatment: str
    control: str


def read_uplift_model(path: Path, catalogue: ActionCatalogue, contract_version: str) -> UpliftModel:
    """The model saved by ``liftgate uplift train``; ``ValueError`` names the file and key."""
    with open(path, "rb") as f:
        saved = pickle.load(f)
    if not isinstance(saved, dict) or set(MODEL_KEYS) - set(saved):
        raise ValueError(f"{path}: expected a dict with keys {list(MODEL_KEYS)}")
    if not hasattr(saved["model"], "predict_uplift"):
        raise ValueError(f"{path}: key 'model': expected an uplift learner (predict_uplift)")
    for key in ("treatment", "control"):
        if saved[key] not in catalogue.index:
            raise ValueError(
                f"{path}: key {key!r}: expected an action of actions.yaml "
                f"{list(catalogue.ids)}; found {saved[key]!r}"
            )
    if saved["contract_version"] != contract_version:
        raise ValueError(
            f"{path}: key 'contract_version': trained on features {saved['contract_version']!r}, "
            f"serving {contract_version!r}; retrain with `liftgate uplift train`"
        )
    for fitted in vars(saved["model"]).values():  # the learner's LightGBM models
        if isinstance(fitted, lgb.LGBMModel):
            fitted.set_params(n_jobs=1)  # one row a decision: threads only add contention
    return UpliftModel(saved["model"], saved["treatment"], saved["control"])


class UpliftTargetingPolicy:
    """An :class:`~serving.service.ArmPolicy`: the uplift rule over the eligible candidates."""

    name = UPLIFT_TARGETING

    def __init__(
        self,
        uplift: UpliftModel,
        catalogue: ActionCatalogue,
        value: float | None,
        epsilon: float,
    ):
        self.uplift = uplift
        self.treatment = catalogue.index[uplift.treatment]
        self.control = catalogue.index[uplift.control]
        self.cost = float(catalogue.costs[self.treatment] - catalogue.costs[self.control])
        self.value = value
        self.epsilon = epsilon
        self.needs_scores = value is None
        self.fallback_order = [catalogue.index[a] for a in catalogue.fallback_order]

    def allocate(
        self, decision_id: str, features: np.ndarray, eligible: np.ndarray, scores: Scores | None
    ) -> Allocation:
        propensities = np.zeros(len(eligible))
        where = {int(code): i for i, code in enumerate(eligible)}
        if self.treatment not in where or self.control not in where:
            candidates = (self.treatment, self.control, *self.fallback_order)
            index = where[next(code for code in candidates if code in where)]
            propensities[index] = 1.0
            return Allocation(index, 1.0, propensities)
        t, c = where[self.treatment], where[self.control]
        uplift = float(self.uplift.model.predict_uplift(features.reshape(1, -1))[0])
        value = self.value if self.value is not None else float(scores.order_value[t])
        choice = target(uplift, value, self.cost, self.epsilon, unit_draw(decision_id))
        propensities[t], propensities[c] = choice.treat_probability, choice.control_probability
        return Allocation(t if choice.treat else c, choice.propensity, propensities)


class UpliftTargetingProvider:
    """Loads the uplift models of running ``uplift_targeting`` arms (see module)."""

    policy = UPLIFT_TARGETING

    def __init__(self, config: LiftgateConfig, home: Home):
        self.home = home
        self.catalogue = ActionCatalogue(config.actions)
        self.contract_version = FeatureContract(config.features).version
        self._files: dict[Path, tuple[int | None, UpliftModel | None]] = {}
        self._policies: dict[tuple[str, str], UpliftTargetingPolicy] = {}

    def model_path(self, arm: UpliftArmConfig) -> Path:
        return self.home.resolve(arm.model_path)

    def _load(self, path: Path) -> UpliftModel | None:
        try:
            version = path.stat().st_mtime_ns
        except OSError:
            version = None
        if path in self._files and self._files[path][0] == version:
            return self._files[path][1]
        model = None
        if version is None:
            logger.warning("uplift model %s: file not found (arms fall back to the rules)", path)
        else:
            try:
                model = read_uplift_model(path, self.catalogue, self.contract_version)
                logger.info("uplift model %s: %s vs %s", path, model.treatment, model.control)
            except Exception as exc:  # unpickling fails in many ways; serve the other arms
                logger.warning("uplift model %s unusable (arms fall back to rules): %s", path, exc)
        self._files[path] = (version, model)
        return model

    def refresh(self, router: ExperimentRouter) -> None:
        policies = {}
        for experiment in router.running:
            for arm in experiment.config.arms:
                if arm.policy != self.policy or arm.uplift is None:
                    continue
                model = self._load(self.model_path(arm.uplift))
                if model is not None:
                    policies[experiment.config.name, arm.name] = UpliftTargetingPolicy(
                        model, self.catalogue, arm.uplift.value, arm.uplift.epsilon
                    )
        self._policies = policies  # one assignment: the request path sees old or new

    def get(self, assignment: Assignment) -> UpliftTargetingPolicy | None:
        return self._policies.get((assignment.experiment, assignment.arm_name))
