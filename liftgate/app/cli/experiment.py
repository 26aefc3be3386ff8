"""`liftgate experiment …`: A/B/n experiments from configs/experiments/: list, start, stop,
status (live exposure and SRM), plan (sample size) and report (the ship decision).

Importing this module is cheap; pyarrow, the statistics and the report are imported when a
command runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from liftgate.app.cli.analyze import Engine, print_results, srm_warning, with_interval
from liftgate.app.cli.common import ConfigDirOption, JsonOption, find_experiment, session
from liftgate.app.cli.group import CommandGroup
from liftgate.app.cli.output import emit, print_table, say, table_of
from liftgate.core.errors import CheckFailed, InputError

if TYPE_CHECKING:
    import pyarrow as pa

    from liftgate.app.report_units import UnitsJob
    from liftgate.core.home import Home

app = CommandGroup(help="A/B/n experiments: plan, start, watch, stop, report.")

NameArgument = Annotated[str, typer.Argument(help="Experiment name (configs/experiments/).")]
WhoOption = Annotated[str | None, typer.Option("--by", help="Who (default: $USER).")]


# --- list, start, stop, status ----------------------------------------------------------------


@app.command("list")
def list_experiments(
    ctx: typer.Context, _config_dir: ConfigDirOption = None, as_json: JsonOption = False
) -> None:
    """Experiments defined in configs/experiments/ and their state.

    **Examples:**

    * `liftgate experiment list`
    * `liftgate experiment list --json`
    """
    from experiments.state import read_state

    cli = session(ctx)
    state = read_state(cli.home)
    rows = [
        {
            "name": name,
            "status": state.get(name, {}).get("status", "not started"),
            "started_at": state.get(name, {}).get("started_at"),
            "arms": {arm.name: arm.weight for arm in experiment.arms},
            "layer": experiment.layer_name,
            "layer_range": list(experiment.layer_range),
        }
        for name, experiment in sorted(cli.config.experiments.items())
    ]

    def render() -> None:
        if not rows:
            typer.echo("no experiments defined")
            return
        listed = table_of("experiment", "status", "arms", "layer", "range")
        for r in rows:
            arms = ", ".join(f"{arm} {weight:g}" for arm, weight in r["arms"].items())
            listed.add_row(r["name"], r["status"], arms, r["layer"], str(r["layer_range"]))
        print_table(listed)

    emit(rows, as_json, render)


@app.command("start")
def start(
    ctx: typer.Context,
    name: NameArgument,
    who: WhoOption = None,
    _config_dir: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start (or restart with new weights) an experiment; running services pick it up.

    Refused (exit 1) when it overlaps a running experiment in its layer.

    **Examples:**

    * `liftgate experiment start scored-vs-rules`
    * `liftgate experiment start bandit-offers --by alice --json`
    """
    from experiments import state
    from liftgate.core import audit

    cli = session(ctx)
    home = cli.home.ensure()
    experiment = find_experiment(cli.config, name)
    entry = state.start(home, experiment)
    audit.append(
        home.audit_log,
        "experiment_started",
        who=who,
        experiment=name,
        arms={a.name: a.weight for a in experiment.arms},
    )
    emit(
        {"experiment": name, **entry},
        as_json,
        lambda: typer.echo(f"{name} running; arms {entry['ranges']}"),
    )


@app.command("stop")
def stop(
    ctx: typer.Context, name: NameArgument, who: WhoOption = None, as_json: JsonOption = False
) -> None:
    """Stop an experiment; its units go back to the default policy.

    **Examples:**

    * `liftgate experiment stop scored-vs-rules`
    * `liftgate experiment stop scored-vs-rules --by alice --json`
    """
    from experiments import state
    from liftgate.core import audit

    home = session(ctx).home.ensure()
    entry = state.stop(home, name)
    audit.append(home.audit_log, "experiment_stopped", who=who, experiment=name)
    emit({"experiment": name, **entry}, as_json, lambda: typer.echo(f"{name} stopped"))


