"""Ground truth of the synthetic world: P(conversion) and order value for every customer × action.

The response surface is a logistic model with heterogeneous treatment effects:

- loyal customers buy anyway, so a discount mostly costs margin;
- bargain hunters respond strongly to the 20 % discount, dormant customers to the 10 % one;
- new customers and cart abandoners respond to free shipping;
- a push reminder helps app users who open pushes and hurts dormant customers;
- a per-customer latent taste (hashed from the world seed and the customer id, so any table of
  customers can be scored) adds noise no model can see.

Under concept drift the discount response halves and the push reminder turns negative.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit, ndtri

LATENT_SD = 0.3
SHIPPING_FEE = 4.9
#: Multiplier of the customer's average order value given a conversion, per action.
ORDER_VALUE_FACTOR = {
    "no_action": 1.0,
    "email_10": 0.9 * 1.03,  # 10 % off a slightly larger basket
    "email_20": 0.8 * 1.06,
    "free_shipping": 1.02,
    "push_reminder": 1.0,
}


def latent_taste(seed: int, customer_ids: pd.Series | np.ndarray) -> np.ndarray:
    """Unobserved per-customer taste, N(0, LATENT_SD²), a pure function of (seed, id)."""
    hashed = pd.util.hash_array(np.asarray(customer_ids, dtype=object), hash_key=f"{seed:016d}")
    uniform = (hashed >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    return LATENT_SD * ndtri(np.clip(uniform, 1e-12, 1 - 1e-12))


def _column(customers: pd.DataFrame, name: str) -> np.ndarray:
    return customers[name].to_numpy()


def conversion_logits(
    customers: pd.DataFrame, action_ids: tuple[str, ...], seed: int, concept_shifted: np.ndarray
) -> np.ndarray:
    """(customers × actions) log-odds of converting; `concept_shifted` marks post-drift rows."""
    segment = _column(customers, "segment")
    recency = np.log1p(_column(customers, "recency_days").astype(np.float64)) / np.log1p(730.0)
    email_open = _column(customers, "email_open_rate").astype(np.float64)
    push_open = _column(customers, "push_open_rate").astype(np.float64)
    affinity = _column(customers, "discount_affinity").astype(np.float64)
    cart = _column(customers, "cart_abandoned_7d").astype(np.float64)
    loyal, bargain = segment == "loyal", segment == "bargain_hunter"
    new, dormant = segment == "new", segment == "dormant"

    base = (
        -3.1
        + 1.1 * loyal
        - 0.2 * new
        - 0.6 * dormant
        - 1.4 * recency
        + 0.3 * np.log1p(_column(customers, "orders_12m").astype(np.float64))
        + 1.0 * email_open
        + 0.5 * cart
        + 0.1 * np.log1p(_column(customers, "sessions_30d").astype(np.float64))
        + latent_taste(seed, _column(customers, "customer_id"))
    )
    discount_response = np.where(concept_shifted, 0.5, 1.0)
    push_shift = np.where(concept_shifted, -0.6, 0.0)
    uplift = {
        "no_action": np.zeros(len(customers)),
        "email_10": discount_response * (0.15 + 0.7 * affinity + 0.5 * dormant - 0.6 * loyal)
        + 0.5 * email_open,
        "email_20": discount_response * (0.1 + 1.5 * affinity + 0.6 * bargain - 0.8 * loyal)
        + 0.5 * email_open,
        "free_shipping": 0.1 + 0.7 * new + 0.5 * cart + 0.3 * email_open - 0.5 * loyal,
        "push_reminder": -0.35
        + 3.0 * push_open
        + 0.4 * cart
        - 0.6 * dormant
        - 0.3 * loyal
        + push_shift,
    }
    return np.column_stack([base + uplift[a] for a in action_ids])


def conversion_probability(
    customers: pd.DataFrame, action_ids: tuple[str, ...], seed: int, concept_shifted: np.ndarray
) -> np.ndarray:
    return expit(conversion_logits(customers, action_ids, seed, concept_shifted))


def order_value(customers: pd.DataFrame, action_ids: tuple[str, ...]) -> np.ndarray:
    """(customers × actions) expected order value given a conversion, net of discount."""
    aov = _column(customers, "avg_order_value").astype(np.float64)
    values = {a: aov * ORDER_VALUE_FACTOR[a] for a in action_ids}
    if "free_shipping" in values:
        values["free_shipping"] = values["free_shipping"] - SHIPPING_FEE
    return np.column_stack([values[a] for a in action_ids])
