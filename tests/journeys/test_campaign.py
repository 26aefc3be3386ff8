"""Bulk campaigns without services: the file, the segment, pacing, progress, and the run's
bookkeeping over fake decision and action services (resume, dry run, pacing)."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from configs.journey_schema import CampaignConfig, Comparison, Segment
from configs.loader import ConfigError, load_config
from liftgate.core.errors import InputError
from liftgate.core.home import Home
from liftgate.governance.action_store import Commit
from liftgate.journeys.campaign import (
    CampaignProgress,
    Decided,
    Finished,
    Pacer,
    load_campaign,
    read_segment,
    segment_of,
)
from liftgate.journeys.campaign_run import CampaignRunner
from serving.service import InvalidRequest

CONFIG = load_config()
TABLE = pa.table(
    {
        "customer_id": ["c5", "c2", "c4", "c1", "c3"],
        "segment": ["dormant", "dormant", "loyal", "dormant", None],
        "orders_12m": [0, 3, 7, 1, 2],
    }
)


# --- the file --------------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_the_example_campaign_loads() -> None:
    campaign = load_campaign(CONFIG.directory / "campaigns" / "winback.yaml", CONFIG)
    assert campaign.name == "winback" and "no_action" in campaign.candidates


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("name: x\ncandidates: [email_10, fax]\n", "candidates: expected action ids"),
        ("name: x\ncandidates: [email_10]\nttl: 30d\n", "ttl: expected at most"),
        ("name: x\ncandidates: [email_10]\nrate: 3\n", "rate: unknown key"),
        ("name: x\ncandidates: []\n", "candidates:"),
        (f"name: {'x' * 41}\ncandidates: [email_10]\n", "name: expected at most 40"),
    ],
)
def test_a_bad_file_is_named_with_its_key(tmp_path: Path, text: str, named: str) -> None:
    path = write(tmp_path / "bad.yaml", text)
    with pytest.raises(ConfigError) as caught:
        load_campaign(path, CONFIG)
    assert any(p.startswith(f"{path}: {named}") for p in caught.value.problems), caught.value


# --- the segment -----------------------------------------------------------------------------


def test_the_segment_filters_sorts_and_limits() -> None:
    dormant = {"segment": "dormant"}
    assert segment_of(TABLE, Segment(where=dormant)) == ["c1", "c2", "c5"]
    assert segment_of(TABLE, Segment(where={**dormant, "orders_12m": Comparison(gte=1)})) == [
        "c1",
        "c2",
    ]
    assert segment_of(TABLE, Segment(where=dormant, limit=2)) == ["c1", "c2"]
    assert segment_of(TABLE, Segment()) == ["c1", "c2", "c3", "c4", "c5"]
    in_ = Comparison.model_validate({"in": ["loyal", "dormant"]})
    assert segment_of(TABLE, Segment(where={"segment": in_})) == ["c1", "c2", "c4", "c5"]


def test_reading_the_segment_names_the_file_and_key(tmp_path: Path) -> None:
    customers = tmp_path / "customers.parquet"
    source = tmp_path / "winback.yaml"
    with pytest.raises(InputError, match="does not exist"):
        read_segment(customers, Segment(), source)
    pq.write_table(TABLE, customers)
    assert read_segment(customers, Segment(where={"segment": "loyal"}), source) == ["c4"]
    with pytest.raises(InputError, match=rf"{source}: segment.where.tier: expected a column"):
        read_segment(customers, Segment(where={"tier": "gold"}), source)
    with pytest.raises(InputError, match=rf"{source}: segment.where: expected values"):
        read_segment(customers, Segment(where={"orders_12m": "many"}), source)


# --- pacing and progress ---------------------------------------------------------------------


def test_the_pacer_spaces_takes_at_its_rate_and_keeps_no_more_than_its_burst() -> None:
    pacer = Pacer(rate_per_s=4.0)
    assert [pacer.wait(now=10.0) for _ in range(4)] == pytest.approx([0.0, 0.25, 0.5, 0.75])
    assert pacer.wait(now=100.0) == 0.0  # a long pause saves no more than one token …
    assert pacer.wait(now=100.0) == pytest.approx(0.25)  # … so the next waits again
    burst = Pacer(rate_per_s=1.0, burst=3.0)
    assert [burst.wait(now=0.0) for _ in range(4)] == pytest.approx([0.0, 0.0, 0.0, 1.0])


def test_progress_survives_reopening(tmp_path: Path) -> None:
    home = Home(tmp_path)
    with CampaignProgress.open(home, "winback") as progress:
        progress.record_decided([Decided("c1", "d1", "email_10"), Decided("c2", "d2", "email_10")])
        progress.record_finished([Finished("c1", "queued")])
    with CampaignProgress.open(home, "winback") as progress:
        assert progress.done() == {"c1"}
        assert progress.pending() == {"c2": Decided("c2", "d2", "email_10")}
        progress.record_decided([Decided("c2", "other", "free_shipping")])  # the first stays
        assert progress.pending()["c2"].decision_id == "d2"
    with CampaignProgress.open(home, "another") as progress:
        assert progress.done() == set()


# --- the run, over fake services -------------------------------------------------------------


class FakeDecisions:
    """Chooses email_10 for even customer numbers, no_action for odd ones; no candidate is
    eligible for customer c0."""

    def __init__(self) -> None:
        self.decided: list[str] = []

    async def decide(self, request, trace_id: str) -> dict:
        if request.customer_id == "c0":
            raise InvalidRequest([{"loc": ["body", "candidates"], "msg": "none", "type": "x"}])
        self.decided.append(request.customer_id)
        number = int(request.customer_id[1:])
        chosen = "email_10" if number % 2 == 0 else "no_action"
        return {"decision_id": f"d{len(self.decided)}:{request.customer_id}", "chosen": chosen}


@dataclass
class FakeActions:
    """An action store's idempotency: a key's first request is answered, again on a retry;
    customers listed in `refuse` are refused by the consent check."""

    refuse: set[str] = field(default_factory=set)
    answers: dict[str, tuple[str, Commit]] = field(default_factory=dict)
    channel_of: dict[str, str] = field(
        default_factory=lambda: {a.id: a.channel for a in CONFIG.actions.actions}
    )

    async def commit(self, request, who: str) -> Commit:
        key = request.idempotency_key
        if key in self.answers:
            first, answer = self.answers[key]
            assert first == request.decision_id  # a resumed run commits its first decision
            return answer
        customer = key.rsplit(":", 1)[1]
        if customer in self.refuse:
            answer = Commit(key, "refused", key, request.dry_run, check="consent")
        else:
            answer = Commit(key, "dry_run" if request.dry_run else "queued", key, request.dry_run)
        self.answers[key] = (request.decision_id, answer)
        return answer

    def queued(self) -> list[str]:
        return [k for k, (_, a) in self.answers.items() if a.status == "queued"]


CAMPAIGN = CampaignConfig(
    name="winback",
    candidates=["email_10", "no_action"],
    rate_per_s=10.0,
    ttl=dt.timedelta(hours=1),
)
CUSTOMERS = [f"c{i}" for i in range(10)]


class Interrupted(Exception):
    pass


@dataclass
class FakeTime:
    now: float = 0.0
    slept: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def runner(home: Home, decisions, actions, time: FakeTime | None = None, **options):
    time = time or FakeTime()
    progress = CampaignProgress.open(home, CAMPAIGN.name)
    return CampaignRunner(
        CAMPAIGN,
        decisions,
        actions,
        progress,
        clock=time.clock,
        sleep=time.sleep,
        batch_size=4,
        **options,
    ), progress


def run(home: Home, decisions, actions, **options) -> dict:
    campaign, progress = runner(home, decisions, actions, **options)
    try:
        return asyncio.run(campaign.run(CUSTOMERS))
    finally:
        progress.close()


def test_a_run_counts_each_turn_and_a_second_run_skips_everyone(tmp_path: Path) -> None:
    home, decisions, actions = Home(tmp_path), FakeDecisions(), FakeActions(refuse={"c4"})
    summary = run(home, decisions, actions)
    assert summary | {"seconds": 0} == {
        "customers_in_segment": 10,
        "skipped_already_done": 0,
        "decided": 9,
        "resumed": 0,
        "queued": 3,  # c2, c6, c8
        "would_queue": 0,
        "refused": 1,
        "refused_by_check": {"consent": 1},
        "no_action": 5,
        "not_eligible": 1,
        "dry_run": False,
        "seconds": 0,
        "rate_per_s": 10.0,
    }
    again = run(home, decisions, actions)
    assert again["skipped_already_done"] == 10 and again["decided"] == 0
    assert len(decisions.decided) == 9 and len(actions.queued()) == 3


def test_a_stopped_run_resumes_without_deciding_or_queueing_twice(tmp_path: Path) -> None:
    home, decisions, actions = Home(tmp_path), FakeDecisions(), FakeActions()
    turns = 0

    def stop_after_six() -> None:
        nonlocal turns
        turns += 1
        if turns == 6:  # in the middle of the second batch: two of it decided, not finished
            raise Interrupted

    with pytest.raises(Interrupted):
        run(home, decisions, actions, on_customer=stop_after_six)
    summary = run(home, decisions, actions)
    assert summary["skipped_already_done"] == 4  # the first batch
    assert summary["resumed"] == 4  # the second batch's decisions, committed again
    assert summary["decided"] == 2  # the last batch: c8, c9
    assert sorted(decisions.decided) == sorted(set(decisions.decided))  # each decided once
    assert sorted(actions.queued()) == [f"campaign:winback:c{i}" for i in (2, 4, 6, 8)]
    with CampaignProgress.open(home, CAMPAIGN.name) as progress:
        assert progress.done() == set(CUSTOMERS) and progress.pending() == {}


def test_a_dry_run_queues_nothing_records_nothing_and_blocks_no_real_run(tmp_path: Path) -> None:
    home, decisions, actions = Home(tmp_path), FakeDecisions(), FakeActions(refuse={"c6"})
    time = FakeTime()
    summary = run(home, decisions, actions, dry_run=True, time=time)
    assert (summary["queued"], summary["would_queue"], summary["refused"]) == (0, 3, 1)
    assert summary["dry_run"] and time.slept == []  # nothing is sent: no pacing
    assert all(key.startswith("dry-run:") for key in actions.answers)
    assert run(home, decisions, actions)["queued"] == 3  # c2, c4, c8: the real run
    with CampaignProgress.open(home, CAMPAIGN.name) as progress:
        assert len(progress.done()) == 10


def test_commits_are_paced_at_the_campaigns_rate(tmp_path: Path) -> None:
    time = FakeTime()
    run(Home(tmp_path), FakeDecisions(), FakeActions(), time=time)
    # Four commits (c2, c4, c6, c8) at 10 a second with no time passing otherwise: the
    # first goes at once, each next 0.1 s after the one before.
    assert time.now == pytest.approx(0.3)
