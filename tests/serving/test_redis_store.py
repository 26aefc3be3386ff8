"""The Redis online store answers as the embedded one does, for known and unknown customers,
with and without request context; it refuses features pushed for another contract."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from liftgate.core.contract import FeatureContract
from liftgate.core.errors import InputError
from liftgate.core.local_redis import LocalRedis
from serving.online_store import OnlineStore
from serving.redis_store import META_KEY, RedisOnlineStore, connect, push_to_redis


@pytest.fixture(scope="module")
def pushed(local_redis: LocalRedis, world, store: OnlineStore) -> str:
    url = local_redis.url(db=1)
    client = connect(url)
    client.flushdb()
    table = pa.Table.from_pandas(world.customers, preserve_index=False)
    batches: list[int] = []
    assert push_to_redis(client, table, store.contract, store.catalogue, batches.append) == len(
        world.customers
    )
    assert sum(batches) == len(world.customers) and len(batches) > 1  # pipelined in batches
    client.close()
    return url


def _redis_store(url: str, store: OnlineStore, **cache) -> RedisOnlineStore:
    return RedisOnlineStore.from_url(url, store.contract, store.catalogue, **cache)


def _assert_same(found, expected) -> None:
    np.testing.assert_allclose(found.features, expected.features, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(found.eligible, expected.eligible)
    assert found.cold_start == expected.cold_start
    expected_repairs = expected.repairs.counts if expected.repairs else None
    assert (found.repairs.counts if found.repairs else None) == expected_repairs


def test_lookups_equal_the_embedded_store(pushed: str, store: OnlineStore, world) -> None:
    redis_store = _redis_store(pushed, store)
    assert redis_store.size == len(world.customers)
    sample = world.customers["customer_id"].sample(300, random_state=0).tolist()
    for customer_id in [*sample, "nobody", "nobody else"]:
        _assert_same(redis_store.lookup(customer_id), store.lookup(customer_id))
        # again, from the replica's cache
        _assert_same(redis_store.lookup(customer_id), store.lookup(customer_id))
        assert redis_store.attributes(customer_id) == pytest.approx(store.attributes(customer_id))


def test_context_goes_through_the_contract_with_the_stored_attributes(
    local_redis: LocalRedis, world, device_store: OnlineStore
) -> None:
    url = local_redis.url(db=2)
    client = connect(url)
    table = pa.Table.from_pandas(world.customers, preserve_index=False)
    push_to_redis(client, table, device_store.contract, device_store.catalogue)
    redis_store = _redis_store(url, device_store)
    for customer_id in [*world.customers["customer_id"].head(20), "nobody"]:
        context = {"device": "ios"}
        _assert_same(
            redis_store.lookup(customer_id, context), device_store.lookup(customer_id, context)
        )
    client.close()


def test_a_lookup_may_change_its_arrays_without_changing_the_next(
    pushed: str, store: OnlineStore, world
) -> None:
    redis_store = _redis_store(pushed, store)
    customer_id = world.customers["customer_id"].iloc[0]
    for who in (customer_id, "nobody"):
        first = redis_store.lookup(who)
        first.features[:] = -1
        first.eligible[:] = False
        _assert_same(redis_store.lookup(who), store.lookup(who))


def test_without_a_cache_every_lookup_reads_redis(pushed: str, store: OnlineStore, world) -> None:
    redis_store = _redis_store(pushed, store, cache_size=0)
    customer_id = world.customers["customer_id"].iloc[1]
    _assert_same(redis_store.lookup(customer_id), store.lookup(customer_id))
    assert len(redis_store._cache) == 0


def test_an_empty_redis_names_the_push_command(local_redis: LocalRedis, store) -> None:
    url = local_redis.url(db=3)
    connect(url).flushdb()
    with pytest.raises(InputError, match="liftgate features push --from .* --to redis://"):
        _redis_store(url, store)


def test_features_of_another_contract_are_refused(pushed: str, store: OnlineStore) -> None:
    other = FeatureContract(store.contract.config.model_copy(update={"version": 2}))
    with pytest.raises(InputError, match="push them again"):
        RedisOnlineStore.from_url(pushed, other, store.catalogue)


def test_an_unreachable_redis_is_an_input_error(store: OnlineStore, free_port: int) -> None:
    with pytest.raises(InputError, match=f"cannot reach Redis at redis://127.0.0.1:{free_port}"):
        _redis_store(f"redis://127.0.0.1:{free_port}/0", store)


def test_the_push_is_described(pushed: str) -> None:
    meta = connect(pushed).hgetall(META_KEY)
    assert {b"contract", b"actions", b"customers", b"pushed_at"} <= set(meta)
