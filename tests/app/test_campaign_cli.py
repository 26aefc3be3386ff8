"""`liftgate campaign run FILE [--dry-run] [--json]`: bad input named, and a run end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from configs.loader import load_config
from liftgate.app.cli.main import app
from liftgate.core.home import HOME_ENV, Home
from liftgate.sim.world import World, stock_home
from registry.client import ModelRegistry
from registry.pipeline import train_and_register

runner = CliRunner()
WINBACK = load_config().directory / "campaigns" / "winback.yaml"


def invoke(home: Home, *args: str):
    return runner.invoke(app, ["campaign", "run", *args], env={HOME_ENV: str(home.root)})


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (None, "file not found"),
        ("name: x\ncandidates: [email_10, fax]\n", "candidates: expected action ids"),
        ("name: x\ncandidates: [email_10]\nsegment: {where: {tier: gold}}\n", "segment.where.tier"),
    ],
)
def test_bad_input_exits_2_naming_the_file_and_key(
    home: Home, tmp_path: Path, text: str | None, named: str
) -> None:
    path = tmp_path / "campaign.yaml"
    if text is not None:
        path.write_text(text)
        home.customers.parent.mkdir(parents=True, exist_ok=True)
        World(seed=1, n_customers=200).customers.to_parquet(home.customers, index=False)
    result = invoke(home, str(path), "--json")
    assert result.exit_code == 2, result.output
    error = json.loads(result.stdout)
    assert error["exit_code"] == 2 and str(path) in error["error"] and named in error["error"]
    assert "Traceback" not in result.output


def test_a_home_without_customers_is_named(home: Home) -> None:
    result = invoke(home, str(WINBACK))
    assert result.exit_code == 2
    assert "customers table" in result.stderr and str(home.customers) in result.stderr


@pytest.mark.slow
def test_a_dry_run_then_a_run_then_a_repeat(tmp_path: Path) -> None:
    config = load_config()
    home = Home(tmp_path / "home").ensure()
    world_dir = home.worlds / "w"
    World(seed=5, n_customers=4_000).write(world_dir, rows=30_000)
    train_and_register(world_dir, config, ModelRegistry(home, config.models.registry))
    stock_home(home, world_dir)
    campaign = tmp_path / "small.yaml"
    campaign.write_text(
        WINBACK.read_text()
        .replace("limit: 2000", "limit: 40")
        .replace("rate_per_s: 50", "rate_per_s: 400")
    )

    dry = invoke(home, str(campaign), "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    preview = json.loads(dry.stdout)
    assert preview["dry_run"] and preview["queued"] == 0
    assert preview["decided"] + preview["not_eligible"] == preview["customers_in_segment"] == 40

    text = invoke(home, str(campaign))  # the text rendering, with a progress bar on stderr
    assert text.exit_code == 0, text.output
    assert "40 customers in the segment" in text.stdout and "queued" in text.stdout

    repeat = json.loads(invoke(home, str(campaign), "--json").stdout)
    assert repeat["skipped_already_done"] == 40 and repeat["queued"] == 0
