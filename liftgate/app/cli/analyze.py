"""`liftgate analyze`: compare the arms of any table of units, and the results table that
`liftgate experiment report` shares.

Thin: it reads and validates input (naming the file, column or option that is wrong, exit 2),
calls :mod:`experiments.stats`, and prints a table or, with ``--json``, exactly one JSON
document on stdout. Importing this module is cheap; pyarrow and the statistics are imported
when the command runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from configs.schema import ExperimentConfig
from liftgate.app.cli.common import JsonOption
from liftgate.app.cli.group import CommandGroup
from liftgate.app.cli.output import emit, print_table, say, table_of
from liftgate.core.errors import InputError

if TYPE_CHECKING:
    import pyarrow as pa

    from experiments.stats.aggregate import MetricSpec

# An experiment's YAML and this command take the same choices, one spelling.
Method = ExperimentConfig.model_fields["method"].annotation
Correction = ExperimentConfig.model_fields["correction"].annotation
#: How a table becomes per-arm statistics (liftgate.app.analysis_engines).
Engine = Literal["memory", "local", "ray"]

app = CommandGroup()


def read_table(path: Path, columns: Mapping[str, str], arm_col: str | None = None) -> pa.Table:
    """`columns` (column -> the option that asked for it) of a Parquet or CSV table."""
    from liftgate.core.tables import read_table as read

    return read(path, columns, string_columns=[arm_col] if arm_col else [])


# ------------------------------------------------------------------------- parsing options


def parse_metric(text: str) -> MetricSpec:
    """``COL:binomial``, ``COL:mean`` or ``NUM/DEN:ratio``; the metric is named after the
    column (``NUM/DEN`` for a ratio)."""
    from experiments.stats.aggregate import MetricSpec

    where = f"--metric {text!r}"
    column, sep, kind = text.rpartition(":")
    if not sep or not column:
        raise InputError(f"{where}: expected COL:binomial, COL:mean or NUM/DEN:ratio")
    from experiments.stats.aggregate import KINDS

    if kind not in KINDS:
        raise InputError(f"{where}: kind must be one of {', '.join(KINDS)}; got {kind!r}")
    if kind == "ratio":
        numerator, slash, denominator = column.partition("/")
        if not slash or not numerator or not denominator:
            raise InputError(f"{where}: a ratio metric is NUM/DEN:ratio, e.g. revenue/orders:ratio")
        return MetricSpec(column, numerator, "ratio", denominator_column=denominator)
    return MetricSpec(column, column, kind)


def parse_weights(text: str) -> dict[str, float]:
    """``ARM=W,ARM=W``: positive weights summing to 1."""
    weights: dict[str, float] = {}
    for item in text.split(","):
        arm, sep, value = item.strip().partition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = math.nan
        if not sep or not arm or not math.isfinite(weight):
            raise InputError(f"--weights: expected ARM=W,ARM=W (e.g. a=0.5,b=0.5); got {item!r}")
        if weight <= 0:
            raise InputError(f"--weights: weight of {arm!r} must be > 0; got {weight}")
        if arm in weights:
            raise InputError(f"--weights: arm {arm!r} is given twice")
        weights[arm] = weight
    total = sum(weights.values())
    if abs(total - 1.0) > 1e-6:
        raise InputError(f"--weights: weights must sum to 1; they sum to {total:g}")
    return weights


def with_covariates(metrics: list[MetricSpec], covariates: Sequence[str]) -> list[MetricSpec]:
    """Apply ``--covariate METRIC=COL`` options (CUPED) to the parsed metrics."""
    from experiments.stats.aggregate import MetricSpec

    by_name = {m.name: m for m in metrics}
    for item in covariates:
        name, sep, column = item.partition("=")
        where = f"--covariate {item!r}"
        if not sep or not name or not column:
            raise InputError(f"{where}: expected METRIC=COL, e.g. revenue=pre_revenue")
        if name not in by_name:
            raise InputError(f"{where}: no --metric named {name!r}; metrics: {', '.join(by_name)}")
        metric = by_name[name]
        if metric.kind == "ratio":
            raise InputError(f"{where}: CUPED is not supported for ratio metrics")
        if metric.covariate_column:
            raise InputError(f"{where}: metric {name!r} already has a covariate")
        by_name[name] = MetricSpec(metric.name, metric.column, metric.kind, None, column)
    return list(by_name.values())


# --------------------------------------------------------------------------- rendering


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def with_interval(effect: Mapping[str, Any], spec: str) -> str:
    text = _fmt(effect["estimate"], spec)
    if effect["ci_low"] is not None and effect["ci_high"] is not None:
        text += f" [{format(effect['ci_low'], spec)}, {format(effect['ci_high'], spec)}]"
    return text


def srm_warning(srm: Mapping[str, Any]) -> str:
    from experiments.stats.srm import SRM_THRESHOLD

    observed = ", ".join(f"{arm} {n:,}" for arm, n in srm["observed"].items())
    expected = ", ".join(f"{arm} {w:.1%}" for arm, w in srm["expected_share"].items())
    return (
        f"WARNING: sample ratio mismatch (p = {srm['p_value']:.2g} < {SRM_THRESHOLD}): units "
        f"{observed}; expected shares {expected}. Assignment or logging is broken; "
        "do not trust these results."
    )


def print_results(document: Mapping[str, Any], alpha: float = 0.05) -> None:
    """``analyze``'s output as a table, the SRM warning first when flagged."""
    results = document["results"]
    srm = document["srm"]
    if srm["flag"]:
        typer.echo(srm_warning(srm) + "\n")
    level = f"{1 - alpha:.0%}"
    # Each interval stands beside its own p: the relative lift has its own (delta-method)
    # interval and p, and may include 0 where the absolute effect does not.
    head = [
        "arm",
        "metric",
        "n",
        "mean",
        f"abs effect [{level}]",
        "abs p",
        "adj abs p",
        f"rel lift [{level}]",
        "rel p",
        "chance to win",
    ]
    rows = table_of(*head, numeric=head[2:])
    seen: set[str] = set()
    for r in results:
        if r["metric"] not in seen:
            seen.add(r["metric"])
            rows.add_row(
                f"{r['control']} (control)",
                r["metric"],
                f"{r['control_n']:,}",
                _fmt(r["control_mean"], ".4g"),
                *[""] * 6,
            )
        rows.add_row(
            r["arm"],
            r["metric"],
            f"{r['n']:,}",
            _fmt(r["mean"], ".4g"),
            with_interval(r["abs"], "+.4g"),
            _fmt(r["abs"]["p_value"], ".3g"),
            _fmt(r["p_value_adjusted"], ".3g"),
            with_interval(r["rel"], "+.2%"),
            _fmt(r["rel"]["p_value"], ".3g"),
            _fmt(r["chance_to_win"], ".1%"),
        )
    print_table(rows)
    if results:
        reductions = [
            f"{r['metric']}/{r['arm']} {r['variance_reduction']:.0%}"
            for r in results
            if r["variance_reduction"] is not None
        ]
        if reductions:
            typer.echo(f"CUPED variance reduction: {', '.join(reductions)}")
        method = results[0]["method"]
        interval = {
            "sequential": "anytime-valid confidence sequences and p-values",
            "bayesian": "credible intervals, no p-values",
        }.get(method, "fixed-horizon confidence intervals")
        typer.echo(f"method {method} ({interval})")
    if not srm["flag"]:
        typer.echo(f"SRM ok (p = {srm['p_value']:.2g})")


