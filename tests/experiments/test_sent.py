"""What was sent (experiments/sent.py) against an oracle, its counts' additivity, and the
"What was sent" section of the experiment report (data, HTML, `liftgate experiment report`)."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_analyze_cli import invoke, write_logs  # tests/experiments/, beside this file
from typer.testing import Result

from configs.schema import ExperimentConfig
from experiments import sent
from experiments.logs.reader import read_decisions
from experiments.logs.schema import ACTION_SCHEMA, ActionRecord, to_table
from experiments.logs.writer import LogWriter
from experiments.report.data import experiment_report
from experiments.report.render import render_html
from experiments.sent import action_fates, decision_fates, fate_counts, sent_by_arm
from liftgate.core.home import HOME_ENV, Home
from liftgate.governance import action_store, outbox
from liftgate.governance.checks import CHECKS

NOON = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)
ARMS = ("control", "treatment", "holdout")
KINDS = (sent.DELIVERED, sent.PENDING, sent.FAILED, sent.REFUSED, sent.DRY_RUN)


def step(action_id: str, decision_id: str, status: str, **fields: Any) -> ActionRecord:
    row = dict(
        ts=NOON, action="email_10", channel="email", campaign_id="spring", detail="",
        dry_run=False, attempt=0, idempotency_key=action_id,
    )  # fmt: skip
    return ActionRecord(
        **{**row, **fields}, action_id=action_id, decision_id=decision_id, status=status
    )


# An action as generated: its decision (an index; past the decisions: one we do not know),
# the fate it is made to have, the check of a refusal, retried attempts, whether its
# commit row made it to the log (a commit answered 503 stands without one), and a twist:
# a crash made the worker deliver it twice, or a check refused the dry run.
ACTION = st.tuples(
    st.integers(0, 14),
    st.sampled_from(KINDS),
    st.sampled_from(CHECKS),
    st.integers(0, 3),
    st.booleans(),
    st.booleans(),
)


def steps(action_id: str, decision_id: str, spec: tuple) -> list[ActionRecord]:
    """The action log's rows of one generated action."""
    _, kind, check, retries, commit_logged, twist = spec
    if kind == sent.DRY_RUN:  # a dry run is committed, refused or not, and never delivered
        status, refusal = (sent.REFUSED, check) if twist else (sent.DRY_RUN, None)
        return [step(action_id, decision_id, status, check=refusal, dry_run=True)]
    if kind == sent.REFUSED:
        return [step(action_id, decision_id, sent.REFUSED, check=check)]
    commit = [step(action_id, decision_id, sent.QUEUED)] if commit_logged or not retries else []
    attempts = [sent.ATTEMPT_FAILED] * retries
    attempts += {
        sent.DELIVERED: [sent.DELIVERED] * (2 if twist else 1),
        sent.FAILED: [sent.FAILED],
        sent.PENDING: [],
    }[kind]
    return commit + [
        step(action_id, decision_id, status, attempt=i + 1) for i, status in enumerate(attempts)
    ]


def oracle(arms: list[str], specs: list[tuple]) -> dict[str, dict[str, Any]]:
    """sent_by_arm's answer, from the fates the actions were made to have."""
    expected = {}
    for arm in sorted(set(arms)):
        mine = [spec for spec in specs if spec[0] < len(arms) and arms[spec[0]] == arm]
        kinds = Counter(spec[1] for spec in mine)
        committed = kinds[sent.DELIVERED] + kinds[sent.PENDING] + kinds[sent.FAILED]
        delivered_to = {spec[0] for spec in mine if spec[1] == sent.DELIVERED}
        checks = Counter(spec[2] for spec in mine if spec[1] == sent.REFUSED)
        expected[arm] = {
            "decisions": arms.count(arm),
            "decisions_delivered": len(delivered_to),
            "actions": len(mine),
            "committed": committed,
            "delivered": kinds[sent.DELIVERED],
            "pending": kinds[sent.PENDING],
            "failed": kinds[sent.FAILED],
            "refused": kinds[sent.REFUSED],
            "refused_by_check": dict(sorted(checks.items())),
            "dry_runs": kinds[sent.DRY_RUN],
        }
    return expected


def tables(arms: list[str], specs: list[tuple], order: list[int]) -> tuple[pa.Table, pa.Table]:
    decisions = pa.table({"decision_id": [f"d{i}" for i in range(len(arms))], "arm": arms})
    rows = [row for i, spec in enumerate(specs) for row in steps(f"a{i}", f"d{spec[0]}", spec)]
    shuffled = [rows[i] for i in sorted(range(len(rows)), key=lambda i: order[i % len(order)])]
    return decisions, to_table(ActionRecord, shuffled)


