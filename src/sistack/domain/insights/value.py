"""Customer value: historical spend and a forward-looking 12-month value per customer and segment.

Transactions: BG/NBD (expected purchases) x Gamma-Gamma (expected value per purchase), fitted on
a deterministic sample of at most ``FIT_SAMPLE`` customers and applied to all. The per-customer
inputs come from the customer aggregates: x = orders - 1, T = days since the first purchase,
t_x = T - days since the last purchase (in weeks), and the mean order value stands in for the
mean repeat-purchase value. Customer-level data: the documented proxy of
:func:`sistack.domain.insights.clv.proxy_value` (spend rate x horizon x P(active)).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from sistack.domain.insights import clv
from sistack.domain.segmentation.selection import sample_indices
from sistack.errors import InputError

FIT_SAMPLE = 100_000
HORIZON_DAYS = 365.0

DEFINITIONS = {
    "historical_value": "What the customer spent over the period in the data.",
    "value_12m": "Expected spend over the next 12 months. Transaction data: BG/NBD x "
    "Gamma-Gamma models fitted to purchase histories. Customer-level data: spend per day of "
    "tenure x 365 x probability the customer is still active (falls with the silence since the "
    "last purchase, relative to the customer's usual gap between purchases).",
}


@dataclass(frozen=True)
class ValueInsights:
    basis: str  # "bgnbd_gamma_gamma" | "proxy" | "historical"
    per_customer: pl.Series
    segments: dict[int, dict[str, Any]]
    total: float
    params: dict[str, Any]


def _col(features: pl.DataFrame, name: str) -> np.ndarray | None:
    if name not in features.columns:
        return None
    return features.get_column(name).cast(pl.Float64).to_numpy()


def _probabilistic(features: pl.DataFrame, seed: int) -> tuple[np.ndarray, dict[str, Any]] | None:
    orders, monetary = _col(features, "frequency"), _col(features, "monetary")
    tenure, recency = _col(features, "tenure_days"), _col(features, "recency_days")
    if orders is None or monetary is None or tenure is None or recency is None:
        return None
    x = np.maximum(orders - 1.0, 0.0)
    T = np.maximum(tenure, 0.0) / clv.DAYS_PER_WEEK
    t_x = np.clip(tenure - recency, 0.0, None) / clv.DAYS_PER_WEEK
    avg = np.where(orders > 0, monetary / np.maximum(orders, 1.0), 0.0)
    idx = sample_indices(len(x), FIT_SAMPLE, seed=seed)
    try:
        bg = clv.fit_bgnbd(x[idx], t_x[idx], T[idx])
        repeat = idx[(x[idx] > 0) & (avg[idx] > 0)]
        gg = clv.fit_gamma_gamma(x[repeat], avg[repeat])
    except (InputError, ValueError):
        return None
    horizon = HORIZON_DAYS / clv.DAYS_PER_WEEK
    value = clv.expected_value(bg, gg, x, t_x, T, avg, horizon=horizon)
    return value, {"bgnbd": bg.to_dict(), "gamma_gamma": gg.to_dict()}


def value_insights(
    features: pl.DataFrame,
    segment: np.ndarray,
    segments: list[int],
    *,
    shape: str,
    seed: int = 0,
) -> ValueInsights:
    """Historical and 12-month value per customer, summarised per segment (0 = everyone)."""
    historical = _col(features, "monetary")
    assert historical is not None
    value: np.ndarray | None = None
    params: dict[str, Any] = {}
    basis = "historical"
    if shape == "transactions":
        fitted = _probabilistic(features, seed)
        if fitted is not None:
            value, params = fitted
            basis = "bgnbd_gamma_gamma"
    if value is None:
        tenure, recency = _col(features, "tenure_days"), _col(features, "recency_days")
        orders = _col(features, "frequency")
        if tenure is not None and orders is not None:
            value = clv.proxy_value(
                np.zeros_like(historical) if recency is None else recency,
                orders,
                historical,
                tenure,
                horizon_days=HORIZON_DAYS,
            )
            basis = "proxy"
    if value is None:
        value = historical.copy()
    value = np.nan_to_num(value, nan=0.0, posinf=0.0)
    out: dict[int, dict[str, Any]] = {}
    everyone = clv.value_by_segment(value, np.zeros(len(value), dtype=np.int64))
    hist_all = clv.value_by_segment(historical, np.zeros(len(value), dtype=np.int64))
    per_seg = {v.segment: v for v in clv.value_by_segment(value, segment)}
    hist_seg = {v.segment: v for v in clv.value_by_segment(historical, segment)}
    out[0] = {
        "basis": basis,
        "value_12m": everyone[0].to_dict(),
        "historical": hist_all[0].to_dict(),
    }
    for seg in segments:
        out[seg] = {
            "basis": basis,
            "value_12m": per_seg[seg].to_dict(),
            "historical": hist_seg[seg].to_dict(),
        }
    return ValueInsights(
        basis=basis,
        per_customer=pl.Series("value_12m", value, dtype=pl.Float64),
        segments=out,
        total=float(value.sum()),
        params=params,
    )
