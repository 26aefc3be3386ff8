"""`liftgate analyze`, `liftgate experiment plan` and `liftgate experiment report`.

The commands are thin: they read and validate input (naming the file, column or option that
is wrong, exit 2), call :mod:`experiments.stats` or :mod:`experiments.report`, and print
either a readable table or, with ``--json``, exactly one JSON document on stdout. They are
mounted on the main app by :func:`register` (``analyze`` on the app, ``plan`` and ``report``
on its ``experiment`` sub-app). Importing this module is cheap (typer and the standard
library); pyarrow and the statistics are imported when a command runs.

Output conventions and error translation are `liftgate.app.cli.common`'s, shared with every
other command.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from liftgate.app.cli.common import (
    ConfigDirOption,
    JsonOption,
    emit,
    failures,
    find_experiment,
    say,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from experiments.stats.aggregate import MetricSpec


def register(app: typer.Typer, experiment_app: typer.Typer) -> None:
    """Mount ``analyze`` on ``app`` and ``plan``/``report`` on its ``experiment`` sub-app."""
    app.command("analyze")(analyze_command)
    experiment_app.command("plan")(plan_command)
    experiment_app.command("report")(report_command)


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
        raise ValueError(f"{where}: expected COL:binomial, COL:mean or NUM/DEN:ratio")
    from experiments.stats.aggregate import KINDS

    if kind not in KINDS:
        raise ValueError(f"{where}: kind must be one of {', '.join(KINDS)}; got {kind!r}")
    if kind == "ratio":
        numerator, slash, denominator = column.partition("/")
        if not slash or not numerator or not denominator:
            raise ValueError(f"{where}: a ratio metric is NUM/DEN:ratio, e.g. revenue/orders:ratio")
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
            raise ValueError(f"--weights: expected ARM=W,ARM=W (e.g. a=0.5,b=0.5); got {item!r}")
        if weight <= 0:
            raise ValueError(f"--weights: weight of {arm!r} must be > 0; got {weight}")
        if arm in weights:
            raise ValueError(f"--weights: arm {arm!r} is given twice")
        weights[arm] = weight
    total = sum(weights.values())
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"--weights: weights must sum to 1; they sum to {total:g}")
    return weights


def with_covariates(metrics: list[MetricSpec], covariates: Sequence[str]) -> list[MetricSpec]:
    """Apply ``--covariate METRIC=COL`` options (CUPED) to the parsed metrics."""
    from experiments.stats.aggregate import MetricSpec

    by_name = {m.name: m for m in metrics}
    for item in covariates:
        name, sep, column = item.partition("=")
        where = f"--covariate {item!r}"
        if not sep or not name or not column:
            raise ValueError(f"{where}: expected METRIC=COL, e.g. revenue=pre_revenue")
        if name not in by_name:
            raise ValueError(f"{where}: no --metric named {name!r}; metrics: {', '.join(by_name)}")
        metric = by_name[name]
        if metric.kind == "ratio":
            raise ValueError(f"{where}: CUPED is not supported for ratio metrics")
        if metric.covariate_column:
            raise ValueError(f"{where}: metric {name!r} already has a covariate")
        by_name[name] = MetricSpec(metric.name, metric.column, metric.kind, None, column)
    return list(by_name.values())


def _check_choice(option: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{option}: expected one of {', '.join(choices)}; got {value!r}")


# --------------------------------------------------------------------------- rendering


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def _with_interval(effect: Mapping[str, Any], spec: str) -> str:
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


def format_results(document: Mapping[str, Any], alpha: float = 0.05) -> str:
    """A readable table of ``analyze``'s output, the SRM warning first when flagged."""
    results = document["results"]
    level = f"{1 - alpha:.0%}"
    head = [
        "arm",
        "metric",
        "n",
        "mean",
        f"abs effect [{level}]",
        f"rel effect [{level}]",
        "p",
        "adj p",
        "chance to win",
    ]
    rows: list[list[str]] = []
    seen: set[str] = set()
    for r in results:
        if r["metric"] not in seen:
            seen.add(r["metric"])
            rows.append(
                [
                    f"{r['control']} (control)",
                    r["metric"],
                    f"{r['control_n']:,}",
                    _fmt(r["control_mean"], ".4g"),
                    "",
                    "",
                    "",
                    "",
                    "",
                ]
            )
        rows.append(
            [
                r["arm"],
                r["metric"],
                f"{r['n']:,}",
                _fmt(r["mean"], ".4g"),
                _with_interval(r["abs"], "+.4g"),
                _with_interval(r["rel"], "+.2%"),
                _fmt(r["abs"]["p_value"], ".3g"),
                _fmt(r["p_value_adjusted"], ".3g"),
                _fmt(r["chance_to_win"], ".1%"),
            ]
        )
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]

    def line(row: list[str]) -> str:
        cells = [
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    srm = document["srm"]
    out = [srm_warning(srm), ""] if srm["flag"] else []
    out += [line(head), *(line(row) for row in rows)]
    if results:
        reductions = [
            f"{r['metric']}/{r['arm']} {r['variance_reduction']:.0%}"
            for r in results
            if r["variance_reduction"] is not None
        ]
        if reductions:
            out.append(f"CUPED variance reduction: {', '.join(reductions)}")
        method = results[0]["method"]
        interval = {
            "sequential": "anytime-valid confidence sequences and p-values",
            "bayesian": "credible intervals, no p-values",
        }.get(method, "fixed-horizon confidence intervals")
        out.append(f"method {method} ({interval})")
    if not srm["flag"]:
        out.append(f"SRM ok (p = {srm['p_value']:.2g})")
    return "\n".join(out)


# ------------------------------------------------------------------------------ analyze


def analyze_command(
    data: Annotated[
        Path, typer.Argument(help="Parquet file or directory, or CSV; one row per unit.")
    ],
    arm_col: Annotated[str, typer.Option("--arm-col", help="Column holding the arm.")],
    control: Annotated[str, typer.Option("--control", help="The control arm.")],
    metric: Annotated[
        list[str],
        typer.Option("--metric", help="COL:binomial, COL:mean or NUM/DEN:ratio (repeatable)."),
    ],
    covariate: Annotated[
        list[str] | None,
        typer.Option("--covariate", help="METRIC=COL: CUPED covariate of a metric (repeatable)."),
    ] = None,
    method: Annotated[
        str, typer.Option("--method", help="frequentist | sequential | bayesian")
    ] = "frequentist",
    weights: Annotated[
        str | None, typer.Option("--weights", help="ARM=W,... configured shares (default equal).")
    ] = None,
    alpha: Annotated[float, typer.Option("--alpha")] = 0.05,
    correction: Annotated[str, typer.Option("--correction", help="holm | bh | none")] = "holm",
    as_json: JsonOption = False,
) -> None:
    """Compare every arm with the control on any table of units.

    SRM check, effects with intervals, p-values adjusted across arms x metrics.
    """
    import pyarrow.compute as pc

    from experiments.stats.analysis import CORRECTIONS, METHODS, analyze

    with failures():
        _check_choice("--method", method, METHODS)
        _check_choice("--correction", correction, CORRECTIONS)
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"--alpha: must be in (0, 1); got {alpha}")
        if not metric:
            raise ValueError("--metric: give at least one, e.g. --metric converted:binomial")
        specs = [parse_metric(m) for m in metric]
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"--metric: a metric is given twice: {names}")
        specs = with_covariates(specs, covariate or [])
        shares = parse_weights(weights) if weights else None
        columns = {arm_col: "--arm-col"}
        for s in specs:
            for col in s.columns:
                option = "--covariate" if col == s.covariate_column else "--metric"
                columns.setdefault(col, f"{option} {s.name!r}")
        table = read_table(data, columns, arm_col=arm_col)
        arms = {str(a) for a in pc.unique(table[arm_col]).to_pylist() if a is not None}
        if control not in arms:
            raise ValueError(
                f"--control: arm {control!r} not found in column {arm_col!r} of {data} "
                f"(arms present: {', '.join(sorted(arms))})"
            )
        if shares is not None and arms - set(shares):
            raise ValueError(
                f"--weights: arm(s) {', '.join(sorted(arms - set(shares)))} of column "
                f"{arm_col!r} in {data} have no weight"
            )
        try:
            document = analyze(table, arm_col, control, specs, method, shares, alpha, correction)  # type: ignore[arg-type]
        except ValueError as exc:
            raise ValueError(f"{data}: {exc}") from None
    emit(document, as_json, lambda: typer.echo(format_results(document, alpha)))


