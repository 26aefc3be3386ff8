"""Decision ids that say who issued them, and when: the time, a random part, a short HMAC.

An id is 40 hex digits: the issue time in milliseconds since the epoch (12), a random part
(20) and an HMAC of both (8). `POST /v1/outcomes` flags outcomes for decisions this
deployment never issued, and dates an outcome against its decision's time. Checking the
id's MAC answers both in microseconds on any replica, where looking the id up in the log
would scan files (and miss another replica's unflushed decisions). The join of outcomes with
the decision log (`experiments.logs.reader.orphan_outcomes`) stays the authoritative answer.
The MAC covers the time, so a caller cannot move it; ids of the earlier format (random and
MAC, no time) are not recognised.

>>> import datetime as dt
>>> ids = DecisionIds(b"secret")
>>> noon = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)
>>> decision_id = ids.new(noon)
>>> ids.issued_at(decision_id) == noon, ids.issued("0" * 40)
(True, False)
>>> DecisionIds(b"other").issued_at(decision_id) is None
True
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import secrets
import threading
import time

from liftgate.core.home import Home
from liftgate.core.jsonstate import create_once

_KEY_BYTES = 32
_TIME_HEX = 12  # milliseconds since the epoch: enough until the year 10889
_RANDOM_HEX = 20
_MAC_HEX = 8
_MAC_BYTES = _MAC_HEX // 2
_RANDOM_BYTES = _RANDOM_HEX // 2
_RANDOM_BUFFER = _RANDOM_BYTES * 400
_ID_HEX = _TIME_HEX + _RANDOM_HEX + _MAC_HEX
_MAC_DOMAIN = b"decision-id:time-random:"  # an earlier format's MAC does not verify
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class DecisionIds:
    def __init__(self, key: bytes):
        self._keyed = hmac.new(key, _MAC_DOMAIN, hashlib.sha256)
        # Random parts read from the kernel (`os.urandom`, what `secrets` reads) a page at
        # a time, not one system call a decision.
        self._random = b""
        self._random_used = 0
        self._random_lock = threading.Lock()

    @classmethod
    def for_home(cls, home: Home) -> DecisionIds:
        """The deployment's key, created once under LIFTGATE_HOME and shared by replicas
        (replicas that start together all read the one whole key that was created)."""
        key = create_once(home.decision_ids_key, secrets.token_bytes(_KEY_BYTES))
        if len(key) != _KEY_BYTES:
            raise ValueError(
                f"{home.decision_ids_key}: expected a {_KEY_BYTES}-byte key; found {len(key)} "
                "bytes (delete it for a new key: outcomes of earlier decisions are then "
                "flagged unknown)"
            )
        return cls(key)

    def _mac(self, body: str) -> str:
        # A copy of the HMAC state keyed and fed the domain once: 1.2 µs, against 2.4 µs
        # for an HMAC computed from the key each time.
        mac = self._keyed.copy()
        mac.update(body.encode())
        return mac.digest()[:_MAC_BYTES].hex()

    def new(self, at: dt.datetime | None = None) -> str:
        """A new id issued at `at` (default: now; kept to the millisecond)."""
        if at is None:
            millis = time.time_ns() // 1_000_000  # the clock of datetime.now, without one
        else:
            millis = (at - _EPOCH) // dt.timedelta(milliseconds=1)
        body = f"{millis:0{_TIME_HEX}x}" + self._random_part()
        return body + self._mac(body)

    def _random_part(self) -> str:
        with self._random_lock:
            start = self._random_used
            if start == len(self._random):
                self._random, start = os.urandom(_RANDOM_BUFFER), 0
            self._random_used = start + _RANDOM_BYTES
            part = self._random[start : start + _RANDOM_BYTES]
        return part.hex()

    def issued_at(self, decision_id: str) -> dt.datetime | None:
        """When this deployment issued `decision_id` (UTC), or None if it did not issue it."""
        if len(decision_id) != _ID_HEX:
            return None
        body, mac = decision_id[:-_MAC_HEX], decision_id[-_MAC_HEX:]
        if not hmac.compare_digest(self._mac(body).encode(), mac.encode()):  # any text
            return None
        return _EPOCH + dt.timedelta(milliseconds=int(body[:_TIME_HEX], 16))

    def issued(self, decision_id: str) -> bool:
        return self.issued_at(decision_id) is not None
