"""The consent store (liftgate/governance/consent.py), its file import, the pseudonyms of the
audit log, the world's consent, and `liftgate consent`."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import get_args

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from liftgate.app.cli import consent as consent_cli
from liftgate.app.cli.main import app
from liftgate.core import audit
from liftgate.core.errors import InputError
from liftgate.core.home import HOME_ENV, Home
from liftgate.governance import consent as consent_module
from liftgate.governance.consent import (
    _GRANTED_CHANNELS,
    CHANNELS,
    ERASURE,
    ConsentRow,
    ConsentStore,
    ImportSummary,
)
from liftgate.governance.consent_import import read_consent_file
from liftgate.governance.pseudonyms import Pseudonyms
from liftgate.sim.world import World, stock_home

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
runner = CliRunner()


def at(days: float) -> datetime:
    return NOW - timedelta(days=days)


@pytest.fixture
def store(home: Home):
    with ConsentStore(home.consent, clock=lambda: NOW) as store:
        yield store


def state(store: ConsentStore, customers) -> dict:
    """The final state of each (customer, channel): what the law is about (`updated_at`,
    the store's own clock, is not)."""
    return {
        (customer, c["channel"]): (c["granted"], c["ts"], c["source"])
        for customer in customers
        for c in store.current(customer)
    }


# --- latest ts wins ---------------------------------------------------------------------------

changes = st.lists(
    st.builds(
        ConsentRow,
        customer_id=st.sampled_from(["c1", "c2"]),
        channel=st.sampled_from(["email", "push"]),
        granted=st.booleans(),
        ts=st.sampled_from([at(3), at(2), at(1)]),  # few times: ties are common
        source=st.sampled_from(["app", "cli", "file.csv"]),
    ),
    max_size=12,
)


@pytest.fixture(scope="module")
def two_stores(tmp_path_factory: pytest.TempPathFactory):
    """Two stores that the examples share (each example has customers of its own)."""
    directory = tmp_path_factory.mktemp("law")
    with (
        ConsentStore(directory / "one.db", clock=lambda: NOW) as one,
        ConsentStore(directory / "other.db", clock=lambda: NOW) as other,
    ):
        yield one, other


EXAMPLES = itertools.count()


@settings(max_examples=60, deadline=None)
@given(rows=changes, data=st.data())
def test_the_same_changes_in_any_order_give_the_same_state(two_stores, rows, data) -> None:
    """Latest ts wins (at the same ts a revocation, then the greater source): the final
    state depends on the set of changes only, whether they come one by one or imported."""
    prefix = f"e{next(EXAMPLES)}-"
    rows = [replace(row, customer_id=prefix + row.customer_id) for row in rows]
    shuffled = data.draw(st.permutations(rows))
    one, other = two_stores
    for row in rows:
        one.set(row.customer_id, row.channel, row.granted, ts=row.ts, source=row.source)
    summary = other.import_rows(shuffled)
    customers = (prefix + "c1", prefix + "c2")
    assert state(one, customers) == state(other, customers)
    expected = {}
    for row in rows:
        key = (row.customer_id, row.channel)
        rank = (row.ts, not row.granted, row.source)
        if key not in expected or rank > expected[key][0]:
            expected[key] = (rank, (row.granted, consent_module.stamp(row.ts), row.source))
    assert state(one, customers) == {key: value for key, (_, value) in expected.items()}
    assert summary.rows == len(rows) and summary.applied + summary.stale == len(rows)
    # Each applied change is in the history, each stale one is not.
    assert sum(len(other.history(customer)) for customer in customers) == summary.applied


def test_an_older_change_is_ignored_and_not_recorded(store: ConsentStore) -> None:
    assert store.set("c1", "email", True, ts=at(1))
    assert not store.set("c1", "email", False, ts=at(2))
    assert store.is_granted("c1", "email")
    assert [h["granted"] for h in store.history("c1")] == [True]


def test_at_the_same_time_a_revocation_beats_a_grant(store: ConsentStore) -> None:
    assert store.set("c1", "email", False, ts=at(1))
    assert not store.set("c1", "email", True, ts=at(1))
    assert not store.is_granted("c1", "email")


def test_a_change_without_a_time_is_dated_now(store: ConsentStore) -> None:
    store.set("c1", "push", True, source="app")
    [current] = store.current("c1")
    assert current["ts"] == consent_module.stamp(NOW) and current["source"] == "app"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"channel": "none"}, "channel"),
        ({"channel": "fax"}, "channel"),
        ({"customer_id": " "}, "customer_id"),
        ({"source": ""}, "source"),
        ({"ts": NOW + timedelta(hours=1)}, "ts"),  # would outrank every real change
    ],
)
def test_a_bad_change_is_an_input_error_naming_the_field(store, change, field) -> None:
    row = {"customer_id": "c1", "channel": "email", "granted": True, "ts": NOW, "source": "x"}
    row.update(change)
    with pytest.raises(InputError) as raised:
        store.set(row["customer_id"], row["channel"], True, ts=row["ts"], source=row["source"])
    assert raised.value.parameter == field
    assert store.current("c1") == []


