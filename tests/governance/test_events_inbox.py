"""The event inbox: each event once per id (across processes), in arrival order for the
journey worker's cursor, per customer in time order; its event log record; and the erasure
of a customer's events from both."""

from __future__ import annotations

import datetime as dt
import multiprocessing
from pathlib import Path

import pytest

from configs.loader import load_config
from experiments.logs.reader import read_events
from experiments.logs.schema import EVENT_SCHEMA, EventRecord, from_table, to_table
from experiments.logs.writer import LogWriter
from liftgate.app.privacy import erase_customer
from liftgate.core.home import Home
from liftgate.governance.events import CustomerEvent, EventInbox, log_record
from liftgate.governance.log_erasure import logs_of

NOON = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)


def event(
    event_id: str,
    customer_id: str = "c1",
    type: str = "cart_abandoned",
    ts: dt.datetime = NOON,
    **properties,
) -> CustomerEvent:
    return CustomerEvent(
        event_id=event_id,
        customer_id=customer_id,
        type=type,
        properties=properties,
        ts=ts,
        received_ts=NOON + MINUTE,
    )


@pytest.fixture
def inbox(home: Home):
    with EventInbox.for_home(home) as inbox:
        yield inbox


def test_an_event_is_kept_as_given(inbox: EventInbox) -> None:
    given = event("e1", cart_value=35.5, items=3, member=True, coupon="SPRING")
    stored, new = inbox.add(given)
    assert new and stored == given
    kept = inbox.get("e1")
    assert kept == given
    assert kept.ts.utcoffset() == dt.timedelta(0) and kept.properties["items"] == 3
    assert isinstance(kept.properties["member"], bool) and inbox.get("e2") is None


def test_a_repeated_id_gets_the_first_event_and_is_not_kept_again(inbox: EventInbox) -> None:
    first = event("e1", cart_value=35.0)
    inbox.add(first)
    stored, new = inbox.add(event("e1", customer_id="c2", type="purchase", cart_value=99.0))
    assert not new and stored == first
    assert [(n, e.event_id) for n, e in inbox.after(0)] == [(1, "e1")]


def test_a_time_with_another_zone_is_kept_in_utc(inbox: EventInbox) -> None:
    paris = dt.timezone(dt.timedelta(hours=2))
    inbox.add(event("e1", ts=NOON.astimezone(paris)))
    kept = inbox.get("e1")
    assert kept.ts == NOON and kept.ts.utcoffset() == dt.timedelta(0)


def test_the_cursor_reads_in_arrival_order_in_batches(inbox: EventInbox) -> None:
    # Arrival order, not ts order: a late event arrives last whatever its time.
    for i, ts in enumerate([NOON, NOON - MINUTE, NOON + MINUTE, NOON - 2 * MINUTE]):
        inbox.add(event(f"e{i}", ts=ts))
    first = inbox.after(0, limit=3)
    assert [e.event_id for _, e in first] == ["e0", "e1", "e2"]
    cursor = first[-1][0]
    rest = inbox.after(cursor)
    assert [e.event_id for _, e in rest] == ["e3"]
    assert inbox.after(rest[-1][0]) == []


def test_a_cursor_never_skips_an_event_after_the_newest_are_erased(inbox: EventInbox) -> None:
    inbox.add(event("e1", customer_id="c1"))
    inbox.add(event("e2", customer_id="c2"))
    (seen, _), _ = inbox.after(0)
    cursor = inbox.after(seen)[-1][0]
    assert inbox.erase("c2") == 1
    inbox.add(event("e3", customer_id="c3"))  # its number is not the erased one's again
    assert [e.event_id for _, e in inbox.after(cursor)] == ["e3"]


