"""Stocking a home with a world: what the demo, the scenarios and the tests serve.

A world written by `World.write` holds its customers (``customers.parquet``) and their
consent (``consent.parquet``). `stock_home` makes a home serve them: the customers become
its online store, their consent goes into its consent store through the checks of
`liftgate consent import` (the same reader, the same store). Stocking again is harmless:
the same changes are stale the second time.

>>> import tempfile
>>> from liftgate.sim.world import World
>>> with tempfile.TemporaryDirectory() as tmp:
...     _ = World(seed=1, n_customers=1_000).write(Path(tmp) / "w", rows=1_000)
...     home = Home(Path(tmp) / "home")
...     first = stock_home(home, Path(tmp) / "w")
...     again = stock_home(home, Path(tmp) / "w")
...     served = home.customers.exists()
>>> served, first.applied, again.applied, again.stale
(True, 2000, 0, 2000)
"""

from __future__ import annotations

import shutil
from contextlib import closing
from pathlib import Path

from liftgate.core.home import Home
from liftgate.governance.consent import ConsentStore, ImportSummary
from liftgate.governance.consent_import import read_consent_file


def stock_home(home: Home, world_dir: Path) -> ImportSummary:
    """Serve the world written in `world_dir` from `home`: its customers are copied to the
    online store and its consent imported into the consent store."""
    home.customers.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(world_dir / "customers.parquet", home.customers)
    consent = read_consent_file(world_dir / "consent.parquet")
    with closing(ConsentStore(home.consent)) as store:
        return store.import_rows(consent.rows)
