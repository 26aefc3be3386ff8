"""The request mix of POST /v1/decide that both load generators send (bench_decide.py and
the locustfile): 5 % unknown ids (cold start); of the known ids, 10 % of all requests carry
candidate lists; a request id on a third. No request carries `context`: the default
contract has no feature with `source: request`, so any context key is a 422. (The
README's serving figures were measured with an earlier mix that sent context on 15 %.)"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

# Every list holds no_action, which needs neither eligibility rules nor consent, so none is
# answered with 422 (no candidate eligible) for a customer who consented to nothing.
CANDIDATES = [
    ["no_action", "email_10"],
    ["email_10", "email_20", "free_shipping", "no_action"],
    ["no_action", "email_10", "email_20", "free_shipping", "push_reminder"],
    ["free_shipping", "push_reminder", "no_action"],
]
UNKNOWN_SHARE = 0.05
CANDIDATES_SHARE = 0.10
REQUEST_ID_SHARE = 1 / 3


def decide_body(
    rng: random.Random,
    known_id: Callable[[random.Random], str],
    request_id: str,
    unknown_share: float = UNKNOWN_SHARE,
) -> dict[str, Any]:
    """One body of the mix; `known_id` draws a known customer id."""
    draw = rng.random()
    if draw < unknown_share:
        body: dict[str, Any] = {"customer_id": f"u{rng.randrange(10**9):09d}"}
    else:
        body = {"customer_id": known_id(rng)}
        if draw < unknown_share + CANDIDATES_SHARE:
            body["candidates"] = rng.choice(CANDIDATES)
    if rng.random() < REQUEST_ID_SHARE:
        body["request_id"] = request_id
    return body


def encoded_bodies(customer_ids: list[str], count: int, seed: int = 7) -> list[str]:
    """`count` bodies of the mix as compact JSON, the same for a given seed and ids."""
    rng = random.Random(seed)
    return [
        json.dumps(
            decide_body(rng, lambda r: r.choice(customer_ids), f"bench-{i}"), separators=(",", ":")
        )
        for i in range(count)
    ]


def customer_only_bodies(customer_ids: list[str], count: int, seed: int = 7) -> list[str]:
    """`count` bodies of a customer id alone (no candidate list: every action of the
    catalogue is a candidate), drawn from `customer_ids` with a fixed seed."""
    rng = random.Random(seed)
    return [
        json.dumps({"customer_id": rng.choice(customer_ids)}, separators=(",", ":"))
        for _ in range(count)
    ]