# ------------------------------------------------------------------------------ analyze


@app.command("analyze")
def analyze_command(
    data: Annotated[
        Path, typer.Argument(help="Parquet file or directory, or CSV; one row per unit.")
    ],
    arm_col: Annotated[str, typer.Option("--arm-col", help="Column holding the arm.")],
    control: Annotated[str, typer.Option("--control", help="The control arm.")],
    metric: Annotated[
        list[str],
        typer.Option(
            "--metric",
            metavar="COL:KIND",
            help="COL:binomial, COL:mean or NUM/DEN:ratio (repeatable).",
        ),
    ],
    covariate: Annotated[
        list[str] | None,
        typer.Option(
            "--covariate",
            metavar="METRIC=COL",
            help="A CUPED covariate of a metric, e.g. revenue=pre_revenue (repeatable).",
        ),
    ] = None,
    method: Annotated[Method, typer.Option("--method", help="How to test.")] = "frequentist",
    weights: Annotated[
        str | None, typer.Option("--weights", help="ARM=W,... configured shares (default equal).")
    ] = None,
    alpha: Annotated[
        float, typer.Option("--alpha", min=0.0, max=1.0, help="1 - the intervals' level.")
    ] = 0.05,
    correction: Annotated[
        Correction, typer.Option("--correction", help="Multiple-testing correction.")
    ] = "holm",
    fill_missing: Annotated[
        str | None,
        typer.Option(
            "--fill-missing",
            help="Fill blank, n/a or NaN metric cells with VALUE (a number, or zero); "
            "without it they are an error.",
        ),
    ] = None,
    engine: Annotated[
        Engine,
        typer.Option(
            "--engine",
            help="memory: read the whole table (default); local: scan it in batches on this "
            "process; ray: Ray Data over its Parquet files. local and ray hold a batch, not "
            "the table, and give the same numbers.",
        ),
    ] = "memory",
    as_json: JsonOption = False,
) -> None:
    """Compare every arm with the control on any table of units.

    SRM check, effects with intervals, p-values adjusted across arms x metrics. The table is
    read as it is: a blank cell is an error unless `--fill-missing` says what it means.

    **Examples:**

    * `liftgate analyze units.parquet --arm-col arm --control control
      --metric converted:binomial --metric revenue/orders:ratio`
    * `liftgate analyze units.csv --arm-col arm --control control --metric revenue:mean
      --covariate revenue=pre_revenue --method sequential --json`
    """
    from experiments.stats.analysis import analyze_statistics, check_weights
    from liftgate.core.tables import parse_fill

    specs = [parse_metric(m) for m in metric]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise InputError(f"--metric: a metric is given twice: {names}")
    specs = with_covariates(specs, covariate or [])
    shares = parse_weights(weights) if weights else None
    fill = parse_fill(fill_missing) if fill_missing is not None else None
    columns = {arm_col: "--arm-col"}
    for s in specs:
        for col in s.columns:
            option = "--covariate" if col == s.covariate_column else "--metric"
            columns.setdefault(col, f"{option} {s.name!r}")
    if engine == "memory":
        stats, filled = in_memory_statistics(data, columns, arm_col, specs, fill)
    else:
        stats, filled = streamed_statistics(engine, data, columns, arm_col, specs, fill)
    if control not in stats:
        raise InputError(
            f"--control: arm {control!r} not found in column {arm_col!r} of {data} "
            f"(arms present: {', '.join(sorted(stats))})"
        )
    try:
        if shares is not None:
            check_weights(shares, list(stats), arm_col)
        document = analyze_statistics(stats, control, specs, method, shares, alpha, correction)
    except ValueError as exc:
        if isinstance(exc, InputError) and exc.parameter:  # an option: its flag is named
            raise
        raise InputError(f"{data}: {exc}") from None
    if filled:
        document["filled_missing"] = {"value": fill, "cells": filled}
        cells = ", ".join(f"{n:,} in {column!r}" for column, n in filled.items())
        say(f"filled missing cells with {fill:g} (--fill-missing): {cells}")
    emit(document, as_json, lambda: print_results(document, alpha))


