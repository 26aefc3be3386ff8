"""The checks a commit must pass before anything is sent: a pure function of what is known.

`evaluate` runs them in a fixed order and answers the first that refuses, as a `Refusal`
naming the check, or None when all pass:

1. ``decision``: the decision id is one this deployment issued and its offer is known;
2. ``action``: the decision offered the action as eligible, the action goes by the request's
   channel, and that channel contacts someone (not ``none``);
3. ``ttl``: now, and ``send_at`` if given, are within ``ttl_seconds`` of the decision's time;
4. ``consent``: the customer granted consent for the channel, if its policy requires it;
5. ``creative``: the creative, if any, is approved;
6. ``quiet_hours``: the send time (``send_at``, or now) is outside the channel's quiet hours,
   in their time zone (a window may wrap midnight);
7. ``caps``: counted inside the action store's transaction, so that replicas committing at
   once count each other (`liftgate.governance.action_store`), with the same `Refusal`.

A request that is not valid whatever the state (``ttl_seconds`` above the configured
maximum, ``send_at`` in the past or without a zone) is not refused but rejected:
`InvalidActionRequest`, a 422 naming the field.

>>> import datetime as dt
>>> from configs.schema import ChannelPolicy, QuietHours
>>> from liftgate.governance.offers import Offer
>>> noon = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)
>>> offer = Offer("d1", "c1", ("email_10", "no_action"), noon)
>>> request = ActionRequestData(decision_id="d1", action="email_10", channel="email",
...     campaign_id="spring", idempotency_key="k1", ttl_seconds=3600)
>>> def check(now, offer=offer, **facts):
...     given = dict(channel_of={"email_10": "email", "no_action": "none"},
...                  policy=ChannelPolicy(quiet_hours=QuietHours(start="22:00", end="07:00")),
...                  consent_granted=True, creative_status=None, now=now, max_ttl_s=86400)
...     return evaluate(request, offer, **{**given, **facts})
>>> check(noon + dt.timedelta(minutes=5)) is None
True
>>> [check(noon + dt.timedelta(minutes=5), **facts).check for facts in (
...     {"offer": None}, {"consent_granted": False}, {"channel_of": {"email_10": "push"}})]
['decision', 'consent', 'action']
>>> check(noon + dt.timedelta(hours=2)).check
'ttl'
>>> evening = Offer("d1", "c1", ("email_10",), noon.replace(hour=21, minute=50))
>>> print(check(evening.ts + dt.timedelta(minutes=20), offer=evening).message)
22:10 UTC is within channel email's quiet hours (22:00–07:00 UTC); give a send_at outside them
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from zoneinfo import ZoneInfo

from configs.schema import NO_CHANNEL, ChannelPolicy, FrequencyCap, QuietHours
from liftgate.core.errors import InputError
from liftgate.governance.action_request import ActionRequestData
from liftgate.governance.offers import Offer

DECISION, ACTION, TTL, CONSENT, CREATIVE, QUIET_HOURS, CAPS = (
    "decision",
    "action",
    "ttl",
    "consent",
    "creative",
    "quiet_hours",
    "caps",
)
#: The checks of a commit, in the order they run.
CHECKS: Final = (DECISION, ACTION, TTL, CONSENT, CREATIVE, QUIET_HOURS, CAPS)
#: Not a check of the request: its idempotency key was used with a different request.
IDEMPOTENCY: Final = "idempotency"
APPROVED: Final = "approved"


@dataclass(frozen=True)
class Refusal:
    """Why a commit is refused: the check that failed and a message for the caller (never
    the customer id: refusals are logged and audited)."""

    check: str
    message: str


class InvalidActionRequest(InputError):
    """A request no state could make acceptable; `problems` are (field, what was expected)."""

    def __init__(self, problems: list[tuple[str, str]]):
        super().__init__("; ".join(f"{field}: expected {expected}" for field, expected in problems))
        self.problems = problems


def problems(request: ActionRequestData, *, now: dt.datetime, max_ttl_s: float) -> list:
    """What makes `request` invalid, as (field, what was expected); empty if nothing.

    >>> now = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)
    >>> request = ActionRequestData(decision_id="d1", action="a", channel="email",
    ...     campaign_id="c", idempotency_key="k", ttl_seconds=90_000,
    ...     send_at=dt.datetime(2026, 5, 1, 11))
    >>> [field for field, _ in problems(request, now=now, max_ttl_s=86_400)]
    ['ttl_seconds', 'send_at']
    """
    found = []
    if not 0 < request.ttl_seconds <= max_ttl_s:
        found.append(
            ("ttl_seconds", f"more than 0 and at most {max_ttl_s:g} (serving.actions.max_ttl_s)")
        )
    send_at = request.send_at
    if send_at is not None:
        if send_at.tzinfo is None:
            found.append(("send_at", "a date-time with a zone, e.g. 2026-05-01T12:00:00Z"))
        elif send_at < now:
            found.append(("send_at", f"a time from now ({now.isoformat()}) on"))
    return found


def expires_at(request: ActionRequestData, offer: Offer) -> dt.datetime:
    """The last moment the decision's action may be sent: `ttl_seconds` after the decision."""
    return offer.ts + dt.timedelta(seconds=request.ttl_seconds)


