"""liftgate.core.local_postgres: a throwaway PostgreSQL server on the loopback, for tests."""

from __future__ import annotations

import contextlib

import psycopg
import pytest

from liftgate.core import local_postgres
from liftgate.core.local_postgres import LocalPostgres, PostgresUnavailable


def test_a_server_listens_on_the_loopback_only_and_leaves_nothing_behind(
    local_postgres: LocalPostgres,
) -> None:
    with contextlib.closing(psycopg.connect(local_postgres.url("postgres"))) as db:
        (listening,) = db.execute("SHOW listen_addresses").fetchone()
        (fsync,) = db.execute("SHOW fsync").fetchone()
    assert (listening, fsync) == ("127.0.0.1", "on")

    with LocalPostgres() as second:  # a server of its own beside the session's
        root = second.root
        assert second.port != local_postgres.port and (root / "data").is_dir()
    assert not root.exists()


def test_without_the_server_binaries_it_says_how_to_install_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(local_postgres.shutil, "which", lambda name: None)
    monkeypatch.setattr(local_postgres.glob, "glob", lambda pattern: [])
    with pytest.raises(PostgresUnavailable, match="apt-get install -y postgresql"):
        LocalPostgres()
