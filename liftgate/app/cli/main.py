"""The `liftgate` command line. Exit codes: 0 success, 1 a failed check, 2 bad input or config.

Every command that reports something takes `--json`: one JSON document on stdout and
nothing else there; progress and messages go to stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from configs.loader import ConfigError, LiftgateConfig, config_dir
from liftgate.app.cli.analyze import register as register_analysis
from liftgate.app.cli.bandit import register as register_bandits
from liftgate.app.cli.common import (
    ConfigDirOption,
    JsonOption,
    emit,
    failures,
    find_experiment,
    load_checked_config,
    say,
)
from liftgate.app.cli.drift import register as register_drift
from liftgate.app.cli.ope import register as register_ope
from liftgate.app.cli.rollout import register as register_guard
from liftgate.app.cli.uplift import register as register_uplift
from liftgate.core.home import Home

app = typer.Typer(
    no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False, help=__doc__
)
config_app = typer.Typer(no_args_is_help=True, help="Validate configuration.")
world_app = typer.Typer(no_args_is_help=True, help="The synthetic marketing world.")
registry_app = typer.Typer(no_args_is_help=True, help="Model versions, aliases, approval.")
app.add_typer(config_app, name="config")
app.add_typer(world_app, name="world")
app.add_typer(registry_app, name="registry")
experiment_app = typer.Typer(no_args_is_help=True, help="A/B/n experiments: start, stop, status.")
app.add_typer(experiment_app, name="experiment")
register_analysis(app, experiment_app)
register_bandits(app)
register_ope(app)
register_uplift(app)
register_drift(app)
register_guard(app)


def _config(directory: Path | None) -> LiftgateConfig:
    return load_checked_config(directory)


# --- config ----------------------------------------------------------------------------------


@config_app.command("check")
def config_check(
    directory: Annotated[Path | None, typer.Option("--dir", help="Config directory.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Validate every configuration file; errors name the file, the key and what was expected."""
    try:
        config = load_checked_config(directory)
    except ConfigError as exc:
        problems = exc.problems
        emit(
            {"ok": False, "directory": str(config_dir(directory)), "errors": problems},
            as_json,
            lambda: say("configuration error:\n" + "\n".join(f"  {p}" for p in problems)),
        )
        raise typer.Exit(2) from None
    summary = {
        "ok": True,
        "directory": str(config.directory),
        "features": len(config.features.features),
        "actions": [a.id for a in config.actions.actions],
        "model": config.models.scorer.name,
    }
    emit(
        summary,
        as_json,
        lambda: typer.echo(
            f"ok: {config.directory} — {summary['features']} features, "
            f"{len(summary['actions'])} actions, model {summary['model']}"
        ),
    )


# --- world -----------------------------------------------------------------------------------