@app.command("status")
def status(
    ctx: typer.Context,
    name: NameArgument,
    _config_dir: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Exposure per arm from the decision log, and a live sample-ratio-mismatch check.

    Exits 1 on a sample ratio mismatch: the split is broken, do not trust the results.

    **Examples:**

    * `liftgate experiment status scored-vs-rules`
    * `liftgate experiment status scored-vs-rules --json`
    """
    from experiments.exposure import exposure
    from experiments.logs.reader import read_decisions
    from experiments.state import read_state

    cli = session(ctx)
    experiment = find_experiment(cli.config, name)
    result = exposure(read_decisions(cli.home.decision_log), experiment)
    result["status"] = read_state(cli.home).get(name, {}).get("status", "not started")

    def render() -> None:
        srm = result["srm"]
        if srm and srm["flag"]:
            typer.echo(
                f"SAMPLE RATIO MISMATCH: p = {srm['p_value']:.2g} < 0.001 — do not trust "
                "this experiment's results until the cause is found"
            )
        typer.echo(f"{name}: {result['status']}")
        arms = table_of(
            "arm", "weight", "units", "decisions", numeric=["weight", "units", "decisions"]
        )
        for arm in result["arms"]:
            arms.add_row(
                arm["arm"], f"{arm['weight']:g}", f"{arm['units']:,}", f"{arm['decisions']:,}"
            )
        print_table(arms)
        if srm:
            typer.echo(
                f"SRM chi-square p = {srm['p_value']:.3g} ({'FLAG' if srm['flag'] else 'ok'})"
            )

    emit(result, as_json, render)
    if result["srm"] and result["srm"]["flag"]:
        raise typer.Exit(1)


# --- plan -------------------------------------------------------------------------------------


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


@app.command("plan")
def plan_command(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(help="Experiment whose YAML gives the defaults.")
    ] = None,
    baseline: Annotated[
        float | None,
        typer.Option("--baseline", help="Control conversion rate (binomial) or mean (mean)."),
    ] = None,
    std: Annotated[
        float | None,
        typer.Option("--std", min=0.0, help="Per-unit standard deviation (mean metrics)."),
    ] = None,
    mde: Annotated[
        float | None,
        typer.Option("--mde", min=0.0, help="Relative minimum detectable effect [0.05]."),
    ] = None,
    kind: Annotated[
        Literal["binomial", "mean"] | None, typer.Option("--kind", help="[binomial]")
    ] = None,
    alpha: Annotated[float | None, typer.Option("--alpha", min=0.0, max=1.0, help="[0.05]")] = None,
    power: Annotated[float | None, typer.Option("--power", min=0.0, max=1.0, help="[0.8]")] = None,
    arms: Annotated[
        int | None, typer.Option("--arms", min=2, help="Arms, control included [2].")
    ] = None,
    daily_traffic: Annotated[
        float | None,
        typer.Option("--daily-traffic", min=1.0, help="Units a day entering the experiment."),
    ] = None,
    _config_dir: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Sample size per arm and duration to detect a minimum effect.

    With NAME, the defaults (MDE, alpha, power, arms and their shares, metric kind) come from
    the experiment's YAML.

    **Examples:**

    * `liftgate experiment plan scored-vs-rules --baseline 0.12 --daily-traffic 5000`
    * `liftgate experiment plan --kind mean --baseline 20 --std 35 --mde 0.03 --json`
    """
    shares = None
    if name is not None:
        experiment = find_experiment(session(ctx).config, name)
        config_kind = "binomial" if experiment.primary_metric.kind == "binomial" else "mean"
        kind = kind or config_kind
        mde = experiment.minimum_detectable_effect if mde is None else mde
        alpha = experiment.alpha if alpha is None else alpha
        power = experiment.power if power is None else power
        if arms is None:
            arms = len(experiment.arms)
            shares = [a.weight for a in experiment.arms]
    kind = kind or "binomial"
    if baseline is None:
        what = "the control's conversion rate" if kind == "binomial" else "the control's mean"
        raise InputError(f"--baseline: required ({what})")
    if kind == "mean" and std is None:
        raise InputError("--std: required for mean metrics (per-unit standard deviation)")
    result = plan(
        kind,
        baseline,
        0.05 if mde is None else mde,
        std if kind == "mean" else None,
        0.05 if alpha is None else alpha,
        0.8 if power is None else power,
        2 if arms is None else arms,
        daily_traffic,
        shares,
        name,
    )
    emit(result, as_json, lambda: _print_plan(result))


# --- report -----------------------------------------------------------------------------------


def _utc(moment: Any) -> Any:
    import datetime as dt

    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=dt.UTC)