def in_memory_statistics(
    data: Path,
    columns: Mapping[str, str],
    arm_col: str,
    specs: list[MetricSpec],
    fill: float | None,
) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    """The `memory` engine: per-arm statistics of the whole table read at once, and the
    missing cells filled per column."""
    from experiments.stats.aggregate import aggregate
    from liftgate.core.tables import fill_missing as fill_cells

    table = read_table(data, columns, arm_col=arm_col)
    metric_columns = {c: option for c, option in columns.items() if c != arm_col}
    table, filled = fill_cells(table, data, metric_columns, fill)
    try:
        return aggregate(table, arm_col, specs), filled
    except ValueError as exc:
        raise InputError(f"{data}: {exc}") from None


def streamed_statistics(
    engine: str,
    data: Path,
    columns: Mapping[str, str],
    arm_col: str,
    specs: list[MetricSpec],
    fill: float | None,
) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    """The `local` and `ray` engines (:mod:`liftgate.app.analysis_engines`): per-arm
    statistics summed over batches, and the missing cells filled per column."""
    from liftgate.app import analysis_engines as engines
    from liftgate.core.home import Home
    from liftgate.core.tables import open_dataset, scan_batches, table_format

    metric_columns = {c: option for c, option in columns.items() if c != arm_col}
    if engine == "local":
        batches = scan_batches(data, columns, [arm_col], batch_rows=engines.BATCH_ROWS)
        summary = engines.summarize_batches(batches, arm_col, specs, metric_columns, fill)
    else:
        if data.exists() and table_format(data) != "parquet":
            raise InputError(f"--engine ray: reads Parquet only; {data} is not Parquet")
        source = open_dataset(data, columns)
        summary = engines.summarize_with_ray(
            source.files, list(columns), arm_col, specs, metric_columns, fill, Home.from_env()
        )
    stats = engines.finish(summary, data, metric_columns, fill)
    return stats, summary.missing if fill is not None else {}