def test_a_time_without_a_zone_is_utc(store: ConsentStore) -> None:
    store.set("c1", "email", True, ts=datetime(2026, 3, 1, 9, 30))
    assert store.current("c1")[0]["ts"] == "2026-03-01T09:30:00.000000+00:00"


def test_an_import_counts_applied_stale_and_channels(store, monkeypatch) -> None:
    monkeypatch.setattr(consent_module, "CHUNK_ROWS", 2)  # several transactions
    rows = [
        ConsentRow("c1", "email", True, at(3), "f"),
        ConsentRow("c1", "email", False, at(1), "f"),
        ConsentRow("c1", "email", True, at(2), "f"),  # older than the revocation: stale
        ConsentRow("c2", "push", True, at(1), "f"),
        ConsentRow("c3", "email", True, at(1), "f"),
    ]
    summary = store.import_rows(iter(rows))
    assert summary == ImportSummary(
        rows=5,
        applied=4,
        stale=1,
        by_channel={"email": {"granted": 2, "revoked": 1}, "push": {"granted": 1, "revoked": 0}},
    )
    assert [store.granted_channels(c) for c in ("c1", "c2", "c3")] == [
        frozenset(),
        frozenset({"push"}),
        frozenset({"email"}),
    ]


# --- readers ----------------------------------------------------------------------------------


def test_a_reader_sees_a_revocation_at_once(store: ConsentStore) -> None:
    store.set("c1", "email", True, ts=at(2))
    store.set("c1", "push", True, ts=at(2))
    with ConsentStore.reader(store.path) as reader:  # its own connection, like a replica
        assert reader.granted_channels("c1") == {"email", "push"}
        store.set("c1", "email", False, ts=at(1))
        assert reader.granted_channels("c1") == {"push"}
        assert not reader.is_granted("c1", "email") and reader.is_granted("c1", "push")


def test_a_reader_started_before_the_store_exists_picks_it_up(home: Home) -> None:
    with ConsentStore.reader(home.consent) as reader:
        assert reader.granted_channels("c1") == frozenset()  # no store: nobody consented
        assert not home.consent.exists()  # and a reader never creates it
        with ConsentStore(home.consent) as store:
            store.set("c1", "email", True)
        assert reader.granted_channels("c1") == {"email"}


def test_a_reader_refuses_an_unknown_channel(store: ConsentStore) -> None:
    with pytest.raises(InputError, match="expected one of email, push, sms, web"):
        ConsentStore.reader(store.path).is_granted("c1", "none")


def test_the_decision_paths_lookup_is_one_primary_key_search(store: ConsentStore) -> None:
    """A point query on a kept connection (no cache, no scan): its cost is measured in
    load_tests/bench_actions.py, not here."""
    store.import_rows(ConsentRow(f"c{i}", "email", True, at(1), "f") for i in range(2_000))
    statements: list[str] = []
    with ConsentStore.reader(store.path) as reader:
        reader.granted_channels("c1")  # opens the connection
        db = reader._connection()
        plan = " ".join(
            row[-1] for row in db.execute(f"EXPLAIN QUERY PLAN {_GRANTED_CHANNELS}", ("c1",))
        )
        db.set_trace_callback(statements.append)
        assert reader.granted_channels("c12") == frozenset({"email"})
    # One statement, on the kept connection (the trace shows it with its parameter bound).
    assert statements == [_GRANTED_CHANNELS.replace("?", "'c12'")]
    assert "SEARCH" in plan and ("PRIMARY KEY" in plan or "INDEX" in plan), plan