@world_app.command("generate")
def world_generate(
    out: Annotated[Path, typer.Option("--out", help="Output directory.")],
    rows: Annotated[int, typer.Option("--rows", min=1, help="Logged decisions.")] = 100_000,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    scenario: Annotated[
        str, typer.Option("--scenario", help="stationary | covariate_drift | concept_drift")
    ] = "stationary",
    customers: Annotated[
        int | None, typer.Option("--customers", min=1, help="Population (default rows/5).")
    ] = None,
    policy: Annotated[
        str, typer.Option("--policy", help="Logging policy: uniform | epsilon_greedy")
    ] = "uniform",
    epsilon: Annotated[float, typer.Option("--epsilon", min=0.0, max=1.0)] = 0.2,
    config_dir_: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write customers.parquet, logged.parquet and truth.parquet of a seeded world."""
    from liftgate.sim.world import SCENARIOS, World

    with failures():
        if scenario not in SCENARIOS:
            raise ValueError(
                f"--scenario: expected one of {', '.join(SCENARIOS)}; got {scenario!r}"
            )
        if policy not in ("uniform", "epsilon_greedy"):
            raise ValueError(f"--policy: expected uniform or epsilon_greedy; got {policy!r}")
        n_customers = customers or max(1_000, rows // 5)
        world = World(seed, n_customers, scenario, _config(config_dir_).actions)
        summary = world.write(out, rows, policy, epsilon)
    emit(
        summary,
        as_json,
        lambda: typer.echo(
            f"wrote {summary['logged_rows']:,} logged decisions and {summary['customers']:,} "
            f"customers ({scenario}, seed {seed}, conversion {summary['conversion_rate']:.1%}) "
            f"to {out}"
        ),
    )


# --- train -----------------------------------------------------------------------------------


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
    data: Annotated[Path, typer.Option("--data", help="World directory or logged Parquet.")],
    seed: Annotated[int, typer.Option("--seed")] = 0,
    shuffle_labels: Annotated[
        bool, typer.Option("--shuffle-labels", help="Train on permuted labels (gate demo).")
    ] = False,
    config_dir_: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Train, log to MLflow, register a version and run the validation gate (exit 1 if it fails)."""
    from registry.client import ModelRegistry
    from registry.pipeline import train_and_register

    with failures():
        config = _config(config_dir_)
        registry = ModelRegistry(Home.from_env(), config.models.registry)
        summary = train_and_register(
            data, config, registry, seed=seed, shuffle_labels=shuffle_labels, progress=say
        )
    emit(summary, as_json, lambda: _print_training(summary))
    if not summary["gate"]["passed"]:
        say("validation gate failed: " + "; ".join(summary["gate"]["reasons"]))
        raise typer.Exit(1)


# --- registry --------------------------------------------------------------------------------


def _registry(config_dir_: Path | None):
    from registry.client import ModelRegistry

    return ModelRegistry(Home.from_env(), _config(config_dir_).models.registry)


def _print_models(models: list[dict]) -> None:
    if not models:
        typer.echo("no registered models")
    for model in models:
        typer.echo(model["name"])
        for v in model["versions"]:
            gate = v["tags"].get("liftgate.gate.passed", "?")
            typer.echo(
                f"  v{v['version']:<4} {v['created']}  gate {gate:<5}  "
                f"{', '.join(v['aliases']) or '-'}"
            )


@registry_app.command("list")
def registry_list(config_dir_: ConfigDirOption = None, as_json: JsonOption = False) -> None:
    """Registered models with their versions, aliases and tags."""
    with failures():
        models = _registry(config_dir_).list()
    emit(models, as_json, lambda: _print_models(models))


def _print_records(records: list[dict]) -> None:
    for r in records:
        if r is not None:
            typer.echo(
                f"{r['model']}: {r['action']} {r.get('alias', '')} "
                f"{r.get('from_version')} -> {r.get('to_version', r.get('version'))} ({r['who']})"
            )


@registry_app.command("promote")
def registry_promote(
    name: str,
    version: str,
    alias: Annotated[str, typer.Option("--alias", help="champion | challenger")],
    who: Annotated[str | None, typer.Option("--by", help="Who asks (default: $USER).")] = None,
    why: Annotated[str, typer.Option("--why")] = "manual promotion",
    config_dir_: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Move an alias to a version (refused for champion without approval when required)."""
    with failures():
        records = _registry(config_dir_).promote(name, version, alias, who=who, why=why)
    emit(records, as_json, lambda: _print_records(records))


@registry_app.command("approve")
def registry_approve(
    name: str,
    version: str,
    who: Annotated[str, typer.Option("--by", help="Who approves.")],
    config_dir_: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record an approval, required before promotion to champion when models.yaml says so."""
    with failures():
        record = _registry(config_dir_).approve(name, version, who)
    emit(record, as_json, lambda: typer.echo(f"{name} v{version} approved by {who}"))


@registry_app.command("rollback")
def registry_rollback(
    name: str,
    who: Annotated[str | None, typer.Option("--by")] = None,
    why: Annotated[str, typer.Option("--why")] = "manual rollback",
    config_dir_: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Champion back to the previous champion."""
    with failures():
        records = _registry(config_dir_).rollback(name, who=who, why=why)
    emit(records, as_json, lambda: _print_records(records))


# --- demo ------------------------------------------------------------------------------------


@app.command("demo")
def demo(
    rows: Annotated[int, typer.Option("--rows", min=1_000)] = 60_000,
    customers: Annotated[int, typer.Option("--customers", min=10)] = 3_000,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    port: Annotated[int | None, typer.Option("--port", min=1, max=65535)] = None,
    scenario: Annotated[
        str | None,
        typer.Option(
            "--scenario",
            help="bad-challenger | good-challenger | drift: a canary rollout watched by the guard.",
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """World → train → register → serve → simulated traffic and outcomes → summary → stop.
    With --scenario, a challenger's canary rollout and what the guard does about it."""
    with failures():
        if scenario is not None:
            from liftgate.app.scenarios import run_scenario

            summary = run_scenario(scenario, Home.from_env(), seed=seed, port=port, progress=say)
            emit(summary, as_json, lambda: typer.echo(summary["report"]))
            return
        from liftgate.app.demo import run_demo

        summary = run_demo(
            Home.from_env(),
            rows=rows,
            customers_served=customers,
            seed=seed,
            port=port,
            progress=say,
        )
    emit(summary, as_json, lambda: typer.echo(summary["report"]))


# --- serving ---------------------------------------------------------------------------------


@app.command("serve")
def serve_command(
    host: Annotated[str | None, typer.Option("--host")] = None,
    port: Annotated[int | None, typer.Option("--port", min=1, max=65535)] = None,
    topology: Annotated[str | None, typer.Option("--topology", help="fused | composed")] = None,
    detach: Annotated[
        bool, typer.Option("--detach", help="Run in the background; return when ready.")
    ] = False,
    config_dir_: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Serve the decision API with Ray Serve (default 127.0.0.1:8000, from serving.yaml)."""
    from liftgate.app import runner

    with failures():
        config = _config(config_dir_)
        host = host or config.serving.host
        port = port or config.serving.port
        topology = topology or config.serving.topology
        if topology not in ("fused", "composed"):
            raise ValueError(f"--topology: expected fused or composed; got {topology!r}")
        home = Home.from_env()
        if detach:
            try:
                info = runner.serve_detached(home, host, port, topology, config.directory)
            except RuntimeError as exc:
                say(str(exc))
                raise typer.Exit(1) from None
            emit(
                info,
                as_json,
                lambda: typer.echo(
                    f"liftgate serving on {info['url']} ({topology}), pid {info['pid']}; "
                    f"log {info['log']}; stop with `liftgate stop`"
                ),
            )
            return
        runner.serve_foreground(config, home, host, port, topology)


@app.command("stop")
def stop_command(as_json: JsonOption = False) -> None:
    """Stop the service that `liftgate serve` started under this LIFTGATE_HOME."""
    from liftgate.app import runner

    info = runner.stop_service(Home.from_env())
    emit(
        {"stopped": info},
        as_json,
        lambda: typer.echo(
            f"stopped {info['url']} (pid {info['pid']})"
            if info
            else "no service running under this LIFTGATE_HOME"
        ),
    )


@app.command("replay")
def replay_command(
    decision_id: str, config_dir_: ConfigDirOption = None, as_json: JsonOption = False
) -> None:
    """Recompute a logged decision from its feature snapshot and model version (exit 1 if the
    scores differ by more than 1e-9)."""
    from serving.replay import replay

    with failures():
        result = replay(decision_id, _config(config_dir_), Home.from_env())

    def render() -> None:
        if result["fallback"]:
            typer.echo(f"{decision_id}: a fallback decision ({result['chosen']}); no model scores")
            return
        typer.echo(
            f"{decision_id}: {result['model']['name']} v{result['model']['version']}, "
            f"max |difference| {result['max_abs_diff']:.3g} -> "
            f"{'match' if result['match'] else 'MISMATCH'}; chosen {result['chosen']} "
            f"(replayed {result['chosen_replayed']})"
        )

    emit(result, as_json, render)
    if not result["match"]:
        raise typer.Exit(1)


# --- experiments -----------------------------------------------------------------------------


@experiment_app.command("list")
def experiment_list(config_dir_: ConfigDirOption = None, as_json: JsonOption = False) -> None:
    """Experiments defined in configs/experiments/ and their state."""
    from experiments.state import read_state

    with failures():
        config = _config(config_dir_)
        state = read_state(Home.from_env().root)
    rows = [
        {
            "name": name,
            "status": state.get(name, {}).get("status", "not started"),
            "started_at": state.get(name, {}).get("started_at"),
            "arms": {arm.name: arm.weight for arm in experiment.arms},
            "layer": experiment.layer_name,
            "layer_range": list(experiment.layer_range),
        }
        for name, experiment in sorted(config.experiments.items())
    ]

    def render() -> None:
        if not rows:
            typer.echo("no experiments defined")
        for r in rows:
            typer.echo(
                f"{r['name']:<28} {r['status']:<12} arms {r['arms']}  "
                f"layer {r['layer']} {r['layer_range']}"
            )

    emit(rows, as_json, render)


@experiment_app.command("start")
def experiment_start(
    name: str,
    who: Annotated[str | None, typer.Option("--by")] = None,
    config_dir_: ConfigDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start (or restart with new weights) an experiment; running services pick it up."""
    from experiments import state

    with failures():
        home = Home.from_env().ensure()
        experiment = find_experiment(_config(config_dir_), name)
        try:
            entry = state.start(home.root, experiment)
        except state.ExperimentStateError as exc:
            say(str(exc))
            raise typer.Exit(1) from None
    from liftgate.core import audit

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


@experiment_app.command("stop")
def experiment_stop(
    name: str,
    who: Annotated[str | None, typer.Option("--by")] = None,
    as_json: JsonOption = False,
) -> None:
    """Stop an experiment; its units go back to the default policy."""
    from experiments import state
    from liftgate.core import audit

    home = Home.from_env().ensure()
    try:
        entry = state.stop(home.root, name)
    except state.ExperimentStateError as exc:
        say(str(exc))
        raise typer.Exit(2) from None
    audit.append(home.audit_log, "experiment_stopped", who=who, experiment=name)
    emit({"experiment": name, **entry}, as_json, lambda: typer.echo(f"{name} stopped"))


@experiment_app.command("status")
def experiment_status(
    name: str, config_dir_: ConfigDirOption = None, as_json: JsonOption = False
) -> None:
    """Exposure per arm from the decision log, and a live sample-ratio-mismatch check."""
    from experiments.exposure import exposure
    from experiments.logs import decision_log_dir, read_decisions
    from experiments.state import read_state

    with failures():
        home = Home.from_env()
        experiment = find_experiment(_config(config_dir_), name)
        result = exposure(read_decisions(decision_log_dir(home.root)), experiment)
        result["status"] = read_state(home.root).get(name, {}).get("status", "not started")

    def render() -> None:
        srm = result["srm"]
        if srm and srm["flag"]:
            typer.echo(
                f"SAMPLE RATIO MISMATCH: p = {srm['p_value']:.2g} < 0.001 — do not trust "
                "this experiment's results until the cause is found"
            )
        typer.echo(f"{name}: {result['status']}")
        for arm in result["arms"]:
            typer.echo(
                f"  {arm['arm']:<16} weight {arm['weight']:<5} units {arm['units']:>8,} "
                f"decisions {arm['decisions']:>8,}"
            )
        if srm:
            typer.echo(
                f"  SRM chi-square p = {srm['p_value']:.3g} ({'FLAG' if srm['flag'] else 'ok'})"
            )

    emit(result, as_json, render)
    if result["srm"] and result["srm"]["flag"]:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