def read_experiment_decisions(experiment: Any, home: Home) -> pa.Table:
    """The decisions logged under ``home`` while the experiment ran (of any experiment)."""
    from experiments.logs.reader import read_decisions

    start, stop = _utc(experiment.start), _utc(experiment.stop)
    return read_decisions(home.decision_log, start=start, end=stop)


def units_job(config: Any, experiment: Any, home: Home) -> UnitsJob:
    """Where the experiment's logs are under ``home`` and how its units are built."""
    import datetime as dt

    from liftgate.app.report_units import UnitsJob
    from liftgate.core.contract import FeatureContract

    start = _utc(experiment.start)
    names = FeatureContract(config.features).names
    covariate_index = None
    if experiment.cuped_covariate is not None:
        covariate_index = names.index(experiment.cuped_covariate)
    return UnitsJob(
        decision_log=home.decision_log,
        outcome_log=home.outcome_log,
        experiment=experiment.name,
        start=start,
        stop=_utc(experiment.stop),
        # An app's clock may stamp an outcome a little before its decision: a day of margin.
        outcomes_since=start - dt.timedelta(days=1) if start is not None else None,
        window_s=experiment.attribution_window_hours * 3600.0,
        covariate_index=covariate_index,
        segments={name: names.index(name) for name in experiment.segment_by},
    )


def load_units(
    config: Any, experiment: Any, home: Home, decisions: pa.Table
) -> tuple[pa.Table, int]:
    """The experiment's units from ``decisions`` and the outcome log under ``home``,
    without the holdout, and the number of holdout units."""
    from experiments.logs.reader import read_outcomes
    from experiments.units import experiment_units

    job = units_job(config, experiment, home)
    outcomes = read_outcomes(home.outcome_log, start=job.outcomes_since)
    units = experiment_units(
        decisions, outcomes, job.experiment, job.window_s, job.covariate_index, dict(job.segments)
    )
    return without_holdout(units)


def without_holdout(units: pa.Table) -> tuple[pa.Table, int]:
    """The units not in the holdout, and how many are."""
    import pyarrow.compute as pc

    holdout = pc.fill_null(pc.equal(units["arm"], "holdout"), False)
    n_holdout = int(pc.sum(holdout).as_py() or 0)
    return units.filter(pc.invert(holdout)), n_holdout


def load_sent(experiment: Any, home: Home, decisions: pa.Table) -> dict[str, Any]:
    """What was sent per arm (`experiments.sent.sent_by_arm`) for the experiment's
    ``decisions``, from the action log under ``home``."""
    import pyarrow.compute as pc

    from experiments.logs.reader import read_actions
    from experiments.sent import sent_by_arm

    ours = decisions.filter(pc.equal(decisions["experiment"], experiment.name))
    # No end: an action of a decision made before the stop may be delivered after it.
    actions = read_actions(home.action_log, start=_utc(experiment.start))
    try:
        return sent_by_arm(ours.select(["decision_id", "arm"]), actions)
    except ValueError as exc:
        raise InputError(f"{home.action_log}: {exc}") from None


def write_report(report: Mapping[str, Any], html_path: Path) -> Path:
    """Render ``report`` (``experiment_report``'s output) to one self-contained HTML file."""
    from experiments.report.render import render_html

    html_path = Path(html_path)
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(render_html(report), encoding="utf-8")
    return html_path


