"""What every `liftgate` command shares: the session (configuration and home), the common
options, and the one place where an expected failure becomes a message and an exit code.

Exit codes: 0 success, 1 a failed check, 2 bad input or configuration. With `--json` a
command prints one JSON document on stdout and nothing else there; when it fails, that
document is ``{"error": "...", "exit_code": N}``. Messages go to stderr.

Importing this module is cheap: the configuration, and what checking it needs, are
imported when a command first asks for them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from liftgate.core.errors import BAD_INPUT, InputError, LiftgateError
from liftgate.core.home import Home

if TYPE_CHECKING:
    from configs.loader import LiftgateConfig
    from configs.schema import ExperimentConfig


def load_checked_config(directory: Path | str | None, home: Home) -> LiftgateConfig:
    """The configuration with the checks that need domain code (bandit policies are built)
    or the home (uplift models lie in its uplift_models)."""
    from configs.loader import load_config
    from experiments.bandits.spec import bandit_config_problems

    return load_config(
        directory, checks=(bandit_config_problems, partial(uplift_model_problems, home))
    )


def uplift_model_problems(home: Home, config: LiftgateConfig) -> list[str]:
    """`file: key: problem` for each uplift arm whose model lies outside the home's
    uplift_models (replicas refuse to unpickle it)."""
    problems = []
    for name, experiment in config.experiments.items():
        for i, arm in enumerate(experiment.arms):
            if arm.uplift is None:
                continue
            try:
                home.uplift_model(arm.uplift.model_path)
            except ValueError as exc:
                path = config.directory / "experiments" / f"{name}.yaml"
                problems.append(f"{path}: arms.{i}.uplift.model_path: {exc}")
    return problems


class Session:
    """What the commands of one invocation share, each read on first use, so that `--help`
    and the commands that need no configuration never read it. The app's callback puts one
    in ``ctx.obj``; `--config-dir` sets its directory before the command runs."""

    def __init__(self) -> None:
        self.config_dir: Path | None = None

    @property
    def config_directory(self) -> Path:
        """Where the configuration is read from (`--config-dir`, LIFTGATE_CONFIG_DIR or the
        packaged one)."""
        from configs.loader import config_dir

        return config_dir(self.config_dir)

    @cached_property
    def config(self) -> LiftgateConfig:
        return load_checked_config(self.config_dir, self.home)

    @cached_property
    def home(self) -> Home:
        return Home.from_env()


def session(ctx: typer.Context) -> Session:
    return ctx.ensure_object(Session)


def _use_config_dir(ctx: typer.Context, directory: Path | None) -> None:
    if directory is not None:
        session(ctx).config_dir = directory


def config_dir_option(*names: str) -> Any:
    """The option that sets the session's configuration directory as it is parsed; the
    command reads ``session(ctx).config``, and the parameter declaring the option stays
    None (by convention named ``_config_dir``)."""
    return typer.Option(
        *names,
        help="Directory of the YAML configuration (default: LIFTGATE_CONFIG_DIR, or the "
        "packaged one).",
        callback=_use_config_dir,
        expose_value=False,
    )


JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
ConfigDirOption = Annotated[Path | None, config_dir_option("--config-dir")]


def find_experiment(config: LiftgateConfig, name: str) -> ExperimentConfig:
    if name not in config.experiments:
        known = ", ".join(sorted(config.experiments)) or "none"
        raise InputError(
            f"no experiment {name!r} in {config.directory / 'experiments'} (defined: {known})"
        )
    return config.experiments[name]


# --- failures ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """An expected failure as a command reports it."""

    message: str
    exit_code: int

    def report(self, as_json: bool) -> None:
        """The message on stderr and, under `--json`, the error document on stdout."""
        typer.echo(f"error: {self.message}", err=True)
        if as_json:
            print_error_document(self.message, self.exit_code)


def print_error_document(message: str, exit_code: int) -> None:
    """What `--json` prints on stdout when a command fails."""
    sys.stdout.write(json.dumps({"error": message, "exit_code": exit_code}) + "\n")


def failure_of(error: BaseException, flags: Mapping[str, str]) -> Failure | None:
    """How a command reports `error`, or None for an unexpected one (a bug: let it raise).

    `flags` maps the command's parameter names to the flags the user typed, so that an
    `InputError` about ``window`` names ``--window``.
    """
    from configs.loader import ConfigError  # pydantic: not for `--help`

    if isinstance(error, InputError) and error.parameter in flags:
        return Failure(f"{flags[error.parameter]}: {error.message}", error.exit_code)
    if isinstance(error, LiftgateError):
        return Failure(str(error), error.exit_code)
    if isinstance(error, ConfigError):
        problems = "\n".join(f"  {problem}" for problem in error.problems)
        return Failure(f"the configuration is invalid:\n{problems}", BAD_INPUT)
    if isinstance(error, FileNotFoundError):  # a file the user named
        return Failure(error.args[0] if len(error.args) == 1 else str(error), BAD_INPUT)
    return None
