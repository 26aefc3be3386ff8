"""Load and validate the YAML configuration; errors name the file, the key and what was expected."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar, get_args

import yaml
from pydantic import BaseModel, ValidationError

from configs.journey_schema import JourneyConfig
from configs.schema import (
    NO_CHANNEL,
    ActionsConfig,
    ExperimentConfig,
    FeaturesConfig,
    ModelsConfig,
    RolloutConfig,
    ServedAlias,
    ServingConfig,
)

DEFAULT_DIR = Path(__file__).resolve().parent
CONFIG_DIR_ENV = "LIFTGATE_CONFIG_DIR"

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A configuration file is missing, unreadable or does not match its schema."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


#: A problem line of a model validator that names its own key, relative to the model.
_KEYED = re.compile(r"^([A-Za-z_][\w.]*): (.+)$", re.DOTALL)


def _describe(error: dict) -> list[str]:
    """One `key: problem` line per problem of a pydantic error.

    A model validator may report several problems, one a line, each starting with the key
    it is about (`steps.3.branch.0.goto: expected …`); that key is joined to the model's own
    location, so every line names its key once.

    >>> _describe({"loc": (), "type": "value_error", "input": {},
    ...            "msg": "Value error, steps.3.goto: expected a step id\\narms: sum to 1"})
    ['steps.3.goto: expected a step id', 'arms: sum to 1']
    """
    location = [str(part) for part in error["loc"]]
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key (not in the schema)"
    found = error.get("input")
    lines = []
    for line in message.split("\n"):
        keyed = _KEYED.match(line)
        parts = [*location, keyed.group(1)] if keyed else location
        problem = keyed.group(2) if keyed else line
        # Validators that already say what they found (parse_duration) are not repeated.
        if not isinstance(found, dict) and "found " not in problem:
            problem += f"; found {found!r}"
        lines.append(f"{'.'.join(parts) or '(top level)'}: {problem}")
    return lines


def load_file(path: Path, model: type[M]) -> M:
    """Parse one YAML file into `model`, or raise ConfigError naming file and keys."""
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError([f"{path}{where}: not valid YAML: {exc}"]) from None
    if not isinstance(raw, dict):
        raise ConfigError([f"{path}: expected a mapping at the top level; found {raw!r}"])
    try:
        return model.model_validate(raw, context={"file": str(path)})
    except ValidationError as exc:
        raise ConfigError(
            [f"{path}: {line}" for e in exc.errors() for line in _describe(e)]
        ) from None


@dataclass(frozen=True)
class LiftgateConfig:
    """All configuration files of one directory, validated together."""

    directory: Path
    features: FeaturesConfig
    actions: ActionsConfig
    models: ModelsConfig
    serving: ServingConfig
    experiments: dict[str, ExperimentConfig]
    rollouts: dict[str, RolloutConfig]
    journeys: dict[str, JourneyConfig]
    #: `folder/name` → the file a named config was read from (its stem need not be the name).
    files: dict[str, Path] = field(default_factory=dict)


def _load_named(
    directory: Path, folder: str, model: type[M], files: dict[str, Path]
) -> tuple[dict[str, M], list[str]]:
    """Every `folder/*.yaml` as `model`, by its `name`; each file noted in `files`."""
    loaded: dict[str, M] = {}
    problems: list[str] = []
    for path in sorted((directory / folder).glob("*.yaml")):
        try:
            item = load_file(path, model)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        if item.name in loaded:
            problems.append(f"{path}: name: {item.name!r} is already defined by another file")
        loaded[item.name] = item
        files[f"{folder}/{item.name}"] = path
    return loaded, problems


MODEL_REF = re.compile(rf"^({'|'.join(get_args(ServedAlias))}|[0-9]+)$")


def _experiment_problems(config: LiftgateConfig) -> list[str]:
    actions = {a.id for a in config.actions.actions}
    features = {f.name for f in config.features.features}
    problems = []
    for name, experiment in config.experiments.items():
        path = config.directory / "experiments" / f"{name}.yaml"
        for i, arm in enumerate(experiment.arms):
            unknown = sorted(set(arm.actions or ()) - actions)
            if unknown:
                problems.append(
                    f"{path}: arms.{i}.actions: expected action ids of actions.yaml "
                    f"{sorted(actions)}; found {unknown}"
                )
            if arm.model is not None and not MODEL_REF.match(arm.model):
                problems.append(
                    f"{path}: arms.{i}.model: expected champion, challenger or a version "
                    f"number; found {arm.model!r}"
                )
        if experiment.cuped_covariate is not None and experiment.cuped_covariate not in features:
            problems.append(
                f"{path}: cuped_covariate: expected a feature of features.yaml; "
                f"found {experiment.cuped_covariate!r}"
            )
        unknown = [f for f in experiment.segment_by if f not in features]
        if unknown:
            problems.append(
                f"{path}: segment_by: expected features of features.yaml; found {unknown}"
            )
    return problems


def _rollout_problems(config: LiftgateConfig) -> list[str]:
    problems = []
    for name, rollout in config.rollouts.items():
        path = config.directory / "rollouts" / f"{name}.yaml"
        if not MODEL_REF.match(rollout.challenger) or rollout.challenger == "champion":
            problems.append(
                f"{path}: challenger: expected the challenger alias or a version number; "
                f"found {rollout.challenger!r}"
            )
        if rollout.model is not None and rollout.model != config.models.scorer.name:
            problems.append(
                f"{path}: model: expected the served scorer {config.models.scorer.name!r} "
                f"(models.yaml); found {rollout.model!r}"
            )
    return problems


def _journey_problems(config: LiftgateConfig) -> list[str]:
    """A journey's candidates are actions of actions.yaml; its entry consent is a channel."""
    actions = sorted(a.id for a in config.actions.actions)
    channels = sorted(
        ({a.channel for a in config.actions.actions} | set(config.actions.channels)) - {NO_CHANNEL}
    )
    problems = []
    for name, journey in config.journeys.items():
        path = config.files.get(f"journeys/{name}", config.directory / "journeys")
        if journey.entry.consent is not None and journey.entry.consent not in channels:
            problems.append(
                f"{path}: entry.consent: expected a channel of actions.yaml {channels}; "
                f"found {journey.entry.consent!r}"
            )
        for i, step in enumerate(journey.steps):
            unknown = [
                c for c in (step.decide and step.decide.candidates) or () if c not in actions
            ]
            if unknown:
                problems.append(
                    f"{path}: steps.{i}.decide.candidates: expected action ids of actions.yaml "
                    f"{actions}; found {unknown}"
                )
    return problems


