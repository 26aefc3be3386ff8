"""`liftgate train`: train the scorer, register a version and run the validation gate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from liftgate.app.cli.common import ConfigDirOption, JsonOption, session
from liftgate.app.cli.group import CommandGroup
from liftgate.app.cli.output import emit, say

app = CommandGroup()


def _print_training(summary: dict) -> None:
    metrics, gate = summary["metrics"], summary["gate"]
    typer.echo(
        f"{summary['model']} v{summary['version']}: auc {metrics['auc']:.4f} "
        f"(baseline {metrics['baseline_auc']:.4f}), calibration error "
        f"{metrics['calibration_error']:.4f}, aliases {summary['aliases'] or 'none'}"
    )
    for check in gate["checks"]:
        typer.echo(f"  [{'pass' if check['passed'] else 'FAIL'}] {check['message']}")
    for note in gate.get("notes", []):
        typer.echo(f"  note: {note}")


@app.command("train")
def train(
    ctx: typer.Context,
    data: Annotated[Path, typer.Option("--data", help="World directory or logged Parquet.")],
    seed: Annotated[int, typer.Option("--seed")] = 0,
    shuffle_labels: Annotated[
        bool, typer.Option("--shuffle-labels", help="Train on permuted labels (gate demo).")
    ] = False,
    _config_dir: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Train, log to MLflow, register a version and run the validation gate.

    The first version that passes becomes champion, later ones challenger. Exits 1 when the
    gate fails: the version stays registered without an alias, and the reasons go to stderr.

    **Examples:**

    * `liftgate train --data data/w`
    * `liftgate train --data data/w --seed 1 --json`
    """
    from registry.client import ModelRegistry
    from registry.pipeline import train_and_register

    cli = session(ctx)
    registry = ModelRegistry(cli.home, cli.config.models.registry)
    summary = train_and_register(
        data, cli.config, registry, seed=seed, shuffle_labels=shuffle_labels, progress=say
    )
    emit(summary, as_json, lambda: _print_training(summary))
    if not summary["gate"]["passed"]:
        say("validation gate failed: " + "; ".join(summary["gate"]["reasons"]))
        raise typer.Exit(1)
