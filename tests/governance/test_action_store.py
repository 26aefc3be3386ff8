"""The action store (liftgate/governance/action_store.py): idempotency, caps counted in the
commit's transaction, the transactional outbox and its leases, history, erasure; and the
same across processes racing on one file."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from configs.schema import FrequencyCap
from liftgate.governance.action_request import ActionRequestData
from liftgate.governance.action_store import ActionStore, Commit
from liftgate.governance.checks import CHECKS, Refusal

NOON = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)
EXPIRES = NOON + dt.timedelta(days=1)
REQUEST = ActionRequestData(
    decision_id="d1",
    action="email_10",
    channel="email",
    campaign_id="spring",
    idempotency_key="k1",
    ttl_seconds=86_400,
)
DAILY = FrequencyCap(max=2, window_hours=24)


@pytest.fixture
def store(home):
    store = ActionStore(home.actions)
    yield store
    store.close()


def commit(store: ActionStore, key: str = "k1", *, now=NOON, **options: Any) -> Commit:
    """Commit REQUEST under `key`, for customer c1, with what `options` change."""
    request = replace(REQUEST, idempotency_key=key, **options.pop("request", {}))
    given = {"customer_id": "c1", "expires_at": EXPIRES, "refusal": None, "caps": ()}
    return store.commit(request, now=now, **(given | options))


def rows(store_path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(store_path) as db:
        return db.execute(sql).fetchall()


def test_a_commit_queues_the_action_with_its_outbox_entry(store, home) -> None:
    answer = commit(store)
    assert (answer.status, answer.replayed, answer.checks_passed) == ("queued", False, CHECKS)
    assert rows(home.actions, "SELECT action_id, attempts FROM outbox") == [(answer.action_id, 0)]
    assert store.counts_by_status()["queued"] == 1


def test_the_same_key_and_request_replays_the_first_answer(store, home) -> None:
    first = commit(store)
    again = commit(store, now=NOON + dt.timedelta(hours=1))
    assert again == first and again.replayed
    assert rows(home.actions, "SELECT COUNT(*) FROM actions") == [(1,)]
    assert rows(home.actions, "SELECT COUNT(*) FROM outbox") == [(1,)]


def test_the_same_key_with_another_request_is_refused(store) -> None:
    first = commit(store)
    other = commit(store, request={"campaign_id": "autumn"})
    assert (other.status, other.check) == ("refused", "idempotency")
    assert other.action_id == first.action_id  # the action the key was used for
    assert store.get(first.action_id)["campaign_id"] == "spring"


def test_refusals_are_stored_under_their_key(store, home) -> None:
    refusal = Refusal("consent", "no consent")
    first = commit(store, refusal=refusal)
    assert (first.status, first.check, first.checks_passed) == ("refused", "consent", CHECKS[:3])
    assert commit(store, refusal=None) == first  # a retry gets the same answer
    assert rows(home.actions, "SELECT COUNT(*) FROM outbox") == [(0,)]


def test_caps_count_queued_and_delivered_within_the_window(store) -> None:
    caps = (DAILY,)
    commit(store, "a", caps=caps, now=NOON - dt.timedelta(hours=25))  # outside the window
    second = commit(store, "b", caps=caps, now=NOON - dt.timedelta(hours=2))
    store.record_attempt(second.action_id, ok=True, detail="ok", now=NOON, retry_at=None)
    commit(store, "dry", caps=caps, request={"dry_run": True})  # a dry run does not count
    commit(store, "refused", caps=caps, refusal=Refusal("creative", "pending"))  # nor this
    third = commit(store, "c", caps=caps)
    fourth = commit(store, "d", caps=caps)
    assert (third.status, fourth.status, fourth.check) == ("queued", "refused", "caps")
    assert "within 24 h" in fourth.detail and "cap is 2" in fourth.detail
    other_channel = commit(store, "e", caps=caps, request={"channel": "push"})
    other_customer = commit(store, "f", caps=caps, customer_id="c2")
    assert other_channel.status == other_customer.status == "queued"


def test_every_cap_applies(store) -> None:
    caps = (FrequencyCap(max=5, window_hours=24), FrequencyCap(max=1, window_hours=1))
    assert commit(store, "a", caps=caps).status == "queued"
    assert commit(store, "b", caps=caps, now=NOON + dt.timedelta(minutes=30)).check == "caps"
    assert commit(store, "c", caps=caps, now=NOON + dt.timedelta(minutes=61)).status == "queued"


def test_a_dry_run_passes_every_check_and_queues_nothing(store, home) -> None:
    answer = commit(store, request={"dry_run": True})
    assert (answer.status, answer.dry_run) == ("dry_run", True)
    assert rows(home.actions, "SELECT COUNT(*) FROM outbox") == [(0,)]
    refused = commit(store, "k2", request={"dry_run": True}, refusal=Refusal("ttl", "expired"))
    assert (refused.status, refused.dry_run, refused.check) == ("refused", True, "ttl")


def test_send_at_makes_the_entry_due_then(store) -> None:
    later = NOON + dt.timedelta(hours=3)
    answer = commit(store, request={"send_at": later})
    assert store.claim_due(NOON + dt.timedelta(hours=2), limit=5, lease_s=30) == []
    (due,) = store.claim_due(later, limit=5, lease_s=30)
    assert (due.action_id, due.send_at, due.expires_at) == (answer.action_id, later, EXPIRES)


def test_a_lease_hides_an_entry_until_it_runs_out(store) -> None:
    answer = commit(store)
    assert [d.action_id for d in store.claim_due(NOON, limit=5, lease_s=30)] == [answer.action_id]
    assert store.claim_due(NOON + dt.timedelta(seconds=29), limit=5, lease_s=30) == []
    (again,) = store.claim_due(NOON + dt.timedelta(seconds=31), limit=5, lease_s=30)
    assert again.attempts == 0  # a lease that ran out is not an attempt


def test_claims_are_oldest_first_and_limited(store) -> None:
    answers = [commit(store, f"k{i}", now=NOON + dt.timedelta(seconds=i)) for i in range(5)]
    claimed = store.claim_due(NOON + dt.timedelta(minutes=1), limit=3, lease_s=30)
    assert [d.action_id for d in claimed] == [a.action_id for a in answers[:3]]


def test_attempts_retry_then_deliver_with_their_history(store, home) -> None:
    answer = commit(store)
    retry_at = NOON + dt.timedelta(seconds=5)
    store.claim_due(NOON, limit=5, lease_s=30)
    status = store.record_attempt(
        answer.action_id, ok=False, detail="503", now=NOON, retry_at=retry_at
    )
    assert status == "queued"
    assert store.claim_due(NOON + dt.timedelta(seconds=4), limit=5, lease_s=30) == []
    (due,) = store.claim_due(retry_at, limit=5, lease_s=30)  # the lease was cleared
    assert due.attempts == 1
    assert (
        store.record_attempt(answer.action_id, ok=True, detail="200", now=retry_at, retry_at=None)
        == "delivered"
    )
    # Recorded already (a second worker whose lease ran out): nothing changes.
    assert (
        store.record_attempt(answer.action_id, ok=False, detail="x", now=retry_at, retry_at=None)
        is None
    )
    got = store.get(answer.action_id)
    assert got["status"] == "delivered"
    assert [(e["status"], e["detail"]) for e in got["history"]] == [
        ("queued", "every check passed: queued for delivery"),
        ("attempt_failed", "attempt 1: 503"),
        ("delivered", "attempt 2: 200"),
    ]
    assert rows(home.actions, "SELECT COUNT(*) FROM outbox") == [(0,)]


def test_a_final_failure_fails_the_action_and_frees_its_cap(store) -> None:
    caps = (FrequencyCap(max=1, window_hours=24),)
    answer = commit(store, caps=caps)
    store.record_attempt(answer.action_id, ok=False, detail="410", now=NOON, retry_at=None)
    assert store.get(answer.action_id)["status"] == "failed"
    assert store.claim_due(NOON + dt.timedelta(days=1), limit=5, lease_s=30) == []
    assert commit(store, "k2", caps=caps).status == "queued"  # nothing was sent


def test_get_shows_the_request_and_not_the_customer(store) -> None:
    # An id no random hex action id can contain ("c1" was found inside one: a flake).
    answer = commit(store, request={"creative_id": "cr1"}, customer_id="customer-xyz")
    got = store.get(answer.action_id)
    assert "customer_id" not in got and "customer-xyz" not in str(got)
    assert (got["decision_id"], got["creative_id"], got["expires_at"]) == (
        "d1",
        "cr1",
        EXPIRES.isoformat(),
    )
    assert store.get("nope") is None


def test_erase_removes_a_customers_actions_history_and_deliveries(store, home) -> None:
    mine = [commit(store, f"k{i}") for i in range(3)]
    theirs = commit(store, "other", customer_id="c2")
    assert store.erase("c1") == 3
    assert all(store.get(a.action_id) is None for a in mine)
    assert store.get(theirs.action_id) is not None
    assert rows(home.actions, "SELECT COUNT(*) FROM action_events") == [(1,)]
    assert rows(home.actions, "SELECT action_id FROM outbox") == [(theirs.action_id,)]


# --- across processes ----------------------------------------------------------------------


def _race(path: str, keys: list[str], caps: tuple, start, answers) -> None:
    store = ActionStore(Path(path))
    start.wait()
    for key in keys:
        answers.put(commit(store, key, caps=caps))
    store.close()


def run_processes(path: Path, keys_per_process: list[list[str]], caps: tuple = ()) -> list:
    context = multiprocessing.get_context("fork")
    start = context.Barrier(len(keys_per_process))
    answers = context.Queue()
    processes = [
        context.Process(target=_race, args=(str(path), keys, caps, start, answers))
        for keys in keys_per_process
    ]
    for process in processes:
        process.start()
    results = [answers.get(timeout=60) for _ in range(sum(map(len, keys_per_process)))]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    return results


def test_processes_racing_one_key_get_one_action_and_the_same_answer(home) -> None:
    ActionStore(home.actions).close()  # the schema, before the race
    answers = run_processes(home.actions, [["same"]] * 8)
    assert len({a.action_id for a in answers}) == 1
    assert sorted(a.replayed for a in answers) == [False] + [True] * 7
    assert {(a.status, a.checks_passed) for a in answers} == {("queued", CHECKS)}
    assert rows(home.actions, "SELECT COUNT(*) FROM actions") == [(1,)]
    assert rows(home.actions, "SELECT COUNT(*) FROM outbox") == [(1,)]


def test_caps_are_counted_atomically_across_processes(home) -> None:
    processes, commits, cap = 4, 5, 3
    keys = [[f"p{p}-k{k}" for k in range(commits)] for p in range(processes)]
    answers = run_processes(home.actions, keys, (FrequencyCap(max=cap, window_hours=24),))
    statuses = [a.status for a in answers]
    assert statuses.count("queued") == cap
    assert statuses.count("refused") == processes * commits - cap
    assert rows(home.actions, "SELECT COUNT(*) FROM outbox") == [(cap,)]
