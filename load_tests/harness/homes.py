"""The online store of a throw-away LIFTGATE_HOME: a world's customers, the ids known to it
and those who consented to a channel; the API keys the benchmark sends."""

from __future__ import annotations

from pathlib import Path

from liftgate.core.home import Home
from liftgate.sim.world import stock_home


def fill_online_store(world: Path, home: Home) -> None:
    """Serve the world's customers as the home's online store, with their consent."""
    stock_home(home, world)


def known_customer_ids(home: Home) -> list[str]:
    """Every customer id of the home's online store."""
    import pyarrow.parquet as pq

    table = pq.read_table(home.customers, columns=["customer_id"])
    return table.column("customer_id").to_pylist()


def consented_customer_ids(home: Home, channel: str) -> list[str]:
    """The customers of the home's online store who granted `channel` in its consent store."""
    from liftgate.governance.consent import ConsentStore

    with ConsentStore.reader(home.consent) as consent:
        return [c for c in known_customer_ids(home) if channel in consent.granted_channels(c)]


def api_key_headers(home: Home, role: str) -> dict[str, str]:
    """The headers of requests with a new API key of `role` in the home's key store."""
    from serving.api_keys import KeyStore

    key = KeyStore.for_home(home).create(role, name="benchmark").key
    return {"Authorization": f"Bearer {key}"}