# --- erasure ----------------------------------------------------------------------------------


def test_erasure_keeps_only_the_fact_of_the_revocation(store: ConsentStore) -> None:
    store.set("c1", "email", True, ts=at(3))
    store.set("c1", "email", False, ts=at(2))
    store.set("c1", "push", True, ts=at(2))
    store.set("c2", "email", True, ts=at(2))
    assert store.erase("c1") == 2
    current = store.current("c1")
    assert [(c["channel"], c["granted"], c["source"]) for c in current] == [
        ("email", False, ERASURE),
        ("push", False, ERASURE),
    ]
    assert [(h["channel"], h["source"]) for h in store.history("c1")] == [
        ("email", ERASURE),
        ("push", ERASURE),
    ]
    assert not store.set("c1", "push", True, ts=at(1))  # an old grant arriving late: stale
    assert store.granted_channels("c1") == frozenset()
    assert store.granted_channels("c2") == {"email"}  # nobody else touched
    assert store.erase("unknown") == 0 and store.current("unknown") == []


# --- the file import --------------------------------------------------------------------------


def test_a_csv_file_is_read_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "optins.csv"
    path.write_text(
        "customer_id,channel,granted,ts,source,extra\n"
        "007,email,TRUE,2026-03-01T09:30:00+02:00,,x\n"
        "c2,push,0,2026-03-01,shop,y\n"
    )
    rows = read_consent_file(path, now=NOW).rows
    assert rows == [
        ConsentRow("007", "email", True, datetime(2026, 3, 1, 7, 30, tzinfo=UTC), "optins.csv"),
        ConsentRow("c2", "push", False, datetime(2026, 3, 1, tzinfo=UTC), "shop"),
    ]


def test_a_parquet_file_is_read_with_its_types(tmp_path: Path) -> None:
    path = tmp_path / "consent.parquet"
    frame = pd.DataFrame(
        {
            "customer_id": ["c1"],
            "channel": ["sms"],
            "granted": [True],
            "ts": [pd.Timestamp("2026-03-01 09:30")],  # no zone: UTC
        }
    )
    frame.to_parquet(path)
    [row] = read_consent_file(path, now=NOW).rows
    assert row == ConsentRow("c1", "sms", True, datetime(2026, 3, 1, 9, 30, tzinfo=UTC), path.name)


def test_every_bad_cell_is_named_by_file_row_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "customer_id,channel,granted,ts\n"
        "c1,email,true,2026-03-01\n"
        "c2,fax,maybe,2026-03-01\n"
        ",push,true,yesterday\n"
        "c4,push,true,2099-01-01\n"
    )
    with pytest.raises(InputError) as raised:
        read_consent_file(path, now=NOW)
    message = str(raised.value)
    assert message.startswith(f"{path}: 5 bad cell(s), nothing imported")
    for expected in [
        "row 2, column 'channel': expected one of email, push, sms, web; got 'fax'",
        "row 2, column 'granted': expected true or false",
        "row 3, column 'customer_id': expected text",
        "row 3, column 'ts': expected an ISO 8601 time",
        "row 4, column 'ts': expected a time no later than now",
    ]:
        assert expected in message
    assert "row 1" not in message