@settings(max_examples=150, deadline=None)
@given(
    arms=st.lists(st.sampled_from(ARMS), min_size=1, max_size=12),
    specs=st.lists(ACTION, max_size=30),
    order=st.lists(st.integers(), min_size=1, max_size=60),
)
def test_counts_are_the_fates_the_actions_were_given(arms, specs, order) -> None:
    decisions, actions = tables(arms, specs, order)
    assert sent_by_arm(decisions, actions) == oracle(arms, specs)


@settings(max_examples=100, deadline=None)
@given(
    arms=st.lists(st.sampled_from(ARMS), min_size=1, max_size=12),
    specs=st.lists(ACTION, max_size=30),
    mask=st.lists(st.booleans(), min_size=12, max_size=12),
)
def test_counts_of_disjoint_decisions_add_up(arms, specs, mask) -> None:
    """Sufficient counts: split the decisions in two, their actions follow them, the
    counts of the parts add up to the counts of the whole."""
    decisions, actions = tables(arms, specs, [0])
    part = pa.array(mask[: len(arms)])
    ids = decisions["decision_id"]
    parts = []
    for side in (part, pa.compute.invert(part)):
        mine = decisions.filter(side)
        theirs = pa.compute.is_in(actions["decision_id"], value_set=mine["decision_id"])
        parts.append(sent_by_arm(mine, actions.filter(theirs)))
    assert add(*parts) == sent_by_arm(decisions, actions)
    fates = decision_fates(ids, actions)
    assert sum(fate_counts(fates).values()) == len(arms)


def add(a: Mapping[str, dict], b: Mapping[str, dict]) -> dict[str, dict]:
    total: dict[str, dict] = {}
    for arm in sorted({*a, *b}):
        left, right = a.get(arm), b.get(arm)
        if left is None or right is None:
            total[arm] = left or right
            continue
        total[arm] = {key: left[key] + right[key] for key in left if key != "refused_by_check"}
        checks = Counter(left["refused_by_check"]) + Counter(right["refused_by_check"])
        total[arm]["refused_by_check"] = dict(sorted(checks.items()))
    return {arm: dict(sorted(counts.items())) for arm, counts in total.items()}


def test_a_decision_gets_the_furthest_fate_of_its_actions() -> None:
    actions = to_table(
        ActionRecord,
        [
            step("a1", "d1", sent.REFUSED, check="caps"),  # then retried under a new key
            step("a2", "d1", sent.QUEUED),
            step("a2", "d1", sent.FAILED, attempt=1),
            step("a3", "d1", sent.QUEUED),  # another channel, still on its way
            step("a4", "d2", sent.DRY_RUN, dry_run=True),
            step("a5", "d2", sent.REFUSED, check="consent"),
        ],
    )
    fates = decision_fates(pa.array(["d1", "d2", "d3"]), actions).to_pylist()
    assert fates == [sent.PENDING, sent.REFUSED, sent.NO_ACTION]
    assert fate_counts(pa.array(fates)) == {
        "delivered": 0, "pending": 1, "failed": 0, "refused": 1, "dry_run": 0, "no_action": 1,
    }  # fmt: skip


def test_an_empty_action_log_leaves_every_decision_without_action() -> None:
    decisions = pa.table({"decision_id": ["d1", "d2"], "arm": ["a", "a"]})
    counts = sent_by_arm(decisions, ACTION_SCHEMA.empty_table())
    assert counts["a"]["decisions"] == 2 and counts["a"]["actions"] == 0
    assert action_fates(ACTION_SCHEMA.empty_table()).num_rows == 0


def test_an_unknown_status_is_named() -> None:
    actions = to_table(ActionRecord, [step("a1", "d1", "bounced")])
    with pytest.raises(ValueError, match="unknown status \\['bounced'\\]"):
        action_fates(actions)


def test_every_status_the_action_store_and_outbox_write_has_a_fate() -> None:
    assert set(sent.FATE_OF_STATUS) == {*action_store.STATUSES, action_store.ATTEMPT_FAILED}
    assert set(outbox.LOGGED_STATUS.values()) <= set(sent.FATE_OF_STATUS)


# --- the report ------------------------------------------------------------------------------

