"""The canary router: sticky variants, model routing in the service, the weights file."""

import asyncio
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from configs.loader import load_config
from experiments.canary import CanarySplit
from experiments.canary_state import read_split, write_split
from experiments.logs.reader import read_decisions
from liftgate.core.home import Home
from liftgate.core.jsonstate import UnreadableDocument
from liftgate.core.vocabulary import BASELINE, CANARY, STABLE
from serving.api_models import DecideRequest
from serving.components import Components
from serving.metrics import ServingMetrics

CUSTOMERS = [f"customer-{i}" for i in range(4_000)]


def split(weight: float, baseline: bool = True, **overrides) -> CanarySplit:
    return CanarySplit(
        **{
            "rollout": "r",
            "salt": "r",
            "weight": weight,
            "baseline": baseline,
            "challenger": "7",
            **overrides,
        }
    )


@given(st.floats(0.01, 0.5), st.floats(0.01, 0.5), st.booleans())
def test_a_canary_customer_stays_in_the_canary_as_the_weight_grows(a, b, baseline) -> None:
    small, large = split(min(a, b), baseline), split(max(a, b), baseline)
    for customer in CUSTOMERS[:300]:
        if small.variant(customer) == CANARY:
            assert large.variant(customer) == CANARY
        if baseline and small.variant(customer) == BASELINE:
            assert large.variant(customer) == BASELINE


def test_shares_match_the_weight_and_salts_are_independent() -> None:
    variants = [split(0.2).variant(c) for c in CUSTOMERS]
    assert variants.count(CANARY) / len(CUSTOMERS) == pytest.approx(0.2, abs=0.02)
    assert variants.count(BASELINE) / len(CUSTOMERS) == pytest.approx(0.2, abs=0.02)
    without = [split(0.2, baseline=False).variant(c) for c in CUSTOMERS]
    assert BASELINE not in without and without.count(STABLE) > 0.75 * len(CUSTOMERS)
    other = [split(0.2, salt="other").variant(c) for c in CUSTOMERS]
    both = sum(a == b == CANARY for a, b in zip(variants, other, strict=True))
    assert both / len(CUSTOMERS) == pytest.approx(0.04, abs=0.015)


def test_a_baseline_needs_a_weight_of_at_most_a_half() -> None:
    with pytest.raises(ValueError, match="baseline"):
        split(0.6)
    assert split(1.0).variant("anyone") == CANARY


def test_the_weights_file_keeps_the_split_and_counts_revisions(tmp_path) -> None:
    assert read_split(Home(tmp_path)) == (None, 0)
    written = write_split(Home(tmp_path), split(0.05))
    assert written.revision == 1 and read_split(Home(tmp_path)) == (written, 1)
    assert write_split(Home(tmp_path), None) is None
    assert read_split(Home(tmp_path)) == (None, 2)


CORRUPT = {
    "not serving weights": '{"revision": 3, "split": {"weight": 2}}',
    "not a JSON document": '{"revision": 3, "spl',
}


@pytest.mark.parametrize("problem", CORRUPT)
def test_an_unreadable_weights_file_is_named_and_the_next_write_replaces_it(
    tmp_path, problem
) -> None:
    home = Home(tmp_path)
    write_split(home, split(0.05))
    home.serving_weights.write_text(CORRUPT[problem])
    with pytest.raises(UnreadableDocument, match=f"serving.json: {problem}"):
        read_split(home)

    before_ms = time.time_ns() // 1_000_000
    written = write_split(home, None)  # a rollback is not blocked by the bad file
    split_read, revision = read_split(home)
    assert split_read is written is None
    assert revision >= before_ms  # counted from the clock: a revision no reader has seen
    assert write_split(home, split(0.1)).revision == revision + 1


def test_a_replica_keeps_its_split_while_the_file_is_unreadable(tmp_path, caplog) -> None:
    home = Home(tmp_path)
    components = Components(
        load_config(), home, ServingMetrics(), load_store=False, load_model=False
    )
    applied = write_split(home, split(0.05))
    components._load_once()
    assert components.canary() == applied
    home.serving_weights.write_text('{"revision": 9, "spl')
    components._load_once()  # no exception: the loader goes on to its other work
    assert components.canary() == applied
    assert "serving.json: not a JSON document" in caplog.text
    assert "keeping the canary split applied" in caplog.text
    replaced = write_split(home, None)
    components._load_once()
    assert components.canary() is replaced is None and components.split_revision > 9


def test_the_service_scores_canary_customers_with_the_challenger(
    make_service, stages, tmp_path
) -> None:
    seen = []
    score = stages.score

    async def recording_score(features, codes, model_ref=None):
        seen.append(model_ref)
        return await score(features, codes, model_ref)

    current = split(0.3)
    service = make_service(score=recording_score, canary=lambda: current)
    customers = [f"c{i:07d}" for i in range(1, 201)]
    answers = [
        asyncio.run(service.decide(DecideRequest(customer_id=c), trace_id="t" * 32))
        for c in customers
    ]
    for customer, answer, ref in zip(customers, answers, seen, strict=True):
        variant = current.variant(customer)
        assert answer["experiment"] == "rollout/r" and answer["arm"] == variant
        assert ref == ("7" if variant == CANARY else None)
    service.decision_log.flush()
    logged = read_decisions(Home(tmp_path).decision_log).to_pandas()
    assert set(logged["arm"]) == {CANARY, BASELINE, STABLE}
