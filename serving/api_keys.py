"""API keys: who may call the HTTP API, and in which role.

A key is ``lg_<key id>_<secret>``: a public id of 12 hex digits and a secret of 32 random
bytes (URL-safe base64). `KeyStore.create` returns it once. The store (SQLite at
`Home.api_keys`, written by `liftgate keys`) keeps the id, the role, a name, who created or
revoked it and when, and a salted HMAC-SHA256 of the secret: never the key itself.

A replica holds a `KeyRing`, the live keys by id. Every `recheck_s` seconds it looks at the
store's SQLite header and reads the keys again if the store changed: a new or a revoked key
reaches every replica within that time. Checking a key is a dict lookup by its id, one HMAC
and a constant-time compare.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as directory:
...     store = KeyStore(Path(directory) / "keys.db")
...     new = store.create(APP, name="checkout", who="alice")
...     before = KeyRing(store.path).verify(new.key)
...     revoked = store.revoke(new.record.key_id, who="bob")
...     after = KeyRing(store.path).verify(new.key)
>>> before.role, before.name, revoked.revoked_by, after
('app', 'checkout', 'bob', None)
>>> new.key.startswith(f"lg_{new.record.key_id}_"), len(new.key) == KEY_LENGTH
(True, True)
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal, get_args

from liftgate.core import audit
from liftgate.core.errors import InputError
from liftgate.core.home import Home
from liftgate.core.sqlite import SharedDatabase

logger = logging.getLogger(__name__)

#: What a key may do (serving/access.py maps roles to endpoints).
Role = Literal["app", "analyst", "operator", "admin"]
ROLES: Final[tuple[str, ...]] = get_args(Role)
APP, ANALYST, OPERATOR, ADMIN = ROLES

PREFIX: Final = "lg_"
_ID_HEX = 12
_SECRET_BYTES = 32
_SALT_BYTES = 16
_SEPARATOR = len(PREFIX) + _ID_HEX  # the position of the ``_`` between id and secret
#: ``lg_`` + id + ``_`` + the secret's base64 (43 characters for 32 bytes).
KEY_LENGTH: Final = _SEPARATOR + 1 + len(secrets.token_urlsafe(_SECRET_BYTES))

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    salt BLOB NOT NULL,
    digest BLOB NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at TEXT,
    revoked_by TEXT
)
"""
_FIELDS = "key_id, name, role, created_at, created_by, revoked_at, revoked_by"


def _digest(salt: bytes, secret: str) -> bytes:
    # HMAC-SHA256 keyed by a per-key random salt, not a slow password hash (scrypt, argon2):
    # those make guessing a weak password from a stolen hash expensive, but the secret is
    # 256 random bits that no guessing can find, whatever the hash costs. A fast hash loses
    # nothing and keeps the check near a microsecond on every request; the salt makes each
    # stored digest unrelated to any other and to any precomputed table.
    return hmac.digest(salt, secret.encode(), hashlib.sha256)


@dataclass(frozen=True)
class ApiKey:
    """A stored key, without its secret."""

    key_id: str
    name: str
    role: str
    created_at: str
    created_by: str
    revoked_at: str | None = None
    revoked_by: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return asdict(self)


