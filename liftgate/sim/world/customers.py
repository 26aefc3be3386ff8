"""Customer populations of the synthetic world: RFM, engagement, device, region, segment.

Draws are vectorized and deterministic given a NumPy generator. `arrival_weights` tilts who
arrives, which is how the covariate-drift scenario shifts the feature distribution of
decisions without changing any customer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SEGMENTS = ("loyal", "regular", "bargain_hunter", "new", "dormant")
SEGMENT_SHARES = (0.15, 0.35, 0.2, 0.15, 0.15)
DEVICES = ("ios", "android", "desktop")
REGIONS = ("north", "south", "east", "west")
CHANNELS = ("email", "push", "web")


def draw_customers(rng: np.random.Generator, n: int, id_prefix: str = "c") -> pd.DataFrame:
    """`n` customers with the raw attributes that features.yaml describes (plus consent flags)."""
    segment = rng.choice(len(SEGMENTS), size=n, p=SEGMENT_SHARES)
    is_ = {name: segment == i for i, name in enumerate(SEGMENTS)}

    # Recency and frequency depend on the lifecycle segment, as in an RFM segmentation.
    recency_scale = np.select(
        [is_["loyal"], is_["regular"], is_["bargain_hunter"], is_["new"], is_["dormant"]],
        [12.0, 35.0, 45.0, 20.0, 260.0],
    )
    recency_days = np.minimum(rng.exponential(recency_scale), 730.0)
    order_rate = np.select(
        [is_["loyal"], is_["regular"], is_["bargain_hunter"], is_["new"], is_["dormant"]],
        [14.0, 5.0, 6.0, 1.5, 1.0],
    )
    orders_12m = rng.poisson(order_rate)
    avg_order_value = np.round(np.exp(rng.normal(np.log(55.0), 0.45, n) + 0.25 * is_["loyal"]), 2)
    tenure_days = np.where(is_["new"], rng.integers(1, 60, n), rng.integers(60, 3650, n)).astype(
        np.int64
    )
    sessions_30d = rng.poisson(np.where(is_["dormant"], 0.5, 2.0 + 0.4 * orders_12m))
    email_open_rate = rng.beta(2.0 + 3.0 * is_["loyal"], 6.0 + 4.0 * is_["dormant"])
    device = rng.choice(len(DEVICES), size=n, p=(0.35, 0.35, 0.3))
    on_mobile = device < 2
    push_open_rate = np.where(on_mobile, rng.beta(1.5, 8.0, n), 0.0)
    discount_affinity = rng.beta(np.where(is_["bargain_hunter"], 6.0, 1.5), 4.0)
    cart_abandoned_7d = rng.random(n) < 0.08 + 0.1 * (sessions_30d > 3)
    channel_pref = np.where(
        on_mobile & (push_open_rate > 0.2),
        1,
        np.where(email_open_rate > 0.3, 0, 2),
    )
    return pd.DataFrame(
        {
            "customer_id": [f"{id_prefix}{i:07d}" for i in range(n)],
            "recency_days": np.round(recency_days, 1),
            "orders_12m": orders_12m.astype(np.int64),
            "avg_order_value": avg_order_value,
            "tenure_days": tenure_days,
            "sessions_30d": sessions_30d.astype(np.int64),
            "email_open_rate": np.round(email_open_rate, 4),
            "push_open_rate": np.round(push_open_rate, 4),
            "discount_affinity": np.round(discount_affinity, 4),
            "cart_abandoned_7d": cart_abandoned_7d,
            "channel_pref": np.asarray(CHANNELS)[channel_pref],
            "device": np.asarray(DEVICES)[device],
            "region": np.asarray(REGIONS)[rng.choice(len(REGIONS), size=n)],
            "segment": np.asarray(SEGMENTS)[segment],
            "email_opt_in": rng.random(n) < 0.85,
            "push_opt_in": on_mobile & (rng.random(n) < 0.7),
        }
    )


def arrival_weights(customers: pd.DataFrame, strength: float = 1.0) -> np.ndarray:
    """Sampling weights that tilt arrivals towards lapsed, Android, discount-seeking customers.

    Exponential tilting exp(strength · s(x)) of the population; `strength=0` is uniform.
    """
    score = (
        0.8 * np.log1p(customers["recency_days"].to_numpy()) / np.log1p(730.0) * 3.0
        + 1.0 * (customers["device"].to_numpy() == "android")
        + 1.5 * customers["discount_affinity"].to_numpy()
    )
    weights = np.exp(strength * (score - score.mean()))
    return weights / weights.sum()
