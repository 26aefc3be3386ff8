"""The API key store (serving/api_keys.py), the replicas' key ring, the token buckets
(serving/rate_limit.py) and `liftgate keys` create / list / revoke."""

from __future__ import annotations

import json
import logging
import sqlite3
import stat

import pytest
from typer.testing import CliRunner

from liftgate.app.cli.main import app
from liftgate.core import audit
from liftgate.core.errors import InputError
from liftgate.core.home import HOME_ENV, Home
from serving.api_keys import APP, OPERATOR, KeyRing, KeyStore
from serving.rate_limit import TokenBuckets

runner = CliRunner()


@pytest.fixture
def home(tmp_path, monkeypatch) -> Home:
    monkeypatch.setenv(HOME_ENV, str(tmp_path))
    return Home(tmp_path)


def invoke(*args: str) -> dict | list:
    result = runner.invoke(app, ["keys", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_keys_create_prints_the_key_once_and_only_its_hash_is_stored(home: Home) -> None:
    created = invoke("create", "--role", "app", "--name", "checkout")
    assert set(created) == {"key", "key_id", "role", "name"}
    assert created["role"] == "app" and created["name"] == "checkout"
    # lg_<id>_<secret>: the secret is URL-safe base64 and may itself hold "_"
    key, secret = created["key"], created["key"].split("_", 2)[2]
    stored = home.api_keys.read_bytes()
    assert secret.encode() not in stored and key.encode() not in stored
    assert stat.S_IMODE(home.api_keys.stat().st_mode) == 0o600
    assert stat.S_IMODE(home.api_keys.parent.stat().st_mode) == 0o700
    listed = runner.invoke(app, ["keys", "list"]).stdout + json.dumps(invoke("list"))
    assert secret not in listed and created["key_id"] in listed
    assert secret not in home.audit_log.read_text()
    assert KeyRing(home.api_keys).verify(key).key_id == created["key_id"]


def test_keys_list_and_revoke_record_who_and_when(home: Home) -> None:
    app_key = invoke("create", "--role", "app")
    operator = invoke("create", "--role", "operator", "--name", "on-call")
    revoked = invoke("revoke", app_key["key_id"])
    assert revoked["revoked_by"] == audit.current_user() and revoked["revoked_at"]
    again = invoke("revoke", app_key["key_id"])  # revoking twice changes nothing
    assert again == revoked
    listed = {key["key_id"]: key for key in invoke("list")}
    assert listed[app_key["key_id"]]["revoked_at"] == revoked["revoked_at"]
    assert listed[operator["key_id"]]["revoked_at"] is None
    assert {key["created_by"] for key in listed.values()} == {audit.current_user()}
    assert "key" not in listed[operator["key_id"]]
    ring = KeyRing(home.api_keys)
    assert ring.verify(app_key["key"]) is None
    assert ring.verify(operator["key"]).role == OPERATOR
    actions = [(e["action"], e["key_id"], e["who"]) for e in audit.read(home.audit_log)]
    assert actions == [
        ("api_key.create", app_key["key_id"], audit.current_user()),
        ("api_key.create", operator["key_id"], audit.current_user()),
        ("api_key.revoke", app_key["key_id"], audit.current_user()),
    ]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["revoke", "0123456789ab"], "no API key '0123456789ab'"),
        (["create", "--role", "boss"], "--role"),
        (["create"], "--role"),
    ],
)
def test_bad_input_exits_2_naming_it(home: Home, args: list[str], named: str) -> None:
    result = runner.invoke(app, ["keys", *args, "--json"])
    assert result.exit_code == 2, result.output
    assert named in result.stderr
    assert json.loads(result.stdout)["exit_code"] == 2


def test_keys_list_of_a_new_home_is_empty(home: Home) -> None:
    assert invoke("list") == []
    assert "no API keys" in runner.invoke(app, ["keys", "list"]).stdout


def test_the_store_takes_only_the_four_roles(tmp_path) -> None:
    with pytest.raises(InputError, match="^role: expected one of app, analyst, operator, admin"):
        KeyStore(tmp_path / "keys.db").create("root")


def test_only_the_exact_key_verifies(tmp_path) -> None:
    store = KeyStore(tmp_path / "keys.db")
    key = store.create(APP).key
    ring = KeyRing(store.path)
    separator = len("lg_") + 12
    for wrong in [
        key[:-1] + ("A" if key[-1] != "A" else "B"),  # another secret
        key[:separator] + "-" + key[separator + 1 :],  # another separator
        key + "A",  # too long
        "xx" + key[2:],  # another prefix
        "",
    ]:
        assert ring.verify(wrong) is None, wrong
    assert ring.verify(key) is not None
    assert KeyRing(tmp_path / "missing.db").verify(key) is None


def test_a_replica_sees_new_and_revoked_keys_after_recheck_s(tmp_path) -> None:
    now = [0.0]
    store = KeyStore(tmp_path / "keys.db")
    ring = KeyRing(store.path, recheck_s=1.0, clock=lambda: now[0])
    first = store.create(APP)
    assert ring.verify(first.key) is not None
    second = store.create(APP)
    store.revoke(first.record.key_id)
    assert ring.verify(second.key) is None and ring.verify(first.key) is not None  # cached
    now[0] = 1.0
    assert ring.verify(second.key) is not None and ring.verify(first.key) is None


def test_a_locked_store_keeps_the_keys_read_before_until_it_can_read_it(tmp_path, caplog):
    now = [0.0]
    store = KeyStore(tmp_path / "keys.db")
    first = store.create(APP).key
    ring = KeyRing(store.path, recheck_s=1.0, clock=lambda: now[0])
    assert ring.verify(first) is not None
    second = store.create(APP).key
    writer = sqlite3.connect(store.path)
    writer.execute("BEGIN EXCLUSIVE")  # a writer holds the lock when the replica rereads
    try:
        now[0] = 1.0
        with caplog.at_level(logging.WARNING, logger="serving.api_keys"):
            assert ring.verify(first) is not None and ring.verify(second) is None
        assert "could not read the API keys" in caplog.text
    finally:
        writer.rollback()
        writer.close()
    now[0] = 2.0  # the next look reads the change it could not read before
    assert ring.verify(second) is not None


def test_an_unchanged_store_is_not_read_again(tmp_path, monkeypatch) -> None:
    now = [0.0]
    store = KeyStore(tmp_path / "keys.db")
    key = store.create(APP).key
    ring = KeyRing(store.path, recheck_s=1.0, clock=lambda: now[0])
    reads = []
    read = ring._read
    monkeypatch.setattr(ring, "_read", lambda: reads.append(1) or read())
    for second in range(5):
        now[0] = float(second)
        assert ring.verify(key) is not None
    assert len(reads) == 1
    store.revoke(store.list()[0].key_id)
    now[0] = 5.0
    assert ring.verify(key) is None and len(reads) == 2


def test_token_buckets_refill_at_the_rate_up_to_the_burst() -> None:
    now = [0.0]
    buckets = TokenBuckets(per_s=10.0, burst=5, clock=lambda: now[0])
    assert [buckets.take("k") for _ in range(5)] == [0.0] * 5
    assert buckets.take("k") == pytest.approx(0.1)
    now[0] = 0.25  # 2.5 tokens back
    assert [buckets.take("k") for _ in range(2)] == [0.0, 0.0]
    assert buckets.take("k") == pytest.approx(0.05)
    now[0] = 100.0  # a long pause refills to the burst, no more
    assert sum(buckets.take("k") == 0.0 for _ in range(10)) == 5