def test_a_customers_events_in_time_order_by_type_and_since(inbox: EventInbox) -> None:
    inbox.add(event("late", ts=NOON + 2 * MINUTE, type="purchase"))
    inbox.add(event("early", ts=NOON - MINUTE))
    inbox.add(event("noon", ts=NOON))
    inbox.add(event("other", customer_id="c2", ts=NOON))

    def ids(**options) -> list[str]:
        return [e.event_id for e in inbox.of_customer("c1", **options)]

    assert ids() == ["early", "noon", "late"]
    assert ids(types={"purchase"}) == ["late"]
    assert ids(types=["cart_abandoned", "purchase"], since=NOON) == ["noon", "late"]
    assert ids(since=NOON + dt.timedelta(seconds=1)) == ["late"]
    assert ids(types=()) == []
    assert inbox.of_customer("nobody") == []


def test_erase_forgets_only_the_customers_events(inbox: EventInbox) -> None:
    inbox.add(event("e1", customer_id="c1"))
    inbox.add(event("e2", customer_id="c1"))
    inbox.add(event("e3", customer_id="c2"))
    assert inbox.erase("c1") == 2 and inbox.erase("c1") == 0
    assert [e.event_id for _, e in inbox.after(0)] == ["e3"]


def test_two_connections_see_one_row_per_id(home: Home) -> None:
    with EventInbox.for_home(home) as replica_a, EventInbox.for_home(home) as replica_b:
        _, new_a = replica_a.add(event("e1", cart_value=1.0))
        stored, new_b = replica_b.add(event("e1", cart_value=2.0))
        assert (new_a, new_b) == (True, False) and stored.properties == {"cart_value": 1.0}
        assert len(replica_b.after(0)) == 1


def _race(path: str, barrier, answers, value: int) -> None:
    inbox = EventInbox(Path(path))
    barrier.wait()  # every process adds the same id at once
    stored, new = inbox.add(event("e1", value=value))
    answers.put((stored.properties["value"], new))
    inbox.close()


def test_processes_racing_on_one_id_keep_one_event_and_all_answer_it(home: Home) -> None:
    context = multiprocessing.get_context("fork")
    path = str(home.event_inbox)
    EventInbox(Path(path)).close()  # created (and in WAL mode) before the race
    barrier, answers = context.Barrier(4), context.Queue()
    racers = [context.Process(target=_race, args=(path, barrier, answers, i)) for i in range(4)]
    for racer in racers:
        racer.start()
    seen = [answers.get(timeout=30) for _ in racers]
    for racer in racers:
        racer.join(timeout=30)
    values = {value for value, _ in seen}
    assert len(values) == 1 and sum(new for _, new in seen) == 1
    with EventInbox(Path(path)) as inbox:
        ((_, kept),) = inbox.after(0)
    assert kept.properties["value"] in values


def test_the_log_record_keeps_the_properties_as_a_json_object() -> None:
    record = log_record(event("e1", cart_value=35.5, coupon="SPRING", member=False))
    assert record.properties == '{"cart_value":35.5,"coupon":"SPRING","member":false}'
    table = to_table(EventRecord, [record])
    assert table.schema == EVENT_SCHEMA and from_table(EventRecord, table) == [record]
    assert EVENT_SCHEMA.field("ts").type == EVENT_SCHEMA.field("received_ts").type


def test_erasure_removes_the_customers_events_from_the_log_and_the_inbox(home: Home) -> None:
    events = [event("e1", customer_id="c1"), event("e2", customer_id="c2")]
    with LogWriter(home.event_log, EventRecord) as log, EventInbox.for_home(home) as inbox:
        for each in events:
            log.append(log_record(each))
            inbox.add(each)
    report = erase_customer(home, load_config(), "c1", who="dpo", settle_s=0)
    assert report.counts()["event_log_rows"] == 1 and report.counts()["inbox_events"] == 1
    assert read_events(home.event_log)["event_id"].to_pylist() == ["e2"]
    with EventInbox.for_home(home) as inbox:
        assert [e.event_id for _, e in inbox.after(0)] == ["e2"]
    # Retention covers the event log too (it deletes the partitions of every log listed).
    assert (home.event_log, EventRecord) in logs_of(home)
