"""The checks of a commit (liftgate/governance/checks.py): each check refuses what it should
and lets the rest through, in their fixed order; invalid requests are rejected, not refused;
quiet hours partition the day, wrapping midnight."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from configs.schema import ChannelPolicy, QuietHours
from liftgate.governance.action_request import ActionRequestData
from liftgate.governance.checks import (
    CHECKS,
    InvalidActionRequest,
    evaluate,
    expires_at,
    in_quiet_hours,
)
from liftgate.governance.offers import Offer

NOON = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)
OFFER = Offer("d1", "c1", ("email_10", "push_reminder", "no_action"), NOON)
REQUEST = ActionRequestData(
    decision_id="d1",
    action="email_10",
    channel="email",
    campaign_id="spring",
    idempotency_key="k1",
    ttl_seconds=3_600,
)
CHANNEL_OF = {"email_10": "email", "push_reminder": "push", "no_action": "none"}
NIGHT = QuietHours(start="22:00", end="07:00", timezone="Europe/Berlin")  # UTC+2 in May
SOON = NOON + dt.timedelta(minutes=10)


def check(request: ActionRequestData = REQUEST, **facts: Any) -> str | None:
    """The name of the check that refuses, or None; `facts` override a passing case."""
    given_facts: dict[str, Any] = {
        "offer": OFFER,
        "channel_of": CHANNEL_OF,
        "policy": ChannelPolicy(quiet_hours=NIGHT),
        "consent_granted": True,
        "creative_status": None,
        "now": SOON,
        "max_ttl_s": 86_400,
    }
    given_facts |= facts
    offer = given_facts.pop("offer")
    refusal = evaluate(request, offer, **given_facts)
    return None if refusal is None else refusal.check


def test_a_request_that_passes_every_check() -> None:
    assert check() is None


@pytest.mark.parametrize(
    ("case", "facts", "refused_by"),
    [
        ("unknown decision", {"offer": None}, "decision"),
        ("known decision", {}, None),
    ],
)
def test_decision(case, facts, refused_by) -> None:
    assert check(**facts) == refused_by, case


@pytest.mark.parametrize(
    ("case", "request_fields", "facts", "refused_by"),
    [
        ("not offered", {"action": "email_20"}, {}, "action"),
        ("offered, its channel", {}, {}, None),
        ("another channel than the action's", {"channel": "push"}, {}, "action"),
        ("the control contacts no one", {"action": "no_action", "channel": "none"}, {}, "action"),
        ("no longer in the catalogue", {}, {"channel_of": {}}, "action"),
        ("push offered, by push", {"action": "push_reminder", "channel": "push"}, {}, None),
    ],
)
def test_action(case, request_fields, facts, refused_by) -> None:
    assert check(replace(REQUEST, **request_fields), **facts) == refused_by, case


@pytest.mark.parametrize(
    ("case", "now", "send_at", "refused_by"),
    [
        ("within the ttl", NOON + dt.timedelta(seconds=3_600), None, None),
        ("a microsecond late", NOON + dt.timedelta(seconds=3_600, microseconds=1), None, "ttl"),
        ("send_at at the expiry", SOON, NOON + dt.timedelta(seconds=3_600), None),
        ("send_at after the expiry", SOON, NOON + dt.timedelta(seconds=3_601), "ttl"),
    ],
)
def test_ttl_counts_from_the_decisions_time(case, now, send_at, refused_by) -> None:
    request = replace(REQUEST, send_at=send_at)
    assert check(request, now=now) == refused_by, case


@pytest.mark.parametrize(
    ("case", "policy", "granted", "refused_by"),
    [
        ("required, not granted", ChannelPolicy(), False, "consent"),
        ("required, granted", ChannelPolicy(), True, None),
        ("not required", ChannelPolicy(consent="not_required"), False, None),
    ],
)
def test_consent(case, policy, granted, refused_by) -> None:
    assert check(policy=policy, consent_granted=granted) == refused_by, case


@pytest.mark.parametrize(
    ("case", "creative_id", "status", "refused_by"),
    [
        ("no creative", None, None, None),
        ("approved", "cr1", "approved", None),
        ("pending", "cr1", "pending", "creative"),
        ("rejected", "cr1", "rejected", "creative"),
        ("unknown", "cr1", None, "creative"),
    ],
)
def test_creative(case, creative_id, status, refused_by) -> None:
    request = replace(REQUEST, creative_id=creative_id)
    assert check(request, creative_status=status) == refused_by, case


@pytest.mark.parametrize(
    ("case", "now", "send_at", "refused_by"),
    [
        ("midday in Berlin", SOON, None, None),
        ("23:30 in Berlin", NOON.replace(hour=21, minute=30), None, "quiet_hours"),
        ("04:59 in Berlin, after midnight", NOON.replace(hour=2, minute=59), None, "quiet_hours"),
        ("07:00 in Berlin: the end is not quiet", NOON.replace(hour=5), None, None),
        ("now quiet, send_at after", NOON.replace(hour=4, minute=50), NOON.replace(hour=5), None),
        ("now fine, send_at quiet", SOON, NOON.replace(hour=20, minute=30), "quiet_hours"),
    ],
)
def test_quiet_hours_at_send_at_or_now_in_their_zone(case, now, send_at, refused_by) -> None:
    offer = replace(OFFER, ts=now)
    request = replace(REQUEST, send_at=send_at, ttl_seconds=86_400)
    assert check(request, offer=offer, now=now) == refused_by, case


def test_checks_run_in_their_order() -> None:
    """Everything wrong at once: each fix reveals the next check, in CHECKS order."""
    facts: dict[str, Any] = {
        "offer": None,
        "consent_granted": False,
        "creative_status": "pending",
        "now": NOON.replace(hour=21, minute=30),
    }
    request = replace(REQUEST, action="email_20", creative_id="cr1")
    seen = []
    fixes = [
        ("offer", replace(OFFER, ts=NOON.replace(hour=10))),
        ("action", "email_10"),
        ("offer", replace(OFFER, ts=NOON.replace(hour=21))),
        ("consent_granted", True),
        ("creative_status", "approved"),
    ]
    for name, value in fixes:
        seen.append(check(request, **facts))
        if name == "action":
            request = replace(request, action=value)
        else:
            facts[name] = value
    seen.append(check(request, **facts))
    assert seen == list(CHECKS[:-1])  # caps are the store's


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"ttl_seconds": 86_401}, "ttl_seconds"),
        ({"ttl_seconds": 0}, "ttl_seconds"),
        ({"send_at": dt.datetime(2026, 5, 1, 13)}, "send_at"),  # no zone
        ({"send_at": SOON - dt.timedelta(seconds=1)}, "send_at"),  # the past
    ],
)
def test_invalid_requests_are_rejected_naming_the_field(request_fields, field) -> None:
    with pytest.raises(InvalidActionRequest) as raised:
        check(replace(REQUEST, **request_fields), offer=None)  # before any check
    assert [name for name, _ in raised.value.problems] == [field]


def test_refusals_never_name_the_customer() -> None:
    for facts in ({"consent_granted": False}, {"offer": None}):
        refusal = evaluate(
            REQUEST,
            facts.get("offer", OFFER),
            channel_of=CHANNEL_OF,
            policy=ChannelPolicy(),
            consent_granted=facts.get("consent_granted", True),
            creative_status=None,
            now=SOON,
            max_ttl_s=86_400,
        )
        assert refusal is not None and OFFER.customer_id not in refusal.message


def test_expiry_is_ttl_after_the_decision() -> None:
    assert expires_at(REQUEST, OFFER) == NOON + dt.timedelta(hours=1)


HH_MM = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.integers(0, 59))
ZONES = st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"])
MOMENTS = st.datetimes(
    min_value=dt.datetime(2020, 1, 1),
    max_value=dt.datetime(2030, 12, 31),
    timezones=st.just(dt.UTC),
)


@given(start=HH_MM, end=HH_MM, zone=ZONES, moment=MOMENTS)
def test_a_window_and_its_reverse_partition_the_day(start, end, zone, moment) -> None:
    """[start, end) and [end, start) cover every minute exactly once, whichever wraps
    midnight: the wrap-around is the complement of the window that does not wrap."""
    if start == end:
        return
    window = QuietHours(start=start, end=end, timezone=zone)
    reverse = QuietHours(start=end, end=start, timezone=zone)
    assert in_quiet_hours(moment, window) != in_quiet_hours(moment, reverse)


@given(start=HH_MM, end=HH_MM, zone=ZONES, moment=MOMENTS)
def test_the_start_is_quiet_and_the_end_is_not(start, end, zone, moment) -> None:
    if start == end:
        return
    window = QuietHours(start=start, end=end, timezone=zone)
    local = moment.astimezone(ZoneInfo(zone))
    for hh_mm, quiet in ((start, True), (end, False)):
        hour, minute = map(int, hh_mm.split(":"))
        at = local.replace(hour=hour, minute=minute, second=0, microsecond=0, fold=0)
        if at.astimezone(dt.UTC).astimezone(local.tzinfo).hour != hour:
            continue  # a wall time skipped by a daylight-saving change
        assert in_quiet_hours(at, window) is quiet
