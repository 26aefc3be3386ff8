"""Erasure of a customer (logs, stores, write-ahead segments, crashes) and log retention."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st
from log_records import NOON, make_decision
from typer.testing import CliRunner

from configs.loader import load_config
from experiments.logs.frames import encode
from experiments.logs.reader import read_actions, read_decisions, read_outcomes
from experiments.logs.schema import ActionRecord, DecisionRecord, OutcomeRecord
from experiments.logs.wal import Segment, wal_directory
from experiments.logs.writer import LogWriter
from liftgate.app import privacy
from liftgate.app.cli.main import app
from liftgate.app.privacy import apply_retention, erase_customer
from liftgate.core import audit
from liftgate.core.errors import InputError
from liftgate.core.home import HOME_ENV, Home
from liftgate.governance.action_request import ActionRequestData
from liftgate.governance.action_store import ActionStore
from liftgate.governance.consent import ConsentStore
from liftgate.governance.erasure import TEMPORARY_SUFFIX, erase_from_dataset, erase_from_file
from liftgate.governance.log_erasure import erase_logs, settle
from liftgate.governance.offers import OfferIndex
from liftgate.governance.pseudonyms import Pseudonyms
from liftgate.governance.retention import delete_expired, oldest_kept
from serving.outcome_ledger import OutcomeLedger

ERASED, KEPT = "c1", ("c2", "c3")
NEXT_DAY = NOON + dt.timedelta(days=1)
# Batches of (decision id, customer, ts): each is one Parquet file per date.
BATCHES = [
    [("a1", "c2", NOON), ("a2", "c3", NOON)],  # no row of c1: left alone
    [("b1", "c1", NOON), ("b2", "c2", NOON)],  # rewritten without b1
    [("c1", "c1", NEXT_DAY)],  # only c1: deleted
    [("d1", "c3", NEXT_DAY), ("d2", "c1", NEXT_DAY)],
]
DECISIONS = {decision_id: customer for batch in BATCHES for decision_id, customer, _ in batch}


def outcome(decision_id: str, event: str = "conversion") -> OutcomeRecord:
    return OutcomeRecord(
        outcome_id=f"o-{decision_id}-{event}",
        decision_id=decision_id,
        ts=NOON + dt.timedelta(minutes=5),
        event=event,
        value=1.0,
        received_ts=NOON + dt.timedelta(minutes=6),
        known_decision=True,
    )


def action(decision_id: str, customer_id: str | None) -> ActionRecord:
    return ActionRecord(
        action_id=f"act-{decision_id}",
        ts=NOON + dt.timedelta(minutes=1),
        decision_id=decision_id,
        customer_id=customer_id,
        action="email_10",
        channel="email",
        campaign_id="spring",
        status="queued",
        detail="queued for delivery",
        dry_run=False,
        attempt=0,
        idempotency_key=f"key-{decision_id}",
    )


def write_logs(home: Home) -> None:
    for batch in BATCHES:
        with LogWriter(home.decision_log, DecisionRecord) as log:
            for decision_id, customer, ts in batch:
                log.append(make_decision(decision_id, ts, customer_id=customer))
    with LogWriter(home.outcome_log, OutcomeRecord) as log:
        for decision_id in ("a1", "b2"):  # c2's and c3's only: this file stays
            log.append(outcome(decision_id))
    with LogWriter(home.outcome_log, OutcomeRecord) as log:
        for decision_id in ("b1", "d2", "d1"):
            log.append(outcome(decision_id))
            log.append(outcome(decision_id, "revenue"))
    with LogWriter(home.action_log, ActionRecord) as log:
        log.append(action("b1", "c1"))
        log.append(action("b2", "c2"))
        # An action on a decision the offers index had lost: logged without its customer.
        log.append(action("d2", None))


def fill_stores(home: Home) -> None:
    home.customers.parent.mkdir(parents=True)
    pq.write_table(
        pa.table({"customer_id": ["c1", "c2", "c3"], "tenure_days": [10, 20, 30]}),
        home.customers,
    )
    ledger = OutcomeLedger(home.outcome_ledger)
    for decision_id in ("a1", "b1", "b2", "d2"):
        ledger.record(decision_id, "conversion", f"o-{decision_id}")
    ledger.close()
    consent = ConsentStore(home.consent)
    for customer in ("c1", "c2"):
        consent.set(customer, "email", True, ts=NOON)
    consent.close()
    offers = OfferIndex.writer(home.offers)
    for decision_id, customer in DECISIONS.items():
        offers.record(decision_id, customer, ["email_10", "none"], NOON)
    offers.close()
    store = ActionStore(home.actions)
    for decision_id in ("b1", "b2"):
        request = ActionRequestData(
            decision_id=decision_id,
            action="email_10",
            channel="email",
            campaign_id="spring",
            idempotency_key=f"key-{decision_id}",
            ttl_seconds=3600.0,
        )
        store.commit(
            request,
            customer_id=DECISIONS[decision_id],
            expires_at=NOON + dt.timedelta(hours=1),
            refusal=None,
            caps=(),
            now=NOON,
        )
    store.close()


@pytest.fixture
def filled(home: Home) -> Home:
    write_logs(home)
    fill_stores(home)
    return home


def sorted_by(table: pa.Table, column: str) -> pa.Table:
    return table.sort_by([(column, "ascending")])


def without(table: pa.Table, column: str, values) -> pa.Table:
    return table.filter(pc.invert(pc.is_in(table[column], value_set=pa.array(sorted(values)))))


def data_files(home: Home) -> dict[Path, tuple[int, int]]:
    """(inode, mtime) of every Parquet file the readers see."""
    return {
        path: (path.stat().st_ino, path.stat().st_mtime_ns)
        for path in sorted(home.logs.rglob("*.parquet"))
        if not any(part.startswith((".", "_")) for part in path.relative_to(home.logs).parts)
    }


def erase(home: Home, customer_id: str = ERASED, **options) -> privacy.ErasureReport:
    return erase_customer(home, load_config(), customer_id, who="dpo", **{"settle_s": 0, **options})


# --- the customer's rows go, nobody else's ---------------------------------------------------


def test_erasure_removes_the_customer_everywhere_and_nothing_else(filled: Home):
    home = filled
    erased_ids = {d for d, customer in DECISIONS.items() if customer == ERASED}
    decisions, outcomes, actions = (
        read_decisions(home.decision_log),
        read_outcomes(home.outcome_log),
        read_actions(home.action_log),
    )

    report = erase(home)

    assert sorted_by(read_decisions(home.decision_log), "decision_id").equals(
        sorted_by(without(decisions, "customer_id", {ERASED}), "decision_id")
    )
    assert sorted_by(read_outcomes(home.outcome_log), "outcome_id").equals(
        sorted_by(without(outcomes, "decision_id", erased_ids), "outcome_id")
    )
    assert read_actions(home.action_log).equals(
        without(actions, "action_id", {"act-b1", "act-d2"})  # act-d2: by its decision id
    )
    store = pq.read_table(home.customers)
    assert store["customer_id"].to_pylist() == ["c2", "c3"]
    assert store["tenure_days"].to_pylist() == [20, 30]

    ledger = OutcomeLedger(home.outcome_ledger)
    assert [ledger.first(d, "conversion") for d in ("a1", "b1", "b2", "d2")] == [
        "o-a1",
        None,
        "o-b2",
        None,
    ]
    ledger.close()
    consent = ConsentStore(home.consent)
    assert consent.is_granted("c2", "email") and not consent.is_granted(ERASED, "email")
    assert [row["source"] for row in consent.current(ERASED)] == ["erasure"]
    consent.close()
    offers = OfferIndex.reader(home.offers)
    assert offers.find("b1") is None and offers.find("b2") is not None
    offers.close()
    store = ActionStore(home.actions)
    assert store.counts_by_status()["queued"] == 1
    store.close()

    assert report.complete
    assert report.counts() == {
        "decision_rows": 3,
        "outcome_rows": 4,
        "action_log_rows": 2,
        "event_log_rows": 0,
        "inbox_events": 0,
        "actions": 1,
        "offers": 3,
        "ledger_rows": 2,
        "online_store_rows": 1,
        "consent_channels": 1,
    }
    (record,) = [r for r in audit.read(home.audit_log) if r["action"] == "customer_erased"]
    assert record["customer"] == Pseudonyms.for_home(home).of(ERASED) == report.customer
    assert record["who"] == "dpo" and record["decision_rows"] == 3 and record["complete"]
    assert f'"{ERASED}"' not in home.audit_log.read_text()  # no raw id, only the pseudonym


def test_files_without_the_customer_are_not_touched(filled: Home):
    before = data_files(filled)
    report = erase(filled)
    after = data_files(filled)

    changed = set(report.logs.decisions.rewritten) | set(report.logs.outcomes.rewritten)
    changed |= set(report.logs.actions.rewritten)
    deleted = set(report.logs.decisions.deleted) | set(report.logs.outcomes.deleted)
    deleted |= set(report.logs.actions.deleted)
    assert len(report.logs.decisions.rewritten) == 2 and len(report.logs.decisions.deleted) == 1
    assert deleted == set(before) - set(after)
    for path in set(after) - changed:
        assert after[path] == before[path], path  # same inode, same mtime
    for path in changed:
        assert after[path][0] != before[path][0], path  # replaced by a new file


def test_a_second_erasure_finds_nothing_and_changes_nothing(filled: Home):
    erase(filled)
    before = data_files(filled)
    again = erase(filled)
    assert data_files(filled) == before
    # Nothing left to remove; the revocation is kept, and kept again.
    assert again.complete
    assert again.counts() == {name: 0 for name in again.counts()} | {"consent_channels": 1}


def test_an_empty_customer_id_is_refused(home: Home):
    with pytest.raises(InputError, match="customer_id: expected a customer id"):
        erase(home, "  ")


def test_the_online_store_file_stays_when_its_last_customer_goes(tmp_path: Path):
    path = tmp_path / "customers.parquet"
    pq.write_table(pa.table({"customer_id": ["c1"], "tenure_days": [3]}), path)
    assert erase_from_file(path, "customer_id", {"c1"}) == 1
    assert pq.read_table(path).num_rows == 0 and pq.read_table(path).column_names == [
        "customer_id",
        "tenure_days",
    ]
    with pytest.raises(InputError, match="customers.parquet: expected the column"):
        erase_from_file(path, "customer", {"c1"})


# --- crashes ---------------------------------------------------------------------------------


def test_a_crash_between_write_and_rename_leaves_the_original_and_is_finished_later(
    filled: Home,
):
    home = filled
    original = {path: pq.read_table(path) for path in data_files(home)}
    before = read_decisions(home.decision_log)
    child = os.fork()
    if child == 0:  # the erasure dies as the first rewritten file is about to be renamed
        try:
            os.replace = lambda *_: os.kill(os.getpid(), signal.SIGKILL)
            erase_from_dataset(home.decision_log, {"customer_id": {ERASED}})
        finally:
            os._exit(1)  # not killed: the test fails below
    _, status = os.waitpid(child, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL

    (leftover,) = home.decision_log.rglob(f".*{TEMPORARY_SUFFIX}")
    assert pq.read_table(leftover).num_rows > 0  # written whole, never renamed
    for path, table in original.items():  # every file as it was
        assert pq.read_table(path).equals(table), path
    assert read_decisions(home.decision_log).equals(before)  # readers skip the leftover

    report = erase(home)
    assert report.logs.decisions.rows == 3
    assert not list(home.decision_log.rglob(f".*{TEMPORARY_SUFFIX}"))
    assert ERASED not in read_decisions(home.decision_log)["customer_id"].to_pylist()


def test_an_erasure_interrupted_before_the_decision_log_still_finds_the_outcomes(
    filled: Home,
):
    """The decision log is rewritten last: it links the customer to their outcomes."""
    erase_from_dataset(filled.outcome_log, {"decision_id": {"b1"}})  # as far as it got
    report = erase(filled)
    assert report.logs.outcomes.rows == 2  # d2's two; b1's were gone already
    assert set(read_outcomes(filled.outcome_log)["decision_id"].to_pylist()) == {"a1", "b2", "d1"}


# --- write-ahead segments --------------------------------------------------------------------


def test_an_orphaned_segment_is_converted_so_that_no_recovery_brings_rows_back(home: Home):
    segment = Segment.create(home.decision_log)  # a crashed writer's segment
    segment.write(encode(make_decision("w1", customer_id=ERASED)))
    segment.write(encode(make_decision("w2", customer_id="c2")))
    segment.close()

    report = erase(home)

    assert report.complete and report.logs.decisions.rows == 1
    assert not list(wal_directory(home.decision_log).glob("*.wal"))
    assert read_decisions(home.decision_log)["decision_id"].to_pylist() == ["w2"]


def test_the_erasure_waits_for_a_live_writer_to_write_its_segment(home: Home):
    writer = LogWriter(home.decision_log, DecisionRecord)  # no flusher: flushes when told
    outcomes = LogWriter(home.outcome_log, OutcomeRecord)
    writer.append(make_decision("w1", customer_id=ERASED))
    outcomes.append(outcome("w1"))
    ticks = iter(range(100))

    # Nothing flushes: the wait ends at the deadline, naming the live segments.
    held = settle(home, ERASED, settle_s=3, clock=lambda: next(ticks), sleep=lambda _: None)
    assert held.decision_ids == {"w1"} and len(held.unsettled) == 2

    # The writers flush while the erasure waits: every row is then in Parquet, and erased.
    naps = []

    def nap(seconds: float) -> None:
        naps.append(seconds)
        writer.flush()
        outcomes.flush()

    settled = settle(home, ERASED, settle_s=60, poll_s=0.5, sleep=nap)
    assert settled.unsettled == () and naps == [0.5] and settled.decision_ids == {"w1"}
    erased = erase_logs(home, ERASED, settled.decision_ids)
    assert (erased.decisions.rows, erased.outcomes.rows) == (1, 1)
    writer.close()
    outcomes.close()
    assert (
        read_decisions(home.decision_log).num_rows == read_outcomes(home.outcome_log).num_rows == 0
    )


@pytest.mark.slow
def test_rows_a_running_writer_holds_in_its_segment_are_gone_after_the_erasure(home: Home):
    writer = LogWriter(home.decision_log, DecisionRecord, max_age_s=1.0).start()
    try:
        for i in range(20):
            customer = ERASED if i % 2 else "c2"
            writer.append(make_decision(f"live-{i}", dt.datetime.now(dt.UTC), customer_id=customer))
        assert writer.buffered_rows == 20  # all in the segment, none in Parquet yet

        report = erase_customer(home, load_config(), ERASED, settle_s=10)

        assert report.complete and report.logs.decisions.rows == 10
        customers = read_decisions(home.decision_log)["customer_id"].to_pylist()
        assert customers == ["c2"] * 10
    finally:
        writer.close()
    assert read_decisions(home.decision_log)["customer_id"].to_pylist() == ["c2"] * 10


# --- retention -------------------------------------------------------------------------------


def partition(log: Path, day: dt.date) -> Path:
    path = log / f"date={day.isoformat()}"
    path.mkdir(parents=True)
    (path / "part-x.parquet").write_bytes(b"")
    return path


def test_retention_deletes_old_partitions_of_every_log_and_keeps_recent_ones(home: Home):
    now = dt.datetime(2024, 5, 10, 0, 30, tzinfo=dt.UTC)
    logs = (home.decision_log, home.outcome_log, home.action_log)
    old = [partition(log, dt.date(2024, 5, 2)) for log in logs]
    kept = [partition(log, day) for log in logs for day in (dt.date(2024, 5, 3), now.date())]
    wal_directory(home.decision_log).mkdir()
    (home.decision_log / "notes.txt").write_text("not a partition")

    planned = apply_retention(home, 7, now, dry_run=True)
    assert planned == old and all(path.is_dir() for path in old)

    assert apply_retention(home, 7, now, who="ops") == old
    assert not any(path.exists() for path in old)
    assert all(path.is_dir() for path in kept)
    assert wal_directory(home.decision_log).is_dir()
    assert not list(home.logs.rglob(".date=*"))  # the hidden copies are gone too
    (record,) = audit.read(home.audit_log)
    assert record["action"] == "log_retention" and len(record["partitions"]) == 3


def test_a_partition_a_crashed_retention_left_hidden_is_removed_next_time(home: Home):
    hidden = home.decision_log / ".date=2024-01-01.0123abcd.expired"
    (hidden / "sub").mkdir(parents=True)
    assert delete_expired([home.decision_log], 7, dt.datetime(2024, 5, 10, tzinfo=dt.UTC)) == []
    assert not hidden.exists()


@given(
    days=st.integers(1, 400),
    now=st.datetimes(
        min_value=dt.datetime(2000, 1, 1),
        max_value=dt.datetime(2100, 1, 1),
        timezones=st.just(dt.UTC),
    ),
    ages=st.lists(st.integers(-2, 500), max_size=20),
)
def test_retention_keeps_exactly_the_partitions_of_the_last_days(days, now, ages):
    """Law: a partition is kept iff it is at most `days` days before today (UTC), so today's
    and yesterday's always are."""
    today = now.date()
    cutoff = oldest_kept(now, days)
    assert cutoff <= today - dt.timedelta(days=1)
    for age in ages:
        day = today - dt.timedelta(days=age)
        assert (day >= cutoff) == (age <= days)


