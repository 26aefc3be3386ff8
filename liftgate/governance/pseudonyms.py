"""Pseudonyms: how the audit log names a customer without holding their id.

The audit log is hash-chained, so no record can be rewritten when a customer is erased;
it therefore never holds a customer id, only an HMAC-SHA256 of it under the deployment's
key (`Home.pseudonyms_key`, created once). The same customer always gets the same pseudonym,
so an auditor can follow one customer's records (`Pseudonyms.of` the id they are asked
about); without the key, a pseudonym cannot be traced back to an id, nor guessed from a
list of ids.

>>> pseudonyms = Pseudonyms(b"k" * 32)
>>> pseudonyms.of("c0000042") == pseudonyms.of("c0000042"), len(pseudonyms.of("c0000042"))
(True, 16)
>>> pseudonyms.of("c0000042") == Pseudonyms(b"x" * 32).of("c0000042")
False
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from liftgate.core.home import Home
from liftgate.core.jsonstate import create_once

_KEY_BYTES = 32
_HEX = 16  # 64 bits: no two of a few billion customers share one, in all likelihood
_DOMAIN = b"customer-pseudonym:"


class Pseudonyms:
    def __init__(self, key: bytes):
        self._key = key

    @classmethod
    def for_home(cls, home: Home) -> Pseudonyms:
        """The deployment's key, created once under LIFTGATE_HOME (processes that race to
        create it all read the one whole key that was created)."""
        key = create_once(home.pseudonyms_key, secrets.token_bytes(_KEY_BYTES))
        if len(key) != _KEY_BYTES:
            raise ValueError(
                f"{home.pseudonyms_key}: expected a {_KEY_BYTES}-byte key; found {len(key)} "
                "bytes (a new key gives every customer a new pseudonym: the audit records "
                "written under the old one no longer match)"
            )
        return cls(key)

    def of(self, customer_id: str) -> str:
        """The customer's pseudonym: 16 hex digits."""
        digest = hmac.new(self._key, _DOMAIN + customer_id.encode(), hashlib.sha256)
        return digest.hexdigest()[:_HEX]
