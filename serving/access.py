"""Who may call which endpoint: API keys with roles and per-key rate limits, as a pure check.

| path | who |
| --- | --- |
| ``POST /v1/decide``, ``/v1/outcomes``, ``/v1/actions``, ``/v1/events`` | ``app`` |
| ``PUT /v1/consent/…`` | ``app`` |
| ``GET /v1/actions/…`` (an action's status and history) | ``app``, ``operator`` or ``admin`` |
| ``GET /v1/canary`` (the rollout split a replica serves) | ``operator`` or ``admin`` |
| ``GET /metrics`` | ``admin`` |
| ``GET /healthz``, ``GET /readyz`` | anyone (they say nothing a caller could use) |
| anything else: ``/openapi.json``, ``/docs``, unknown paths | any valid key |

`Access.check` answers None (let the request through) or the `Denial` the HTTP layer sends:
401 without a key, with a malformed Authorization header, or with an unknown or revoked key;
403 when the key's role may not call the path; 429 once the key's token bucket
(serving/rate_limit.py) is empty, with the whole seconds to wait. The ``analyst`` role has
no endpoint of its own yet: it reads the API's documentation.

Auth is on unless `serving.auth.enabled` is false or LIFTGATE_AUTH=off (development only):
then every endpoint is open and the service says so at start and in /healthz.

>>> key = ApiKey("0123456789ab", "checkout", APP, "2026-01-01T00:00:00+00:00", "alice")
>>> access = Access(verify={"lg_secret": key}.get, buckets=TokenBuckets(per_s=1.0, burst=1))
>>> access.check("/v1/decide", "Bearer lg_secret") is None
True
>>> [access.check(path, header).status for path, header in [
...     ("/v1/decide", None), ("/v1/decide", "Bearer lg_other"), ("/metrics", "Bearer lg_secret"),
...     ("/v1/outcomes", "Bearer lg_secret")]]
[401, 401, 403, 429]
>>> access.check("/healthz", None) is None, Access.off().check("/metrics", None) is None
(True, True)
>>> Access.closed().check("/openapi.json", "Bearer lg_secret").status
401
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from configs.schema import AuthSettings
from liftgate.core.errors import InputError
from liftgate.core.home import Home
from serving.api_keys import ADMIN, APP, OPERATOR, ROLES, ApiKey, KeyRing
from serving.rate_limit import TokenBuckets

logger = logging.getLogger(__name__)

#: The development switch: LIFTGATE_AUTH=off turns auth off whatever serving.yaml says.
AUTH_ENV: Final = "LIFTGATE_AUTH"
OFF_WARNING: Final = (
    "AUTH IS OFF (serving.auth.enabled: false or LIFTGATE_AUTH=off): every endpoint is "
    "open to anyone who can reach the port. For development only."
)

ANY_ROLE: Final = frozenset(ROLES)
#: The roles each path needs; None: open to all. A key ending in ``/`` is a prefix: it
#: covers the paths below it (path parameters: ``/v1/actions/{action_id}``). Paths not
#: listed need any valid key.
ROUTE_ROLES: Final[Mapping[str, frozenset[str] | None]] = {
    "/healthz": None,
    "/readyz": None,
    "/v1/decide": frozenset({APP}),
    "/v1/outcomes": frozenset({APP}),
    "/v1/events": frozenset({APP}),
    "/v1/actions": frozenset({APP}),
    "/v1/actions/": frozenset({APP, OPERATOR, ADMIN}),
    "/v1/consent/": frozenset({APP}),
    "/v1/canary": frozenset({OPERATOR, ADMIN}),
    "/metrics": frozenset({ADMIN}),
}
_PREFIXES: Final = sorted((p for p in ROUTE_ROLES if p.endswith("/")), key=len, reverse=True)


def roles_for(path: str) -> frozenset[str] | None:
    """The roles that may call `path`; None if it is open. The path itself first, then the
    longest prefix above it.

    >>> sorted(roles_for("/v1/actions")), sorted(roles_for("/v1/actions/a1"))
    (['app'], ['admin', 'app', 'operator'])
    >>> roles_for("/v1/consent/c0000042") == {APP}, roles_for("/v1/other") == ANY_ROLE
    (True, True)
    """
    roles = ROUTE_ROLES.get(path, ANY_ROLE)
    if roles is ANY_ROLE:  # not listed: is it below a prefix?
        for prefix in _PREFIXES:
            if path.startswith(prefix):
                return ROUTE_ROLES[prefix]
    return roles


@dataclass(frozen=True)
class Denial:
    """Why a request is refused: the HTTP status, a short `kind` and a message for the
    caller; for 429, the seconds to wait."""

    status: int
    kind: str
    message: str
    retry_after_s: int | None = None


MISSING = Denial(401, "missing_credentials", "expected the header `Authorization: Bearer <key>`")
MALFORMED = Denial(
    401, "invalid_credentials", "expected `Authorization: Bearer <key>` (the Bearer scheme)"
)
UNKNOWN = Denial(401, "invalid_key", "unknown or revoked API key")


def auth_enabled(settings: AuthSettings, environ: Mapping[str, str]) -> bool:
    """Whether keys are asked: serving.auth.enabled, unless LIFTGATE_AUTH says off or on.

    >>> auth_enabled(AuthSettings(), {}), auth_enabled(AuthSettings(), {AUTH_ENV: "off"})
    (True, False)
    """
    value = environ.get(AUTH_ENV, "").strip().lower()
    if not value:
        return settings.enabled
    if value not in ("on", "off"):
        raise InputError(f"expected off or on; got {environ[AUTH_ENV]!r}", parameter=AUTH_ENV)
    return value == "on"


class Access:
    """The check every request passes: `verify` finds the live key a secret is (a
    `KeyRing`'s), `buckets` rate-limits each key. Neither (`Access.off()`): auth is off."""

    def __init__(self, verify: Callable[[str], ApiKey | None] | None, buckets: TokenBuckets | None):
        self.verify = verify
        self.buckets = buckets

    @classmethod
    def off(cls) -> Access:
        return cls(None, None)

    @classmethod
    def closed(cls) -> Access:
        """No key is valid: the access of a process that has not set its own up yet."""
        return cls(lambda secret: None, None)

    @classmethod
    def for_home(
        cls, settings: AuthSettings, home: Home, environ: Mapping[str, str] = os.environ
    ) -> Access:
        """A replica's access: its key ring over the home's store and its own buckets."""
        if not auth_enabled(settings, environ):
            return cls.off()
        ring = KeyRing(home.api_keys, settings.key_cache_s)
        limit = settings.rate_limit
        return cls(ring.verify, TokenBuckets(limit.per_s, limit.burst))

    @property
    def enabled(self) -> bool:
        return self.verify is not None

    def announce(self) -> None:
        """Log how this replica lets requests in; loudly when anyone may."""
        if self.enabled:
            logger.info("API keys required on every endpoint but /healthz and /readyz")
        else:
            logger.warning(OFF_WARNING)

    def caller(self, authorization: str | None) -> str:
        """Who sent a request that `check` let through, as the audit log names it: the API
        key (``key:<id>``), or ``anonymous`` while auth is off.

        >>> key = ApiKey("0123456789ab", "checkout", APP, "2026-01-01T00:00:00+00:00", "alice")
        >>> Access({"lg_secret": key}.get, None).caller("Bearer lg_secret")
        'key:0123456789ab'
        """
        if self.verify is None or not authorization:
            return "anonymous"
        key = self.verify(authorization.partition(" ")[2].strip())
        return f"key:{key.key_id}" if key else "anonymous"

    def check(self, path: str, authorization: str | None) -> Denial | None:
        """None if a request for `path` with this Authorization header may go on, else why
        not."""
        roles = roles_for(path)
        if roles is None or self.verify is None:
            return None
        if not authorization:
            return MISSING
        scheme, _, secret = authorization.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            return MALFORMED
        key = self.verify(secret.strip())
        if key is None:
            return UNKNOWN
        if key.role not in roles:
            needed = " or ".join(role for role in ROLES if role in roles)
            return Denial(
                403, "forbidden", f"API key {key.key_id} has role {key.role}; {path} needs {needed}"
            )
        wait_s = self.buckets.take(key.key_id)
        if wait_s:
            retry = max(1, math.ceil(wait_s))
            return Denial(
                429,
                "rate_limited",
                f"API key {key.key_id} sent more than {self.buckets.per_s:g} requests/s (burst "
                f"{self.buckets.burst}) to this replica; retry after {retry} s",
                retry,
            )
        return None