def print_report(report: Mapping[str, Any]) -> None:
    """The report as text: SRM warning, ship decision and reasons, units, the results table,
    what was sent, the primary metric by segment."""
    from experiments.report.ship_decision import REPORT_KEY

    decision = report[REPORT_KEY]
    if report["srm"]["flag"]:
        typer.echo(srm_warning(report["srm"]) + "\n")
    arm = f" {decision['arm']}" if decision.get("arm") else ""
    typer.echo(
        f"{report['experiment']} ({report['method']}, {report['correction']}, "
        f"alpha {report['alpha']:g}): {decision['decision'].upper()}{arm}"
    )
    for reason in decision["reasons"]:
        typer.echo(f"  - {reason}")
    units = ", ".join(f"{a} {n:,}" for a, n in report["units"].items())
    planned = report["planned_n_per_arm"]
    line = f"units: {units}; planned {planned:,} per arm" if planned else f"units: {units}"
    if report["holdout_units"]:
        line += f"; holdout {report['holdout_units']:,}"
    typer.echo(line + "\n")
    print_results(
        {"srm": {**report["srm"], "flag": False}, "results": report["results"]}, report["alpha"]
    )
    if "sent" in report:
        print_sent(report["sent"])
    primary = report["metrics"][0]["name"]
    for by_feature in report.get("segments", []):
        typer.echo(f"\n{primary} by {by_feature['feature']} (abs effect, fixed-horizon):")
        segments = table_of(
            by_feature["feature"],
            "arm",
            "n",
            "control n",
            "abs effect",
            numeric=["n", "control n", "abs effect"],
        )
        for r in by_feature["rows"]:
            segments.add_row(
                r["segment"],
                r["arm"],
                f"{r['n']:,}",
                f"{r['control_n']:,}",
                with_interval(r["abs"], "+.4g"),
            )
        print_table(segments)


def print_sent(sent: Mapping[str, Mapping[str, Any]]) -> None:
    """Per arm: decisions (with a delivery) and their actions by what became of them."""
    if not any(s["actions"] for s in sent.values()):
        typer.echo("\nsent: no action of this experiment's decisions is in the action log")
        return
    typer.echo("\nsent (action log; one count per action, by its final status):")
    head = ["arm", "decisions", "delivered to", "committed", "delivered", "pending", "failed"]
    rows = table_of(*head, "refused", "dry runs", numeric=[*head[1:], "dry runs"])
    for arm, s in sent.items():
        share = s["decisions_delivered"] / s["decisions"] if s["decisions"] else 0.0
        checks = ", ".join(f"{check} {n:,}" for check, n in s["refused_by_check"].items())
        rows.add_row(
            arm,
            f"{s['decisions']:,}",
            f"{s['decisions_delivered']:,} ({share:.0%})",
            *(f"{s[key]:,}" for key in ("committed", "delivered", "pending", "failed")),
            f"{s['refused']:,}" + (f" ({checks})" if checks else ""),
            f"{s['dry_runs']:,}",
        )
    print_table(rows)


@app.command("report")
def report_command(
    ctx: typer.Context,
    name: NameArgument,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write a self-contained HTML report.")
    ] = None,
    engine: Annotated[
        Engine,
        typer.Option(
            "--engine",
            help="memory: read the experiment's logs at once (default); local: build its "
            "units partition by partition (memory holds one partition of the logs); ray: "
            "the partitions in Ray tasks. Same numbers.",
        ),
    ] = "memory",
    as_json: JsonOption = False,
    _config_dir: ConfigDirOption = None,
) -> None:
    """Ship decision, SRM, effects, timeline and planned size of an experiment, and what
    was sent per arm.

    Read from the decision, outcome and action logs under LIFTGATE_HOME; exits 1 while the
    experiment has no exposures.

    **Examples:**

    * `liftgate experiment report scored-vs-rules`
    * `liftgate experiment report scored-vs-rules --html report.html --json`
    """
    from experiments.report.data import experiment_report

    cli = session(ctx)
    experiment = find_experiment(cli.config, name)
    if engine == "memory":
        decisions = read_experiment_decisions(experiment, cli.home)
        units, holdout = load_units(cli.config, experiment, cli.home, decisions)
    else:
        from liftgate.app.report_units import units_locally, units_with_ray

        job = units_job(cli.config, experiment, cli.home)
        built = units_locally(job) if engine == "local" else units_with_ray(job, cli.home)
        units, holdout = without_holdout(built)
        decisions = job.decision_arms()
    if units.num_rows == 0:
        raise CheckFailed(
            f"experiment {name!r}: no exposures yet in the decision log under {cli.home.root} "
            f"({holdout:,} holdout units); serve traffic with the experiment enabled first"
        )
    report = experiment_report(
        experiment,
        units,
        holdout_units=holdout,
        features=cli.config.features,
        sent=load_sent(experiment, cli.home, decisions),
    )
    if html is not None:
        write_report(report, html)
    emit(report, as_json, lambda: print_report(report))
    if html is not None:
        say(f"wrote {html}")
