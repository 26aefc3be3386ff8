"""Decision ids that say who issued them: a random part and a short HMAC of it.

`POST /v1/outcomes` flags outcomes for decisions this deployment never issued. Checking the
id's MAC answers that in microseconds on any replica, where looking the id up in the log
would scan files (and miss another replica's unflushed decisions). The join of outcomes with
the decision log (`experiments.logs.reader.orphan_outcomes`) stays the authoritative answer.

>>> ids = DecisionIds(b"secret")
>>> decision_id = ids.new()
>>> ids.issued(decision_id), ids.issued("0" * 40), DecisionIds(b"other").issued(decision_id)
(True, False, False)
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

from liftgate.core.home import Home

_RANDOM_HEX = 32
_MAC_HEX = 8


class DecisionIds:
    def __init__(self, key: bytes):
        self._key = key

    @classmethod
    def for_home(cls, home: Home) -> DecisionIds:
        """The deployment's key, created once under LIFTGATE_HOME and shared by replicas."""
        path = home.decision_ids_key
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(secrets.token_bytes(32))
        return cls(path.read_bytes())

    def _mac(self, random_part: str) -> str:
        digest = hmac.new(self._key, random_part.encode(), hashlib.sha256).hexdigest()
        return digest[:_MAC_HEX]

    def new(self) -> str:
        random_part = secrets.token_hex(_RANDOM_HEX // 2)
        return random_part + self._mac(random_part)

    def issued(self, decision_id: str) -> bool:
        if len(decision_id) != _RANDOM_HEX + _MAC_HEX:
            return False
        random_part, mac = decision_id[:_RANDOM_HEX], decision_id[_RANDOM_HEX:]
        return hmac.compare_digest(self._mac(random_part), mac)
