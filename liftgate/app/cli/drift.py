"""`liftgate drift compare` and `liftgate drift run`.

Thin: read and validate input (naming the file, column or option that is wrong; exit 2),
call :func:`drift.compare.compare_tables` or :func:`drift.job.run_drift_job`, print a table
or, with ``--json``, one JSON document on stdout. Finding drift is a result, not a failure:
the exit code is 0 unless ``--fail-on-drift`` asks for 1. Mounted by :func:`register` as the
``drift`` sub-app. Importing this module is cheap; pandas and Evidently are imported when a
command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from liftgate.app.cli.common import ConfigDirOption, JsonOption, emit, failures, say

drift_app = typer.Typer(
    no_args_is_help=True, help="Data and prediction drift (Evidently tests, chunked)."
)

ThresholdOption = Annotated[
    float,
    typer.Option("--threshold", help="Share of drifted columns at which a chunk drifts."),
]
FailOnDriftOption = Annotated[
    bool, typer.Option("--fail-on-drift", help="Exit 1 when drift is found.")
]


def register(app: typer.Typer) -> None:
    """Mount the ``drift`` sub-app (``compare``, ``run``) on ``app``."""
    app.add_typer(drift_app, name="drift")


def _names(text: str | None, option: str) -> list[str]:
    if text is None:
        return []
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ValueError(f"{option}: expected comma-separated column names; got {text!r}")
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
            raise ValueError(f"{option} {path}: cannot read: {exc}") from None
        table = read_table(path, {}, names, string_columns)
    return table.to_pandas()


def _check_declared(frame, path: Path, option: str, declared: dict[str, str]) -> None:
    for column, source in declared.items():
        if column not in frame.columns:
            raise ValueError(
                f"{option} {path}: column {column!r} (from {source}) not found; "
                f"columns are: {', '.join(map(str, frame.columns))}"
            )


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def format_columns(columns: dict[str, dict], indent: str = "    ") -> list[str]:
    width = max([len(name) for name in columns] + [6])
    lines = [f"{indent}{'column':<{width}}  {'method':<13} {'statistic':>9} {'p-value':>9}  drift"]
    for name, c in columns.items():
        lines.append(
            f"{indent}{name:<{width}}  {c['method']:<13} {_fmt(c['statistic']):>9} "
            f"{_fmt(c['p_value']):>9}  {'DRIFT' if c['drifted'] else 'ok'}"
        )
    return lines


def format_comparison(doc: dict) -> str:
    sampled = " (sampled)" if doc["sampled"] else ""
    lines = [
        f"reference {doc['reference_rows']:,} rows ({doc['reference_rows_tested']:,} tested), "
        f"current {doc['current_rows']:,} rows in {len(doc['chunks'])} chunk(s){sampled}; "
        f"a chunk drifts when >= {doc['threshold']:.0%} of its columns drift"
    ]
    if doc["skipped_columns"]:
        skipped = ", ".join(f"{c} ({t})" for c, t in doc["skipped_columns"].items())
        lines.append(f"skipped (no drift test for the type): {skipped}")
    for chunk in doc["chunks"]:
        drifted = [n for n, c in chunk["columns"].items() if c["drifted"]]
        lines.append(
            f"chunk {chunk['index']} rows {chunk['start']:,}-{chunk['end']:,}: "
            f"{'DRIFT' if chunk['dataset_drift'] else 'no drift'} — "
            f"{chunk['drift_share']:.0%} of columns drifted"
            + (f" ({', '.join(drifted)})" if drifted else "")
        )
        lines += format_columns(chunk["columns"])
        if "html" in chunk:
            lines.append(f"    report: {chunk['html']}")
    return "\n".join(lines)


@drift_app.command("compare")
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
    """Compare two tables column by column: each chunk of CURRENT against all of REFERENCE."""
    with failures():
        from drift.compare import check_threshold, compare_tables, is_text

        try:
            check_threshold(threshold)
        except ValueError as exc:
            raise ValueError(f"--{exc.args[0]}") from None
        wanted = _names(columns, "--columns")
        cat, num = _names(categorical, "--categorical"), _names(numerical, "--numerical")
        declared = {**dict.fromkeys(cat, "--categorical"), **dict.fromkeys(num, "--numerical")}
        if wanted:
            outside = [c for c in declared if c not in wanted]
            if outside:
                raise ValueError(
                    f"{declared[outside[0]]}: column {outside[0]!r} is not in --columns"
                )
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
            message = str(exc.args[0])
            if message.startswith("current: "):
                raise ValueError(f"--current {current}: {message[9:]}") from None
            message = message.removeprefix("reference: ")
            raise ValueError(f"--reference {reference}: {message}") from None
        document = {
            "reference": str(reference),
            "current": str(current),
            **result.to_dict(),
        }
        if html is not None:
            document["html"] = str(html)
    emit(document, as_json, lambda: typer.echo(format_comparison(document)))
    if fail_on_drift and any(chunk.dataset_drift for chunk in result.chunks):
        say("drift found (--fail-on-drift)")
        raise typer.Exit(1)


def format_job(doc: dict) -> str:
    model, window, p = doc["model"], doc["window"], doc["prediction_drift"]
    alias = f" ({model['alias']})" if model["alias"] else ""
    lines = [
        f"{model['name']} v{model['version']}{alias}: {doc['rows']:,} scored decisions in "
        f"{window['spec']} ({window['start']} – {window['end']}) against "
        f"{doc['reference_rows']:,} training-profile rows",
        f"  input drift: {'DRIFT' if doc['dataset_drift'] else 'no drift'} — "
        f"{doc['drift_share']:.0%} of features drifted (threshold {doc['threshold']:.0%})"
        + (f": {', '.join(doc['drifted_columns'])}" if doc["drifted_columns"] else ""),
        f"  prediction drift ({doc['prediction_action']} action): "
        f"{'DRIFT' if p['drifted'] else 'no drift'} — {p['method']} "
        f"{_fmt(p['statistic'] if p['p_value'] is None else p['p_value'])}",
    ]
    lines += format_columns(doc["columns"])
    lines += [f"  note: {note}" for note in doc["notes"]]
    if doc["html"]:
        lines.append(f"  report: {doc['html']}")
    return "\n".join(lines)


@drift_app.command("run")
def run_command(
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
        str,
        typer.Option("--prediction-action", help="uniform (as the training log) or chosen."),
    ] = "uniform",
    fail_on_drift: FailOnDriftOption = False,
    config_dir: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """The model version's training profile against the decisions it served in the window."""
    with failures():
        from drift.job import parse_window, run_drift_job
        from liftgate.app.cli.common import load_checked_config
        from liftgate.core.home import Home

        parse_window(window)  # options first: a typo is reported before the config is read
        result = run_drift_job(
            Home.from_env(),
            load_checked_config(config_dir),
            model_ref,
            window,
            threshold=threshold,
            min_rows=min_rows,
            prediction_action=prediction_action,
            html=not no_html,
            html_dir=html,
        )
        document = result.to_dict()
    emit(document, as_json, lambda: typer.echo(format_job(document)))
    if fail_on_drift and result.drifted:
        say("drift found (--fail-on-drift)")
        raise typer.Exit(1)
