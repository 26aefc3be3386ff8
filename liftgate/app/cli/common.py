"""What every `liftgate` command shares: output conventions and error translation.

Exit codes: 0 success, 1 a failed check, 2 bad input or config. With `--json` a command
prints one JSON document on stdout and nothing else there; messages go to stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from configs.loader import ConfigError, LiftgateConfig, load_config
from configs.schema import ExperimentConfig
from experiments.bandits.spec import bandit_config_problems
from liftgate.app.runner import ServiceStartError
from registry.errors import RegistryError


def load_checked_config(directory: Path | str | None = None) -> LiftgateConfig:
    """The configuration with the checks that need domain code (bandit policies are built)."""
    return load_config(directory, checks=(bandit_config_problems,))


JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
ConfigDirOption = Annotated[
    Path | None, typer.Option("--config-dir", help="Directory of the YAML configuration.")
]


def say(message: str) -> None:
    typer.echo(message, err=True)


def emit(document: object, as_json: bool, render: Callable[[], None]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(document, default=str) + "\n")
    else:
        render()


@contextmanager
def failures() -> Iterator[None]:
    """Turn the platform's known errors into a message on stderr and the documented exit code."""
    try:
        yield
    except ConfigError as exc:
        say("configuration error:\n" + "\n".join(f"  {p}" for p in exc.problems))
        raise typer.Exit(2) from None
    except RegistryError as exc:
        say(f"registry: {exc}")
        raise typer.Exit(exc.code) from None
    except ServiceStartError as exc:
        say(f"serving: {exc}")
        raise typer.Exit(1) from None
    except (FileNotFoundError, ValueError, KeyError) as exc:
        say(f"error: {exc.args[0] if exc.args else exc}")
        raise typer.Exit(2) from None


def find_experiment(config: LiftgateConfig, name: str) -> ExperimentConfig:
    if name not in config.experiments:
        known = ", ".join(sorted(config.experiments)) or "none"
        raise ValueError(
            f"no experiment {name!r} in {config.directory / 'experiments'} (defined: {known})"
        )
    return config.experiments[name]
