"""`liftgate drift compare` and `liftgate drift run`.

Thin: read and validate input (naming the file, column or option that is wrong; exit 2),
call :func:`drift.compare.compare_tables` or :func:`drift.job.run_drift_job`, print a table
or, with ``--json``, one JSON document on stdout. Finding drift is a result, not a failure:
the exit code is 0 unless ``--fail-on-drift`` asks for 1. Importing this module is cheap;
pandas and Evidently are imported when a command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from drift.headline import dataset_drift_headline
from liftgate.app.cli.common import ConfigDirOption, JsonOption, session
from liftgate.app.cli.group import CommandGroup
from liftgate.app.cli.output import emit, print_table, say, table_of
from liftgate.core.errors import InputError

# drift.job.PREDICTION_ACTIONS (pandas: slow to import; a test keeps them equal).
PredictionAction = Literal["uniform", "chosen"]

app = CommandGroup(help="Data and prediction drift (Evidently tests, chunked).")

ThresholdOption = Annotated[
    float,
    typer.Option(
        "--threshold",
        min=0.0,
        max=1.0,
        help="Share of drifted columns at which a chunk drifts (above 0).",
    ),
]
FailOnDriftOption = Annotated[
    bool, typer.Option("--fail-on-drift", help="Exit 1 when drift is found.")
]


def _names(text: str | None, option: str) -> list[str]:
    if text is None:
        return []
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise InputError(f"{option}: expected comma-separated column names; got {text!r}")
    return names


def _read(path: Path, option: str, columns: list[str], string_columns: list[str]):
    """The table at ``path`` as pandas: ``columns`` (all when empty), errors naming the file."""
    from liftgate.core.tables import read_table, table_format

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{option} {path}: file not found")
    if columns:
        table = read_table(path, dict.fromkeys(columns, "--columns"), (), string_columns)
    else:
        import pyarrow.csv as pacsv
        import pyarrow.dataset as ds

        try:
            if table_format(path) == "parquet":
                names = ds.dataset(path, format="parquet").schema.names
            else:
                names = pacsv.open_csv(path).schema.names
        except Exception as exc:  # pyarrow's errors for a file that is not a table
            raise InputError(f"{option} {path}: cannot read: {exc}") from None
        table = read_table(path, {}, names, string_columns)
    return table.to_pandas()


def _check_declared(frame, path: Path, option: str, declared: dict[str, str]) -> None:
    for column, source in declared.items():
        if column not in frame.columns:
            raise InputError(
                f"{option} {path}: column {column!r} (from {source}) not found; "
                f"columns are: {', '.join(map(str, frame.columns))}"
            )


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def print_columns(columns: dict[str, dict], indent: int) -> None:
    rows = table_of(
        "column", "method", "statistic", "p-value", "drift", numeric=["statistic", "p-value"]
    )
    for name, c in columns.items():
        drift = "DRIFT" if c["drifted"] else "ok"
        rows.add_row(name, c["method"], _fmt(c["statistic"]), _fmt(c["p_value"]), drift)
    print_table(rows, indent=indent)


def print_comparison(doc: dict) -> None:
    sampled = " (sampled)" if doc["sampled"] else ""
    typer.echo(
        f"reference {doc['reference_rows']:,} rows ({doc['reference_rows_tested']:,} tested), "
        f"current {doc['current_rows']:,} rows in {len(doc['chunks'])} chunk(s){sampled}; "
        f"a chunk drifts when >= {doc['threshold']:.0%} of its columns drift"
    )
    if doc["skipped_columns"]:
        skipped = ", ".join(f"{c} ({t})" for c, t in doc["skipped_columns"].items())
        typer.echo(f"skipped (no drift test for the type): {skipped}")
    for chunk in doc["chunks"]:
        drifted = [n for n, c in chunk["columns"].items() if c["drifted"]]
        headline = dataset_drift_headline(len(drifted), len(chunk["columns"]), doc["threshold"])
        typer.echo(
            f"chunk {chunk['index']} rows {chunk['start']:,}-{chunk['end']:,}: {headline}"
            + (f" ({', '.join(drifted)})" if drifted else "")
        )
        print_columns(chunk["columns"], indent=4)
        if "html" in chunk:
            typer.echo(f"    report: {chunk['html']}")


@app.command("compare")
def compare_command(
    reference: Annotated[Path, typer.Option("--reference", help="Parquet file/dir or CSV.")],
    current: Annotated[Path, typer.Option("--current", help="Parquet file/dir or CSV.")],
    columns: Annotated[
        str | None, typer.Option("--columns", help="Columns to test, a,b,… (default: all).")
    ] = None,
    chunk_size: Annotated[
        int | None,
        typer.Option("--chunk-size", min=1, help="Rows per chunk (default: one chunk)."),
    ] = None,
    categorical: Annotated[
        str | None, typer.Option("--categorical", help="Columns to treat as categorical.")
    ] = None,
    numerical: Annotated[
        str | None, typer.Option("--numerical", help="Columns to treat as numerical.")
    ] = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Write an Evidently HTML report per chunk here.")
    ] = None,
    threshold: ThresholdOption = 0.5,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the row sampling.")] = 0,
    fail_on_drift: FailOnDriftOption = False,
    as_json: JsonOption = False,
) -> None:
    """Compare two tables column by column: each chunk of CURRENT against all of REFERENCE.

    **Examples:**

    * `liftgate drift compare --reference train.parquet --current recent.csv`
    * `liftgate drift compare --reference train.parquet --current recent.parquet
      --columns recency_days,device --chunk-size 5000 --fail-on-drift --json`
    """
    from drift.compare import compare_tables, is_text

    wanted = _names(columns, "--columns")
    cat, num = _names(categorical, "--categorical"), _names(numerical, "--numerical")
    declared = {**dict.fromkeys(cat, "--categorical"), **dict.fromkeys(num, "--numerical")}
    if wanted:
        outside = [c for c in declared if c not in wanted]
        if outside:
            raise InputError(f"{declared[outside[0]]}: column {outside[0]!r} is not in --columns")
    frames = {}
    text = list(cat)  # read as text from a CSV: codes like 01 stay 01
    for option, path in (("--reference", reference), ("--current", current)):
        frames[option] = _read(path, option, wanted, text)
        _check_declared(frames[option], path, option, declared)
        text += [c for c in frames[option].columns if is_text(frames[option][c])]
    try:
        result = compare_tables(
            frames["--reference"],
            frames["--current"],
            columns=wanted or None,
            chunk_size=chunk_size,
            categorical=cat,
            numerical=num,
            threshold=threshold,
            seed=seed,
            html_dir=html,
        )
    except ValueError as exc:
        if isinstance(exc, InputError) and exc.parameter:  # an option: its flag is named
            raise
        message = str(exc.args[0])
        if message.startswith("current: "):
            raise InputError(f"--current {current}: {message[9:]}") from None
        message = message.removeprefix("reference: ")
        raise InputError(f"--reference {reference}: {message}") from None
    document = {"reference": str(reference), "current": str(current), **result.to_dict()}
    if html is not None:
        document["html"] = str(html)
    emit(document, as_json, lambda: print_comparison(document))
    if fail_on_drift and any(chunk.dataset_drift for chunk in result.chunks):
        say("drift found (--fail-on-drift)")
        raise typer.Exit(1)


def print_job(doc: dict) -> None:
    model, window, p = doc["model"], doc["window"], doc["prediction_drift"]
    drifted = len(doc["drifted_columns"])
    alias = f" ({model['alias']})" if model["alias"] else ""
    lines = [
        f"{model['name']} v{model['version']}{alias}: {doc['rows']:,} scored decisions in "
        f"{window['spec']} ({window['start']} – {window['end']}) against "
        f"{doc['reference_rows']:,} training-profile rows",
        f"  {dataset_drift_headline(drifted, len(doc['columns']), doc['threshold'])}"
        + (f" ({', '.join(doc['drifted_columns'])})" if drifted else ""),
        f"  prediction drift ({doc['prediction_action']} action): "
        f"{'DRIFT' if p['drifted'] else 'no drift'} — {p['method']} "
        f"{_fmt(p['statistic'] if p['p_value'] is None else p['p_value'])}",
    ]
    typer.echo("\n".join(lines))
    print_columns(doc["columns"], indent=4)
    for note in doc["notes"]:
        typer.echo(f"  note: {note}")
    if doc["html"]:
        typer.echo(f"  report: {doc['html']}")


@app.command("run")
def run_command(
    ctx: typer.Context,
    window: Annotated[
        str, typer.Option("--window", help="Last time span (30m, 1h, 1d) or N rows.")
    ] = "1d",
    model_ref: Annotated[
        str, typer.Option("--model-ref", help="Alias (champion, challenger) or version.")
    ] = "champion",
    html: Annotated[
        Path | None,
        typer.Option("--html", help="Report directory (default LIFTGATE_HOME/drift/<time>)."),
    ] = None,
    no_html: Annotated[bool, typer.Option("--no-html", help="Write no report.")] = False,
    threshold: ThresholdOption = 0.5,
    min_rows: Annotated[
        int, typer.Option("--min-rows", min=1, help="Fewer scored decisions: exit 2.")
    ] = 500,
    prediction_action: Annotated[
        PredictionAction,
        typer.Option(
            "--prediction-action",
            help="Whose probability is compared: a uniform draw (as the training log) or the "
            "chosen action's.",
        ),
    ] = "uniform",
    fail_on_drift: FailOnDriftOption = False,
    _config_dir: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """The model version's training profile against the decisions it served in the window.

    **Examples:**

    * `liftgate drift run --window 1h`
    * `liftgate drift run --window "5000 rows" --model-ref challenger --no-html --json`
    """
    from drift.job import parse_window, run_drift_job

    spec = parse_window(window)  # a typo is named before the configuration is read
    cli = session(ctx)
    result = run_drift_job(
        cli.home,
        cli.config,
        model_ref,
        spec,
        threshold=threshold,
        min_rows=min_rows,
        prediction_action=prediction_action,
        html=not no_html,
        html_dir=html,
    )
    document = result.to_dict()
    emit(document, as_json, lambda: print_job(document))
    if fail_on_drift and result.drifted:
        say("drift found (--fail-on-drift)")
        raise typer.Exit(1)