# --------------------------------------------------------------------------------- plan


def plan(
    kind: str,
    baseline: float,
    mde: float,
    std: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    arms: int = 2,
    daily_traffic: float | None = None,
    shares: Sequence[float] | None = None,
    experiment: str | None = None,
) -> dict[str, Any]:
    """Units per arm and days for a relative ``mde`` on ``baseline`` (``power`` module).

    ``daily_traffic`` is units a day entering the experiment; with unequal ``shares`` the
    smallest arm sets the duration (and ``total`` is the traffic that fills it).
    """
    from experiments.stats.power import duration_days, sample_size_per_arm

    n = sample_size_per_arm(kind, baseline, mde, std=std, alpha=alpha, power=power)  # type: ignore[arg-type]
    smallest = min(shares) / sum(shares) if shares else 1.0 / arms
    equal = shares is None or max(shares) - min(shares) < 1e-12
    total = n * arms if equal else math.ceil(n / smallest)
    days = None
    if daily_traffic is not None:
        if equal:
            days = duration_days(n, daily_traffic, arms)
        else:
            days = math.ceil(n / (daily_traffic * smallest))
    return {
        "experiment": experiment,
        "kind": kind,
        "baseline": baseline,
        "std": std,
        "mde": mde,
        "alpha": alpha,
        "power": power,
        "arms": arms,
        "n_per_arm": n,
        "total": total,
        "daily_traffic": daily_traffic,
        "days": days,
    }