@dataclass(frozen=True)
class NewKey:
    """A key just created: `key` is shown once and stored nowhere."""

    key: str
    record: ApiKey


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class KeyStore:
    """The key store's one writer (`liftgate keys`, the demo); each change is audit-logged
    when `audit_log` is given."""

    def __init__(self, path: Path, audit_log: Path | None = None):
        self.path = path
        self.audit_log = audit_log

    @classmethod
    def for_home(cls, home: Home) -> KeyStore:
        return cls(home.api_keys, home.audit_log)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        if not self.path.exists():  # readable by its owner only, like the other secrets
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        # The rollback journal, not WAL: a commit must change the file header's counter,
        # which is how a replica's KeyRing sees it (`KeyRing._version`). FULL is SQLite's
        # default. A connection per change: the store's writers are short-lived commands.
        with (
            SharedDatabase(self.path, _SCHEMA, synchronous="FULL", journal_mode="DELETE") as db,
            db.write() as connection,
        ):
            yield connection

    def create(self, role: str, name: str | None = None, who: str | None = None) -> NewKey:
        if role not in ROLES:
            raise InputError(f"expected one of {', '.join(ROLES)}; got {role!r}", parameter="role")
        who = who or audit.current_user()
        key_id, secret = secrets.token_hex(_ID_HEX // 2), secrets.token_urlsafe(_SECRET_BYTES)
        salt = secrets.token_bytes(_SALT_BYTES)
        record = ApiKey(key_id, name or "", role, _now(), who)
        with self._transaction() as connection:
            connection.execute(
                "INSERT INTO api_keys (key_id, name, role, salt, digest, created_at, created_by)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key_id, record.name, role, salt, _digest(salt, secret), record.created_at, who),
            )
        self._audit("api_key.create", who, record)
        return NewKey(f"{PREFIX}{key_id}_{secret}", record)

    def list(self) -> list[ApiKey]:
        """Every key, revoked ones too, oldest first."""
        if not self.path.exists():
            return []
        with self._transaction() as connection:
            rows = connection.execute(
                f"SELECT {_FIELDS} FROM api_keys ORDER BY created_at, key_id"
            ).fetchall()
        return [ApiKey(*row) for row in rows]

    def revoke(self, key_id: str, who: str | None = None) -> ApiKey:
        """Revoke a key (a key revoked before stays as it was); an unknown id is an
        InputError."""
        who = who or audit.current_user()
        with self._transaction() as connection:
            changed = connection.execute(
                "UPDATE api_keys SET revoked_at = ?, revoked_by = ?"
                " WHERE key_id = ? AND revoked_at IS NULL",
                (_now(), who, key_id),
            ).rowcount
            row = connection.execute(
                f"SELECT {_FIELDS} FROM api_keys WHERE key_id = ?", (key_id,)
            ).fetchone()
        if row is None:
            raise InputError(
                f"no API key {key_id!r} in {self.path} (`liftgate keys list` shows them)"
            )
        record = ApiKey(*row)
        if changed:
            self._audit("api_key.revoke", who, record)
        return record

    def _audit(self, action: str, who: str, record: ApiKey) -> None:
        if self.audit_log is not None:
            audit.append(
                self.audit_log,
                action,
                who=who,
                key_id=record.key_id,
                name=record.name,
                role=record.role,
            )


@dataclass(frozen=True)
class _Live:
    salt: bytes
    digest: bytes
    key: ApiKey


_UNREAD = object()


class KeyRing:
    """A replica's view of the live keys. Once `recheck_s` has passed since it last looked,
    the next check looks at the store and reads it again if it changed, so a revocation
    reaches the replica within that time. Without a store, or before its first key, no key
    is valid. `clock` is the monotonic time (tests pass their own)."""

    def __init__(
        self, path: Path, recheck_s: float = 1.0, clock: Callable[[], float] = time.monotonic
    ):
        self.path = path
        self.recheck_s = recheck_s
        self._clock = clock
        self._live: dict[str, _Live] = {}
        self._looked_at: float | None = None
        self._read_version: object = _UNREAD

    def __len__(self) -> int:
        self._refresh()
        return len(self._live)

    def verify(self, key: str) -> ApiKey | None:
        """The live key that `key` is, or None (malformed, unknown or revoked)."""
        self._refresh()
        if len(key) != KEY_LENGTH or not key.startswith(PREFIX) or key[_SEPARATOR] != "_":
            return None
        found = self._live.get(key[len(PREFIX) : _SEPARATOR])
        secret = key[_SEPARATOR + 1 :]
        if found is None or not hmac.compare_digest(found.digest, _digest(found.salt, secret)):
            return None
        return found.key

    def _refresh(self) -> None:
        now = self._clock()
        if self._looked_at is not None and now - self._looked_at < self.recheck_s:
            return
        self._looked_at = now
        version = self._version()
        if version == self._read_version:
            return
        try:
            self._live = self._read() if version is not None else {}
        except sqlite3.Error as exc:  # locked by a writer, say: keep what we had, retry later
            logger.warning("could not read the API keys in %s: %s", self.path, exc)
            return
        self._read_version = version

    def _version(self) -> tuple[int, bytes] | None:
        """What changes when a key is created or revoked: the store file's inode and the
        file change counter of its SQLite header (bytes 24–27, incremented by every commit
        in the rollback-journal mode the store uses). None without a store. Reading 28
        bytes takes microseconds; reading the keys takes a millisecond a thousand keys."""
        try:
            with self.path.open("rb") as handle:
                return os.fstat(handle.fileno()).st_ino, handle.read(28)[24:]
        except FileNotFoundError:
            return None

    def _read(self) -> dict[str, _Live]:
        # Read-only, and a short wait for a writer's lock: this runs on the request path.
        connection = sqlite3.connect(f"{self.path.as_uri()}?mode=ro", uri=True, timeout=0.05)
        try:
            rows = connection.execute(
                f"SELECT salt, digest, {_FIELDS} FROM api_keys WHERE revoked_at IS NULL"
            ).fetchall()
        finally:
            connection.close()
        return {row[2]: _Live(row[0], row[1], ApiKey(*row[2:])) for row in rows}