CONFIG = ExperimentConfig.model_validate(
    {
        "name": "demo",
        "arms": [{"name": "b", "weight": 0.5}, {"name": "a", "weight": 0.5}],
        "control": "a",
        "primary_metric": {"name": "conversion", "kind": "binomial", "column": "converted"},
        "method": "frequentist",
    }
)


def unit_table(n: int = 2_000) -> pa.Table:
    rng = np.random.default_rng(0)
    return pa.table(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "arm": rng.choice(["a", "b"], n),
            "first_exposure": [NOON + dt.timedelta(minutes=i) for i in range(n)],
            "decisions": np.ones(n, dtype=int),
            "converted": (rng.random(n) < 0.1).astype(int),
        }
    )


def test_report_keeps_what_was_sent_in_the_arms_order() -> None:
    decisions = pa.table({"decision_id": ["d1", "d2", "d3"], "arm": ["holdout", "a", "b"]})
    actions = to_table(
        ActionRecord,
        [
            step("x1", "d2", sent.QUEUED),
            step("x1", "d2", sent.DELIVERED, attempt=1),
            step("x2", "d3", sent.REFUSED, check="consent<script>"),
        ],
    )
    report = experiment_report(CONFIG, unit_table(), now=NOON, sent=sent_by_arm(decisions, actions))
    assert list(report["sent"]) == ["b", "a", "holdout"]
    assert report["sent"]["a"]["delivered"] == report["sent"]["b"]["refused"] == 1
    page = render_html(json.loads(json.dumps(report)))  # the JSON renders the same
    assert "<h2>What was sent</h2>" in page and "consent&lt;script&gt;" in page
    assert "<script>" not in page


def test_report_says_when_nothing_was_sent_and_leaves_the_section_out_without_data() -> None:
    decisions = pa.table({"decision_id": ["d1"], "arm": ["a"]})
    nothing = sent_by_arm(decisions, ACTION_SCHEMA.empty_table())
    page = render_html(experiment_report(CONFIG, unit_table(), now=NOON, sent=nothing))
    assert "No action of this experiment's decisions is in the action log" in page
    plain = experiment_report(CONFIG, unit_table(), now=NOON)
    assert "sent" not in plain and "What was sent" not in render_html(plain)


# --- liftgate experiment report ------------------------------------------------------------


def report_of(home: Home, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    monkeypatch.setenv(HOME_ENV, str(home.root))
    result = invoke("experiment", "report", "scored-vs-rules", *args)
    assert result.exit_code == 0, result.output
    return result


def test_report_command_counts_the_action_log_per_arm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = Home(tmp_path / "home")
    write_logs(home, n_customers=600)
    decisions = read_decisions(home.decision_log).to_pylist()
    with LogWriter(home.action_log, ActionRecord) as log:
        for i, decision in enumerate(decisions[:300]):
            action_id, decision_id = f"a{i}", decision["decision_id"]
            ts = decision["ts"] + dt.timedelta(minutes=1)
            if i % 3 == 0:
                log.append(step(action_id, decision_id, sent.QUEUED, ts=ts))
                log.append(step(action_id, decision_id, sent.DELIVERED, ts=ts, attempt=1))
            elif i % 3 == 1:
                log.append(step(action_id, decision_id, sent.REFUSED, ts=ts, check="consent"))
        log.append(step("other", "not-ours", sent.QUEUED))
    arms = Counter(d["arm"] for d in decisions)
    delivered = Counter(d["arm"] for i, d in enumerate(decisions[:300]) if i % 3 == 0)
    refused = Counter(d["arm"] for i, d in enumerate(decisions[:300]) if i % 3 == 1)

    report = json.loads(report_of(home, monkeypatch, "--json").stdout)
    assert list(report["sent"]) == ["rules", "scored", "holdout"]
    for arm, counts in report["sent"].items():
        assert counts["decisions"] == arms[arm]
        assert counts["delivered"] == counts["decisions_delivered"] == delivered[arm]
        assert counts["refused_by_check"] == ({"consent": refused[arm]} if refused[arm] else {})
    text = report_of(home, monkeypatch).stdout
    assert "sent (action log" in text and "consent" in text


def test_report_command_says_when_the_action_log_is_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = Home(tmp_path / "home")
    write_logs(home, n_customers=300)
    html = tmp_path / "report.html"
    text = report_of(home, monkeypatch, "--html", str(html)).stdout
    assert "sent: no action of this experiment's decisions is in the action log" in text
    assert "No action of this experiment's decisions is in the action log" in html.read_text()