def test_a_missing_column_is_named(tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    path.write_text("customer_id,channel,ts\nc1,email,2026-03-01\n")
    with pytest.raises(InputError, match=r"short.csv: column 'granted' .* not found"):
        read_consent_file(path, now=NOW)


# --- pseudonyms -------------------------------------------------------------------------------


def test_a_homes_pseudonyms_are_stable_and_keyed(tmp_path: Path) -> None:
    first, again, other = (Pseudonyms.for_home(Home(tmp_path / name)) for name in "aab")
    assert first.of("c1") == again.of("c1") != other.of("c1")
    assert first.of("c1") != first.of("c2")
    assert len(first.of("c1")) == 16 and int(first.of("c1"), 16) >= 0


# --- the world's consent ----------------------------------------------------------------------


def test_a_stocked_home_holds_the_worlds_opt_ins(tmp_path: Path) -> None:
    world = World(seed=2, n_customers=1_000)
    world.write(tmp_path / "w", rows=1_000)
    home = Home(tmp_path / "home")
    summary = stock_home(home, tmp_path / "w")
    assert summary.applied == 2_000 and set(summary.by_channel) == {"email", "push"}
    assert home.customers.read_bytes() == (tmp_path / "w" / "customers.parquet").read_bytes()
    with ConsentStore.reader(home.consent) as reader:
        for customer in world.customers.head(200).itertuples():
            opt_ins = {"email": customer.email_opt_in, "push": customer.push_opt_in}
            expected = {channel for channel, opted_in in opt_ins.items() if opted_in}
            assert reader.granted_channels(customer.customer_id) == expected
        [email] = [c for c in reader.current("c0000000") if c["channel"] == "email"]
    assert email["source"] == "world"
    assert email["ts"] == consent_module.stamp(world.timeline.start)


# --- liftgate consent -------------------------------------------------------------------------


@pytest.fixture
def cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))
    return Home(tmp_path / "home")


def invoke(*args: str):
    result = runner.invoke(app, ["consent", *args])
    assert "Traceback" not in result.output
    return result


def test_grant_revoke_and_show(cli_home: Home) -> None:
    granted = invoke("grant", "c0000042", "--channel", "email", "--source", "form", "--json")
    assert granted.exit_code == 0, granted.output
    assert json.loads(granted.stdout) | {"ts": None, "updated_at": None} == {
        "customer_id": "c0000042",
        "channel": "email",
        "granted": True,
        "source": "form",
        "ts": None,
        "updated_at": None,
    }
    assert invoke("grant", "c0000042", "--channel", "push").exit_code == 0
    revoked = invoke("revoke", "c0000042", "--channel", "email")
    assert revoked.exit_code == 0 and "revoked" in revoked.stdout
    shown = json.loads(invoke("show", "c0000042", "--json").stdout)
    assert shown["granted"] == ["push"]
    assert [(h["channel"], h["granted"]) for h in shown["history"]] == [
        ("email", True),
        ("push", True),
        ("email", False),
    ]
    assert "history of c0000042" in invoke("show", "c0000042").stdout
    assert "no channel is granted" in invoke("show", "c9").stdout


def test_changes_are_audited_under_a_pseudonym_only(cli_home: Home, tmp_path: Path) -> None:
    invoke("grant", "c0000042", "--channel", "email")
    invoke("revoke", "c0000042", "--channel", "email", "--source", "call")
    path = tmp_path / "optins.csv"
    path.write_text("customer_id,channel,granted,ts\nc0000042,push,yes,2026-03-01\n")
    assert invoke("import", str(path)).exit_code == 0
    records = audit.read(cli_home.audit_log)
    pseudonym = Pseudonyms.for_home(cli_home).of("c0000042")
    assert [(r["action"], r.get("customer"), r.get("channel")) for r in records] == [
        ("consent_granted", pseudonym, "email"),
        ("consent_revoked", pseudonym, "email"),
        ("consent_imported", None, None),
    ]
    imported = records[-1]
    assert imported["file"] == str(path) and imported["applied"] == 1
    assert len(imported["sha256"]) == 64
    assert "c0000042" not in cli_home.audit_log.read_text()


def test_an_import_with_a_bad_row_changes_nothing(cli_home: Home, tmp_path: Path) -> None:
    path = tmp_path / "optins.csv"
    path.write_text("customer_id,channel,granted,ts\nc1,email,yes,2026-03-01\nc2,email,sure,x\n")
    result = invoke("import", str(path), "--json")
    assert result.exit_code == 2
    assert "row 2, column 'granted'" in result.stderr
    assert json.loads(result.stdout)["exit_code"] == 2
    with ConsentStore.reader(cli_home.consent) as reader:
        assert reader.current("c1") == []
    assert audit.read(cli_home.audit_log) == []


def test_an_unknown_channel_is_refused(cli_home: Home) -> None:
    result = invoke("grant", "c1", "--channel", "none")
    assert result.exit_code == 2 and "--channel" in result.stderr


def test_the_command_lines_channels_are_the_stores() -> None:
    assert get_args(consent_cli.Channel) == CHANNELS