def test_retention_of_less_than_a_day_is_refused():
    with pytest.raises(InputError, match="days: expected a whole number of days >= 1"):
        oldest_kept(dt.datetime(2024, 5, 10, tzinfo=dt.UTC), 0)


# --- the command line ------------------------------------------------------------------------


@pytest.fixture
def cli_home(home: Home, monkeypatch: pytest.MonkeyPatch) -> Home:
    """`home` as the command line's LIFTGATE_HOME; an erasure does not wait for segments."""
    monkeypatch.setenv(HOME_ENV, str(home.root))
    monkeypatch.setattr(privacy, "settle_seconds", lambda config: 0.0)
    return home


def test_cli_erase_prints_what_went_where(filled: Home, cli_home: Home):
    runner = CliRunner()
    result = runner.invoke(app, ["privacy", "erase", ERASED, "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["complete"] and document["counts"]["decision_rows"] == 3
    assert len(document["logs"]["decisions"]["files_rewritten"]) == 2

    text = runner.invoke(app, ["privacy", "erase", ERASED])
    assert text.exit_code == 0, text.output
    assert "decision log" in text.stdout and "revoked on 1 channel" in text.stdout


def test_cli_erase_exits_1_naming_the_segments_still_held(filled: Home, cli_home: Home):
    writer = LogWriter(cli_home.decision_log, DecisionRecord)
    writer.append(make_decision("w1", customer_id=ERASED))
    try:
        result = CliRunner().invoke(app, ["privacy", "erase", ERASED, "--json"])
    finally:
        writer.close()
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout)["exit_code"] == 1
    assert ".wal" in result.stderr and "run `liftgate privacy erase c1` again" in result.stderr
    assert CliRunner().invoke(app, ["privacy", "erase", ERASED]).exit_code == 0  # finished


def test_cli_retention(cli_home: Home):
    today = dt.datetime.now(dt.UTC).date()
    old = partition(cli_home.decision_log, today - dt.timedelta(days=30))
    runner = CliRunner()

    unset = runner.invoke(app, ["privacy", "retention", "--json"])
    assert unset.exit_code == 2 and "--days" in unset.stderr and "serving.yaml" in unset.stderr
    assert runner.invoke(app, ["privacy", "retention", "--days", "0"]).exit_code == 2

    dry = runner.invoke(app, ["privacy", "retention", "--days", "7", "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.stdout)["partitions"] == [str(old.relative_to(cli_home.root))]
    assert old.is_dir()

    done = runner.invoke(app, ["privacy", "retention", "--days", "7"])
    assert done.exit_code == 0, done.output
    assert "deleted 1 partition(s)" in done.stdout and not old.exists()


def test_serve_retention_loop_applies_at_start_and_stops(home: Home):
    old = partition(home.outcome_log, dt.date(2024, 1, 1))
    stop = threading.Event()
    reports = []

    def report(deleted):
        reports.append(deleted)
        stop.set()

    privacy.housekeeping_loop(
        home, 7, 86_400.0, stop, report, now=lambda: dt.datetime(2024, 5, 10, tzinfo=dt.UTC)
    )
    assert reports == [[old]] and not old.exists()


def test_housekeeping_prunes_offers_no_commit_can_use(home: Home):
    offers = OfferIndex.writer(home.offers)
    offers.record("old", "c1", ["email_10"], dt.datetime(2024, 5, 1, tzinfo=dt.UTC))
    offers.record("recent", "c1", ["email_10"], dt.datetime(2024, 5, 9, 12, tzinfo=dt.UTC))
    offers.close()
    stop = threading.Event()
    stop.set()  # one turn
    privacy.housekeeping_loop(
        home,
        None,
        86_400.0,
        stop,
        report=print,
        now=lambda: dt.datetime(2024, 5, 10, tzinfo=dt.UTC),
    )
    reader = OfferIndex.reader(home.offers)
    assert reader.find("old") is None and reader.find("recent") is not None
    reader.close()
