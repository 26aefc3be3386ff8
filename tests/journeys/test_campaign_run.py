"""A bulk campaign end to end on a small home (a world, a trained champion, the online and
consent stores): decisions logged as served ones, actions queued once across a dry run, an
interrupted run, its resumption and a repeat."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from configs.journey_schema import CampaignConfig
from configs.loader import LiftgateConfig, load_config
from experiments.logs.reader import read_decisions
from liftgate.core.home import Home
from liftgate.journeys.campaign import read_segment
from liftgate.journeys.campaign_run import run_campaign
from liftgate.sim.world import World, stock_home
from registry.client import ModelRegistry
from registry.pipeline import train_and_register
from serving.feature_stores import customers_path
from serving.replay import replay

pytestmark = pytest.mark.slow


def without_quiet_hours(config: LiftgateConfig) -> LiftgateConfig:
    """The configuration with no channel's quiet hours: no test depends on the time of day."""
    channels = {
        name: policy.model_copy(update={"quiet_hours": None})
        for name, policy in config.actions.channels.items()
    }
    return dataclasses.replace(
        config, actions=config.actions.model_copy(update={"channels": channels})
    )


CONFIG = without_quiet_hours(load_config())
CAMPAIGN = CampaignConfig.model_validate(
    {
        "name": "winback",
        "segment": {"where": {"segment": "dormant"}, "limit": 60},
        "candidates": ["email_10", "free_shipping", "no_action"],
        "rate_per_s": 500,
        "ttl": "2h",
    }
)
SOURCE = Path("winback.yaml")


class Interrupted(Exception):
    pass


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    home = Home(tmp_path_factory.mktemp("home")).ensure()
    world_dir = home.worlds / "w"
    World(seed=5, n_customers=4_000).write(world_dir, rows=30_000)  # passes the gate
    summary = train_and_register(world_dir, CONFIG, ModelRegistry(home, CONFIG.models.registry))
    assert summary["aliases"] == ["champion"]
    stock_home(home, world_dir)
    return home


def run(home: Home, **options) -> dict:
    return run_campaign(CONFIG, home, CAMPAIGN, source=SOURCE, **options)


def campaign_actions(home: Home) -> list[tuple]:
    with sqlite3.connect(home.actions) as db:
        return db.execute(
            "SELECT idempotency_key, decision_id, customer_id, status, dry_run FROM actions "
            "WHERE campaign_id = ?",
            (CAMPAIGN.name,),
        ).fetchall()


def test_a_campaign_decides_as_served_and_queues_each_customer_once(home: Home) -> None:
    segment = read_segment(customers_path(CONFIG, home), CAMPAIGN.segment, SOURCE)
    assert len(segment) == 60

    dry = run(home, dry_run=True)
    assert dry["dry_run"] and dry["queued"] == 0 and dry["decided"] > 0
    assert dry["decided"] + dry["not_eligible"] == 60
    assert dry["would_queue"] + dry["refused"] + dry["no_action"] == dry["decided"]
    assert all(row[4] == 1 for row in campaign_actions(home))  # dry runs only: none queued

    turns = 0

    def stop_after_45() -> None:  # past the first batch, in the middle of the second
        nonlocal turns
        turns += 1
        if turns == 45:
            raise Interrupted

    started = []
    with pytest.raises(Interrupted):
        run(home, on_customer=stop_after_45, on_start=lambda total, done: started.append(done))
    resumed = run(home, on_start=lambda total, done: started.append(done))
    assert started == [0, 32]  # the first batch was finished before the stop
    assert resumed["skipped_already_done"] == 32
    assert resumed["resumed"] > 0  # the second batch's decisions, committed again
    again = run(home)
    assert again["skipped_already_done"] == 60 and again["decided"] == again["queued"] == 0

    real = [row for row in campaign_actions(home) if row[4] == 0]
    keys = [row[0] for row in real]
    assert len(keys) == len(set(keys)) and {k.split(":")[2] for k in keys} <= set(segment)
    assert {row[2] for row in real} == {k.split(":")[2] for k in keys}  # one per customer
    queued = [row for row in real if row[3] == "queued"]
    assert queued  # the world's customers mostly consent to e-mail

    decisions = read_decisions(home.decision_log).to_pylist()
    ours = {d["decision_id"]: d for d in decisions if d["request_id"] == "campaign:winback"}
    real_decided = {row[1] for row in real}
    assert real_decided <= set(ours)  # every committed action was a logged decision
    decided_for = [ours[d]["customer_id"] for d in real_decided]
    assert len(decided_for) == len(set(decided_for))  # nobody decided for twice
    for decision_id in real_decided:
        decision = ours[decision_id]
        assert 0 < decision["propensity"] <= 1 and decision["chosen"] in CAMPAIGN.candidates
        assert decision["model_version"] == "1" and not decision["fallback"]
    replayed = replay(next(iter(real_decided)), CONFIG, home)
    assert replayed["match"] and replayed["chosen_replayed"] == replayed["chosen"]


def test_actions_expire_with_the_campaigns_ttl(home: Home) -> None:
    with sqlite3.connect(home.actions) as db:
        rows = db.execute(
            "SELECT created_at, expires_at FROM actions WHERE campaign_id = ? AND status = ?",
            (CAMPAIGN.name, "queued"),
        ).fetchall()
    assert rows
    ttl_us = dt.timedelta(hours=2) / dt.timedelta(microseconds=1)
    # Expiry counts from the decision, made a moment before the commit.
    assert all(0 < expires - created <= ttl_us for created, expires in rows)