def _minutes(hh_mm: str) -> int:
    hours, minutes = hh_mm.split(":")
    return int(hours) * 60 + int(minutes)


def in_quiet_hours(moment: dt.datetime, quiet: QuietHours) -> bool:
    """Whether `moment` falls in [start, end) in the quiet hours' time zone; a window whose
    end is before its start wraps midnight.

    >>> night = QuietHours(start="22:00", end="07:00", timezone="Europe/Berlin")
    >>> [in_quiet_hours(dt.datetime(2026, 1, 1, h, tzinfo=dt.UTC), night) for h in (5, 6, 21)]
    [True, False, True]
    """
    local = moment.astimezone(ZoneInfo(quiet.timezone))
    minute = local.hour * 60 + local.minute
    start, end = _minutes(quiet.start), _minutes(quiet.end)
    if start < end:
        return start <= minute < end
    return minute >= start or minute < end


def evaluate(
    request: ActionRequestData,
    offer: Offer | None,
    *,
    channel_of: Mapping[str, str],
    policy: ChannelPolicy,
    consent_granted: bool,
    creative_status: str | None,
    now: dt.datetime,
    max_ttl_s: float,
) -> Refusal | None:
    """The first check (but ``caps``) that refuses the request, or None.

    `offer` is the decision's (None: unknown, or not issued by this deployment),
    `channel_of` each action's channel (the catalogue), `policy` the request channel's,
    `consent_granted` whether the offer's customer consented to that channel, and
    `creative_status` the status of the request's creative (None: none given, or unknown).
    `InvalidActionRequest` if the request is not valid (`problems`).
    """
    invalid = problems(request, now=now, max_ttl_s=max_ttl_s)
    if invalid:
        raise InvalidActionRequest(invalid)
    if offer is None:
        return Refusal(
            DECISION,
            f"decision {request.decision_id} is unknown: not issued by this deployment, or "
            "its offer is no longer kept",
        )
    refusal = _action(request, offer, channel_of)
    if refusal is not None:
        return refusal
    expiry = expires_at(request, offer)
    if now > expiry:
        return Refusal(
            TTL,
            f"decision {offer.decision_id} expired at {expiry.isoformat()} "
            f"(ttl_seconds {request.ttl_seconds:g} from the decision's time)",
        )
    if request.send_at is not None and request.send_at > expiry:
        return Refusal(
            TTL,
            f"send_at {request.send_at.isoformat()} is after decision {offer.decision_id} "
            f"expires at {expiry.isoformat()} (ttl_seconds {request.ttl_seconds:g})",
        )
    if policy.consent == "required" and not consent_granted:
        return Refusal(
            CONSENT, f"the customer has not granted consent for channel {request.channel}"
        )
    if request.creative_id is not None and creative_status != APPROVED:
        return Refusal(
            CREATIVE,
            f"creative {request.creative_id} is {creative_status or 'unknown'}: only approved "
            "creatives are sent (liftgate creative review)",
        )
    send_time = request.send_at or now
    if policy.quiet_hours is not None and in_quiet_hours(send_time, policy.quiet_hours):
        quiet = policy.quiet_hours
        local = send_time.astimezone(ZoneInfo(quiet.timezone))
        return Refusal(
            QUIET_HOURS,
            f"{local:%H:%M} {quiet.timezone} is within channel {request.channel}'s quiet hours "
            f"({quiet.start}–{quiet.end} {quiet.timezone}); give a send_at outside them",
        )
    return None


def _action(
    request: ActionRequestData, offer: Offer, channel_of: Mapping[str, str]
) -> Refusal | None:
    if request.action not in offer.actions:
        return Refusal(
            ACTION,
            f"action {request.action} was not offered as eligible by decision "
            f"{offer.decision_id} (offered: {', '.join(offer.actions)})",
        )
    channel = channel_of.get(request.action)
    if channel is None:
        return Refusal(ACTION, f"action {request.action} is no longer in the action catalogue")
    if channel == NO_CHANNEL:
        return Refusal(
            ACTION, f"action {request.action} contacts no one (channel none): nothing to commit"
        )
    if channel != request.channel:
        return Refusal(
            ACTION, f"action {request.action} goes by channel {channel}, not {request.channel}"
        )
    return None


def cap_refusal(cap: FrequencyCap, channel: str, count: int) -> Refusal:
    """The refusal of a commit that would exceed `cap`: `count` actions already count."""
    return Refusal(
        CAPS,
        f"the customer has {count} {channel} action(s) within {cap.window_hours:g} h: the "
        f"cap is {cap.max}",
    )
