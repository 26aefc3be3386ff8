"""The online store of a throw-away LIFTGATE_HOME: a world's customers, the ids known to it,
those who consented to a channel and those offered every action; the API keys the
benchmark sends; a copy of a prepared home for a service run in process."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from liftgate.core.home import Home
from liftgate.sim.world import stock_home

if TYPE_CHECKING:
    from configs.loader import LiftgateConfig


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


def offered_every_action(home: Home, config: LiftgateConfig) -> list[str]:
    """The customers of the home's online store who granted every channel that needs
    consent and meet every eligibility rule of `config`'s catalogue: a decision for one of
    them, without a candidate list, scores every action."""
    import pyarrow.parquet as pq

    from liftgate.core.catalogue import ActionCatalogue
    from liftgate.governance.consent import ConsentStore

    catalogue = ActionCatalogue(config.actions)
    table = pq.read_table(home.customers)
    columns = {name: table.column(name) for name in table.column_names}
    eligible = catalogue.eligibility_mask(columns, n_rows=table.num_rows).all(axis=1)
    channels = {c for c in catalogue.consent_channels if c is not None}
    ids = table.column("customer_id").to_pylist()
    with ConsentStore.reader(home.consent) as consent:
        return [
            c
            for c, ok in zip(ids, eligible, strict=True)
            if ok and channels <= consent.granted_channels(c)
        ]


def api_key_headers(home: Home, role: str) -> dict[str, str]:
    """The headers of requests with a new API key of `role` in the home's key store."""
    from serving.api_keys import KeyStore

    key = KeyStore.for_home(home).create(role, name="benchmark").key
    return {"Authorization": f"Bearer {key}"}


#: What `serving_copy` leaves out: written by the service, or not read by it.
NOT_SERVED = ("logs", "actions", "worlds", "deliveries", "audit", "run")


def serving_copy(home: Path, target: Path) -> Path:
    """A copy at `target` of what the service reads of `home` (online store, consent,
    registry, keys, state): a run in process writes its logs, offers and keys there."""
    shutil.copytree(home, target, ignore=lambda d, names: NOT_SERVED if Path(d) == home else ())
    return target
