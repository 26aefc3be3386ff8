"""`liftgate demo`: the platform's loop on the embedded defaults, printed as it goes."""

from __future__ import annotations

from collections.abc import Callable

from configs.loader import load_config
from liftgate.home import Home
from liftgate.world import World
from registry.client import ModelRegistry
from registry.pipeline import train_and_register


def _training_line(label: str, summary: dict) -> str:
    m, gate = summary["metrics"], summary["gate"]
    verdict = "passed" if gate["passed"] else "FAILED: " + "; ".join(gate["reasons"])
    return (
        f"  {label:<32} v{summary['version']:<3} auc {m['auc']:.4f} "
        f"(baseline {m['baseline_auc']:.4f}, ECE {m['calibration_error']:.4f})  "
        f"gate {verdict}  aliases {summary['aliases'] or '-'}"
    )


def run_demo(
    home: Home, rows: int = 100_000, seed: int = 0, progress: Callable[[str], None] = print
) -> dict:
    config = load_config()
    registry = ModelRegistry(home, config.models.registry)
    out = home.worlds / f"demo-seed{seed}"
    progress(f"[1/4] generating a world of {rows:,} logged decisions in {out}")
    world = World(seed, max(1_000, rows // 5), "stationary", config.actions)
    world_summary = world.write(out, rows)

    progress("[2/4] training and registering a model (becomes champion if none)")
    first = train_and_register(out, config, registry, seed=seed, progress=progress)
    progress("[3/4] training a second candidate (another seed; becomes challenger if it passes)")
    second = train_and_register(out, config, registry, seed=seed + 1, progress=progress)
    progress("[4/4] training a broken model on shuffled labels (the gate must reject it)")
    broken = train_and_register(
        out, config, registry, seed=seed, shuffle_labels=True, progress=progress
    )
    models = registry.list()

    lines = [
        "liftgate demo",
        f"world: {world_summary['logged_rows']:,} logged decisions, "
        f"{world_summary['customers']:,} customers, conversion "
        f"{world_summary['conversion_rate']:.1%} (seed {seed}, {out})",
        "training (validation = the most recent 20 % of decisions):",
        _training_line("first model", first),
        _training_line("second candidate", second),
        _training_line("broken model (shuffled labels)", broken),
        "registry:",
    ]
    for model in models:
        for v in model["versions"]:
            lines.append(
                f"  {model['name']} v{v['version']}: aliases {v['aliases'] or '-'}, "
                f"gate {v['tags'].get('liftgate.gate.passed')}"
            )
    lines.append(f"audit log: {home.audit_log}")
    lines.append(f"MLflow UI: mlflow ui --backend-store-uri {home.mlflow_uri}")
    return {
        "world": world_summary,
        "trainings": [first, second, broken],
        "registry": models,
        "report": "\n".join(lines),
    }
