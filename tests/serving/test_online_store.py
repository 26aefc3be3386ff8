import numpy as np

from serving.online_store import OnlineStore


def test_lookup_of_a_known_customer_equals_the_row_transform(store: OnlineStore, world) -> None:
    for record in world.customers.head(200).to_dict("records"):
        found = store.lookup(record["customer_id"])
        row, _ = store.contract.transform_row(record)
        assert not found.cold_start
        # the store encodes all customers at once, transform_row one: log1p may differ by an ulp
        np.testing.assert_allclose(found.features, row, rtol=1e-14, atol=0)
        expected = store.catalogue.eligibility_mask({k: [v] for k, v in record.items()})[0]
        np.testing.assert_array_equal(found.eligible, expected)


def test_unknown_customer_gets_contract_defaults(store: OnlineStore) -> None:
    found = store.lookup("nobody")
    defaults, _ = store.contract.transform_row({})
    assert found.cold_start
    np.testing.assert_array_equal(found.features, defaults)
    assert found.repairs.by_kind()["missing"] == len(store.contract.names)


def test_unknown_customers_are_encoded_once_each_lookup_its_own_copy(store: OnlineStore) -> None:
    """What the store encoded at load for customers it does not know is what encoding no
    attributes gives now; a lookup may change its arrays and repairs without changing the
    next one's."""
    first = store.lookup("nobody")
    fresh = store.encode({}, cold_start=True)
    np.testing.assert_array_equal(first.features, fresh.features)
    np.testing.assert_array_equal(first.eligible, fresh.eligible)
    assert first.repairs.counts == fresh.repairs.counts
    first.features[:] = -1
    first.eligible[:] = False
    first.repairs.add("device", "missing", 5)
    second = store.lookup("someone else")
    np.testing.assert_array_equal(second.features, fresh.features)
    np.testing.assert_array_equal(second.eligible, fresh.eligible)
    assert second.repairs.counts == fresh.repairs.counts


def test_request_context_goes_through_the_contract_and_eligibility(
    device_store: OnlineStore, world
) -> None:
    """A request-time feature (here `device`, marked source: request) is encoded and
    decides eligibility like a stored one."""
    customer = world.customers.iloc[0]
    device = "desktop" if customer["device"] != "desktop" else "ios"
    found = device_store.lookup(customer["customer_id"], {"device": device})
    column = device_store.contract.names.index("device")
    categories = device_store.contract.specs[column].categories
    assert found.features[column] == categories.index(device)
    push = device_store.catalogue.index["push_reminder"]
    assert found.eligible[push] == (device != "desktop")


def test_lookups_do_not_share_memory_with_the_store(store: OnlineStore, world) -> None:
    customer_id = world.customers["customer_id"].iat[0]
    first = store.lookup(customer_id)
    first.features[:] = -1
    assert (store.lookup(customer_id).features != -1).any()