def _print_plan(p: Mapping[str, Any]) -> None:
    what = (
        f"a baseline rate of {p['baseline']:.2%}"
        if p["kind"] == "binomial"
        else f"a baseline mean of {p['baseline']:g} (sd {p['std']:g})"
    )
    head = f"{p['experiment']}: " if p["experiment"] else ""
    text = (
        f"{head}{p['n_per_arm']:,} units per arm ({p['total']:,} in total, {p['arms']} arms) "
        f"to detect a {p['mde']:.1%} relative change on {what}, "
        f"alpha {p['alpha']:g}, power {p['power']:.0%}"
    )
    if p["days"] is not None:
        plural = "s" if p["days"] != 1 else ""
        text += f"; {p['days']} day{plural} at {p['daily_traffic']:,.0f} units a day"
    typer.echo(text)


def plan_command(
    name: Annotated[
        str | None, typer.Argument(help="Experiment whose YAML gives the defaults.")
    ] = None,
    baseline: Annotated[
        float | None,
        typer.Option("--baseline", help="Control conversion rate (binomial) or mean (mean)."),
    ] = None,
    std: Annotated[
        float | None, typer.Option("--std", help="Per-unit standard deviation (mean metrics).")
    ] = None,
    mde: Annotated[
        float | None, typer.Option("--mde", help="Relative minimum detectable effect [0.05].")
    ] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="binomial | mean [binomial]")] = None,
    alpha: Annotated[float | None, typer.Option("--alpha", help="[0.05]")] = None,
    power: Annotated[float | None, typer.Option("--power", help="[0.8]")] = None,
    arms: Annotated[int | None, typer.Option("--arms", help="Arms, control included [2].")] = None,
    daily_traffic: Annotated[
        float | None, typer.Option("--daily-traffic", help="Units a day entering the experiment.")
    ] = None,
    config_dir_: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Sample size per arm and duration to detect a minimum effect.

    With NAME, the defaults (MDE, alpha, power, arms, metric kind) come from the
    experiment's YAML.
    """
    from liftgate.app.cli.common import load_checked_config

    with failures():
        shares = None
        if name is not None:
            experiment = find_experiment(load_checked_config(config_dir_), name)
            config_kind = "binomial" if experiment.primary_metric.kind == "binomial" else "mean"
            kind = kind or config_kind
            mde = experiment.minimum_detectable_effect if mde is None else mde
            alpha = experiment.alpha if alpha is None else alpha
            power = experiment.power if power is None else power
            if arms is None:
                arms = len(experiment.arms)
                shares = [a.weight for a in experiment.arms]
        kind = kind or "binomial"
        mde = 0.05 if mde is None else mde
        alpha = 0.05 if alpha is None else alpha
        power = 0.8 if power is None else power
        arms = 2 if arms is None else arms
        _check_choice("--kind", kind, ("binomial", "mean"))
        if baseline is None:
            what = "the control's conversion rate" if kind == "binomial" else "the control's mean"
            raise ValueError(f"--baseline: required ({what})")
        if kind == "mean" and std is None:
            raise ValueError("--std: required for mean metrics (per-unit standard deviation)")
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"--alpha: must be in (0, 1); got {alpha}")
        if not 0.0 < power < 1.0:
            raise ValueError(f"--power: must be in (0, 1); got {power}")
        if mde <= 0:
            raise ValueError(f"--mde: must be > 0 (relative); got {mde}")
        if arms < 2:
            raise ValueError(f"--arms: need at least 2 (control included); got {arms}")
        if daily_traffic is not None and daily_traffic <= 0:
            raise ValueError(f"--daily-traffic: must be > 0; got {daily_traffic}")
        if kind == "binomial" and not 0.0 < baseline < 1.0:
            raise ValueError(f"--baseline: a conversion rate in (0, 1); got {baseline}")
        if kind == "binomial" and not baseline * (1 + mde) < 1.0:
            target = baseline * (1 + mde)
            raise ValueError(f"--mde: baseline x (1 + mde) must stay below 1; got {target:g}")
        if std is not None and std <= 0:
            raise ValueError(f"--std: must be > 0; got {std}")
        result = plan(
            kind,
            baseline,
            mde,
            std if kind == "mean" else None,
            alpha,
            power,
            arms,
            daily_traffic,
            shares,
            name,
        )
    emit(result, as_json, lambda: _print_plan(result))


# ------------------------------------------------------------------------------- report


def _utc(moment: Any) -> Any:
    import datetime as dt

    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=dt.UTC)


def load_units(config: Any, experiment: Any, home: Path) -> tuple[pa.Table, int]:
    """The experiment's units from the logs under ``home`` (``LIFTGATE_HOME``), without the
    holdout, and the number of holdout units."""
    import datetime as dt

    import pyarrow.compute as pc

    from experiments.logs import decision_log_dir, outcome_log_dir, read_decisions, read_outcomes
    from experiments.units import experiment_units
    from liftgate.core.contract import FeatureContract

    start, stop = _utc(experiment.start), _utc(experiment.stop)
    decisions = read_decisions(decision_log_dir(home), start=start, end=stop)
    # An app's clock may stamp an outcome a little before its decision: a day of margin.
    since = start - dt.timedelta(days=1) if start is not None else None
    outcomes = read_outcomes(outcome_log_dir(home), start=since)
    names = FeatureContract(config.features).names
    covariate_index = None
    if experiment.cuped_covariate is not None:
        covariate_index = names.index(experiment.cuped_covariate)
    segments = {name: names.index(name) for name in experiment.segment_by}
    window_s = experiment.attribution_window_hours * 3600.0
    units = experiment_units(
        decisions, outcomes, experiment.name, window_s, covariate_index, segments
    )
    holdout = pc.fill_null(pc.equal(units["arm"], "holdout"), False)
    n_holdout = int(pc.sum(holdout).as_py() or 0)
    return units.filter(pc.invert(holdout)), n_holdout


def write_report(report: Mapping[str, Any], html_path: Path) -> Path:
    """Render ``report`` (``experiment_report``'s output) to one self-contained HTML file."""
    from experiments.report.render import render_html

    html_path = Path(html_path)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(render_html(report), encoding="utf-8")
    return html_path


def format_report(report: Mapping[str, Any]) -> str:
    """The report as text: SRM warning, ship decision and reasons, units, the results table."""
    from experiments.report.ship_decision import REPORT_KEY

    decision = report[REPORT_KEY]
    lines = [srm_warning(report["srm"]), ""] if report["srm"]["flag"] else []
    arm = f" {decision['arm']}" if decision.get("arm") else ""
    lines.append(
        f"{report['experiment']} ({report['method']}, {report['correction']}, "
        f"alpha {report['alpha']:g}): {decision['decision'].upper()}{arm}"
    )
    lines += [f"  - {reason}" for reason in decision["reasons"]]
    units = ", ".join(f"{a} {n:,}" for a, n in report["units"].items())
    planned = report["planned_n_per_arm"]
    lines.append(f"units: {units}; planned {planned:,} per arm" if planned else f"units: {units}")
    if report["holdout_units"]:
        lines[-1] += f"; holdout {report['holdout_units']:,}"
    lines.append("")
    body = format_results(
        {"srm": {**report["srm"], "flag": False}, "results": report["results"]}, report["alpha"]
    )
    lines.append(body)
    primary = report["metrics"][0]["name"]
    for by_feature in report.get("segments", []):
        lines += ["", f"{primary} by {by_feature['feature']} (abs effect, fixed-horizon):"]
        lines += [
            f"  {r['segment']:<18} {r['arm']:<12} n {r['n']:>7,} vs {r['control_n']:>7,}  "
            f"{_with_interval(r['abs'], '+.4g')}"
            for r in by_feature["rows"]
        ]
    return "\n".join(lines)


def report_command(
    name: Annotated[str, typer.Argument(help="Experiment name (configs/experiments/*.yaml).")],
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write a self-contained HTML report.")
    ] = None,
    as_json: JsonOption = False,
    config_dir_: ConfigDirOption = None,
) -> None:
    """Ship decision, SRM, effects, timeline and planned size of an experiment.

    Read from the decision and outcome logs under LIFTGATE_HOME.
    """
    from experiments.report.data import experiment_report
    from liftgate.app.cli.common import load_checked_config
    from liftgate.core.home import Home

    with failures():
        config = load_checked_config(config_dir_)
        experiment = find_experiment(config, name)
        home = Home.from_env()
        units, holdout = load_units(config, experiment, home.root)
    if units.num_rows == 0:
        say(
            f"experiment {name!r}: no exposures yet in the decision log under {home.root} "
            f"({holdout:,} holdout units); serve traffic with the experiment enabled first"
        )
        raise typer.Exit(1)
    with failures():
        report = experiment_report(
            experiment, units, holdout_units=holdout, features=config.features
        )
        if html is not None:
            write_report(report, html)
    emit(report, as_json, lambda: typer.echo(format_report(report)))
    if html is not None:
        say(f"wrote {html}")
