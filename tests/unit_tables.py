"""One row per unit for the tests of analyses: an arm, a pre-period revenue, a conversion that
the pre-period and the `treatment` arm raise (×1.2), revenue, orders."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def unit_table(arm: np.ndarray, rng: np.random.Generator) -> pa.Table:
    """The units of `arm` (one label each), their metrics drawn from `rng`."""
    n = len(arm)
    pre = rng.gamma(2.0, 10.0, n)
    converted = rng.random(n) < (0.05 + 0.004 * pre) * np.where(arm == "treatment", 1.2, 1.0)
    return pa.table(
        {
            "arm": arm,
            "converted": converted.astype(np.int64),
            "revenue": converted * (pre + rng.gamma(2.0, 5.0, n)),
            "orders": 1 + rng.poisson(1.0, n),
            "pre_revenue": pre,
        }
    )