def _cross_check(config: LiftgateConfig) -> list[str]:
    """Rules that span files: eligibility rules must name contract features and values;
    experiments and journeys must name actions, features, channels and model aliases that
    exist."""
    specs = {f.name: f for f in config.features.features}
    problems = _experiment_problems(config) + _rollout_problems(config) + _journey_problems(config)
    path = config.directory / "actions.yaml"
    for i, action in enumerate(config.actions.actions):
        for j, rule in enumerate(action.eligibility):
            key = f"actions.{i}.eligibility.{j}"
            spec = specs.get(rule.feature)
            if spec is None:
                problems.append(
                    f"{path}: {key}.feature: expected a feature of features.yaml; "
                    f"found {rule.feature!r}"
                )
            elif rule.in_ is not None and spec.dtype == "category":
                unknown = [v for v in rule.in_ if v not in spec.categories]
                if unknown:
                    problems.append(
                        f"{path}: {key}.in: expected categories of {spec.name} "
                        f"{spec.categories}; found {unknown}"
                    )
    return problems


def config_dir(directory: Path | str | None = None) -> Path:
    if directory is not None:
        return Path(directory)
    return Path(os.environ.get(CONFIG_DIR_ENV, DEFAULT_DIR))


def config_digest(directory: Path | str | None = None) -> str:
    """SHA-256 over the YAML files of a configuration directory, their paths and contents:
    one value that changes whenever any file the loader reads does.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = (Path(tmp) / "models.yaml").write_text("registry: {}\\n")
    ...     before = config_digest(tmp)
    ...     _ = (Path(tmp) / "models.yaml").write_text("registry: {x: 1}\\n")
    ...     after = config_digest(tmp)
    >>> len(before), before != after
    (64, True)
    """
    directory = config_dir(directory)
    files = sorted((p.relative_to(directory).as_posix(), p) for p in directory.rglob("*.yaml"))
    digest = hashlib.sha256()
    for name, path in files:
        # The path too: a file renamed or moved to another folder is a change.
        digest.update(name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


#: A check that needs domain code (a policy to build, say): `file: key: problem` lines.
ConfigCheck = Callable[[LiftgateConfig], list[str]]


def load_config(
    directory: Path | str | None = None, *, checks: Sequence[ConfigCheck] = ()
) -> LiftgateConfig:
    """Load every configuration file of `directory` (default: the packaged `configs/`).

    All files are validated before raising, so one run reports every problem. The schema and
    the cross-file rules live here; `checks` are the rules of layers above (the CLI passes
    them), so this package imports nothing of ours.
    """
    directory = config_dir(directory)
    if not directory.is_dir():
        raise ConfigError([f"{directory}: not a directory"])
    loaded: dict[str, BaseModel] = {}
    problems: list[str] = []
    for key, filename, model in (
        ("features", "features.yaml", FeaturesConfig),
        ("actions", "actions.yaml", ActionsConfig),
        ("models", "models.yaml", ModelsConfig),
        ("serving", "serving.yaml", ServingConfig),
    ):
        try:
            loaded[key] = load_file(directory / filename, model)
        except ConfigError as exc:
            problems.extend(exc.problems)
    files: dict[str, Path] = {}
    experiments, experiment_problems = _load_named(
        directory, "experiments", ExperimentConfig, files
    )
    rollouts, rollout_problems = _load_named(directory, "rollouts", RolloutConfig, files)
    journeys, journey_problems = _load_named(directory, "journeys", JourneyConfig, files)
    problems.extend(experiment_problems + rollout_problems + journey_problems)
    if problems:
        raise ConfigError(problems)
    config = LiftgateConfig(
        directory=directory,
        experiments=experiments,
        rollouts=rollouts,
        journeys=journeys,
        files=files,
        **loaded,
    )
    problems = _cross_check(config) + [p for check in checks for p in check(config)]
    if problems:
        raise ConfigError(problems)
    return config
