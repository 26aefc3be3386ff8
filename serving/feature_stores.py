"""Which online store serving reads (serving.yaml ``online_store``), opening it, and the
check `liftgate serve` makes before it starts Ray: is the store there, and filled?

- ``kind: embedded``: ``customers_path`` (default LIFTGATE_HOME/online_store/customers.parquet),
  read whole into each replica (serving.online_store).
- ``kind: redis``: the server at ``url`` (serving.redis_store).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from configs.loader import LiftgateConfig
from liftgate.core.catalogue import ActionCatalogue
from liftgate.core.contract import FeatureContract
from liftgate.core.errors import InputError
from liftgate.core.home import Home
from serving.online_store import CUSTOMER_ID, OnlineStore
from serving.redis_store import RedisOnlineStore

#: How a user fills the embedded store.
PUSH_COMMAND = "liftgate features push --from CUSTOMERS.parquet"


def customers_path(config: LiftgateConfig, home: Home) -> Path:
    configured = config.serving.customers_path
    return Path(configured) if configured else home.customers


def open_online_store(
    config: LiftgateConfig, home: Home, contract: FeatureContract, catalogue: ActionCatalogue
) -> OnlineStore | RedisOnlineStore:
    settings = config.serving.online_store
    if settings.kind == "redis":
        assert settings.url is not None  # the schema requires it
        return RedisOnlineStore.from_url(
            settings.url, contract, catalogue, settings.cache_ttl_s, settings.cache_size
        )
    path = customers_path(config, home)
    if not path.exists():
        raise InputError(missing_store_message(path))
    return OnlineStore.from_parquet(path, contract, catalogue)


def missing_store_message(path: Path) -> str:
    return (
        f"no online store: {path} does not exist; fill it with `{PUSH_COMMAND}` "
        "(a world's customers: `liftgate features push --from WORLD_DIR/customers.parquet`)"
    )


def check_online_store(config: LiftgateConfig, home: Home) -> None:
    """Raise an InputError naming the store and the command that fills it, unless the
    configured store is there and filled for this contract. Cheap: the embedded file's
    schema is read, not its rows; Redis answers one HGETALL."""
    contract = FeatureContract(config.features)
    catalogue = ActionCatalogue(config.actions)
    settings = config.serving.online_store
    if settings.kind == "redis":
        store = open_online_store(config, home, contract, catalogue)
        store.close()
        return
    path = customers_path(config, home)
    if not path.exists():
        raise InputError(missing_store_message(path))
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise InputError(f"the online store {path} is not a Parquet file ({exc})") from exc
    if CUSTOMER_ID not in schema.names:
        raise InputError(
            f"the online store {path} lacks the {CUSTOMER_ID!r} column; "
            f"fill it with `{PUSH_COMMAND}`"
        )
