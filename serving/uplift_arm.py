"""The ``uplift_targeting`` arm policy, served from a model of ``liftgate uplift train``.

An experiment arm with ``policy: uplift_targeting`` names a pickled uplift model
(``uplift.model_path``, relative to LIFTGATE_HOME or absolute), which must lie in
LIFTGATE_HOME/uplift_models, where ``liftgate uplift train`` saves it with its SHA-256
(:func:`save_uplift_model`). The replica's loader thread calls
:meth:`UpliftTargetingProvider.refresh` about every second: it loads each running arm's
model once per file version (path and modification time), unpickles it only if its bytes
match the SHA-256 beside it, checks that its actions are in the catalogue and that it was
trained on the serving feature contract, and logs a warning otherwise (the arm then answers
from the rules fallback, ``policy_unavailable``, until the file changes). Pickles run code
when loaded: the directory and the digest keep a configuration from pointing a replica at
any other file. The learner's LightGBM models predict single-threaded, as the scorer does.

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

import hashlib
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
from liftgate.core.jsonstate import replace_file
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


def digest_path(path: Path) -> Path:
    """Where the SHA-256 of the model at `path` is kept."""
    return path.with_name(f"{path.name}.sha256")


def save_uplift_model(path: Path, saved: dict[str, Any]) -> None:
    """Pickle a model as ``liftgate uplift train`` saves it, with its SHA-256 beside it (as
    ``sha256sum`` writes it). The digest goes first and each file is replaced atomically, so
    a replica reads a model and its digest whole, and reloads when the model changes."""
    data = pickle.dumps(saved)
    replace_file(digest_path(path), f"{hashlib.sha256(data).hexdigest()}  {path.name}\n".encode())
    replace_file(path, data)


def _verified_bytes(path: Path) -> bytes:
    """The model file's bytes, if they match the SHA-256 saved beside them."""
    data = path.read_bytes()
    digest = digest_path(path)
    try:
        expected = digest.read_text().split()[0]
    except (FileNotFoundError, IndexError):
        raise ValueError(
            f"{path}: no SHA-256 in {digest}; save it with `liftgate uplift train`"
        ) from None
    if hashlib.sha256(data).hexdigest() != expected:
        raise ValueError(f"{path}: its SHA-256 differs from {digest}; not unpickled")
    return data


def read_uplift_model(path: Path, catalogue: ActionCatalogue, contract_version: str) -> UpliftModel:
    """The model saved by ``liftgate uplift train``, unpickled once its SHA-256 matches;
    ``ValueError`` names the file and key."""
    saved = pickle.loads(_verified_bytes(path))
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
        self._refused: set[str] = set()  # model paths outside uplift_models, warned about

    def model_path(self, experiment: str, index: int, arm: UpliftArmConfig) -> Path | None:
        """The arm's model file, or None (warned once) if it lies outside uplift_models."""
        try:
            return self.home.uplift_model(arm.model_path)
        except ValueError as exc:
            if arm.model_path not in self._refused:
                self._refused.add(arm.model_path)
                logger.warning(
                    "experiment %s: arms.%d.uplift.model_path: %s (the arm falls back to the "
                    "rules)",
                    experiment,
                    index,
                    exc,
                )
            return None

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
            for index, arm in enumerate(experiment.config.arms):
                if arm.policy != self.policy or arm.uplift is None:
                    continue
                path = self.model_path(experiment.config.name, index, arm.uplift)
                model = None if path is None else self._load(path)
                if model is not None:
                    policies[experiment.config.name, arm.name] = UpliftTargetingPolicy(
                        model, self.catalogue, arm.uplift.value, arm.uplift.epsilon
                    )
        self._policies = policies  # one assignment: the request path sees old or new

    def get(self, assignment: Assignment) -> UpliftTargetingPolicy | None:
        return self._policies.get((assignment.experiment, assignment.arm_name))
