"""Customer value: historical spend and a forward-looking 12-month value per customer and segment.

Transactions: BG/NBD (expected purchases) x Gamma-Gamma (expected value per purchase), fitted on
a deterministic sample of at most ``FIT_SAMPLE`` customers and applied to all. The inputs are
those of the published method (Fader, Hardie & Lee; :func:`clv.summary_from_transactions`), in
weeks, built from the customer table by :func:`model_inputs`: purchases are counted per day
(``purchase_days``), x = purchase days - 1, t_x = last - first purchase, T = reference date -
first purchase, and the spend per purchase is the mean over the repeat purchase days
(``repeat_revenue`` / x). A table without those columns (an engine that does not aggregate them)
falls back to orders as purchases, with a note saying so. A fitted parameter at the optimiser's
limit is reported as a note too. Customer-level data: the documented proxy of
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
HORIZON_WEEKS = HORIZON_DAYS / clv.DAYS_PER_WEEK

DEFINITIONS = {
    "historical": "What the customer spent over the period in the data.",
    "value_12m": "Expected spend over the next 12 months. Transaction data: BG/NBD x "
    "Gamma-Gamma models fitted to purchase histories (purchases counted per day). "
    "Customer-level data: spend per day of tenure x 365 x probability the customer is still "
    "active (falls with the silence since the last purchase, relative to the customer's usual "
    "gap between purchases).",
    "value_total": "Expected spend of all customers over the next 12 months (the sum of their "
    "value_12m).",
}
# Per segment, each value is summarised by these statistics over its customers.
_STATISTICS = {
    "mean": "Mean {} per customer.",
    "median": "Median {} per customer: half the customers are above.",
    "p90": "90th percentile of the {} per customer: 10% of the customers are above.",
    "total": "Sum of the {} of the customers.",
}
DEFINITIONS |= {
    f"{key}.{stat}": text.format(words)
    for key, words in (("value_12m", "expected 12-month value"), ("historical", "historical spend"))
    for stat, text in _STATISTICS.items()
}
ORDERS_AS_PURCHASES = (
    "Purchase days were not available, so each order counts as a purchase and the first "
    "purchase is included in the spend per purchase: an approximation of the published method."
)


@dataclass(frozen=True)
class ValueInsights:
    basis: str  # "bgnbd_gamma_gamma" | "proxy" | "historical"
    per_customer: pl.Series
    segments: dict[int, dict[str, Any]]
    total: float
    params: dict[str, Any]
    notes: tuple[str, ...] = ()  # caveats a reader of the value must see


@dataclass(frozen=True, eq=False)
class ModelInputs:
    """Per-customer BG/NBD and Gamma-Gamma inputs, times in weeks (see the module docstring)."""

    frequency: np.ndarray  # x: repeat purchases
    recency: np.ndarray  # t_x: last purchase, measured from the first
    T: np.ndarray  # age: reference date, measured from the first purchase
    monetary_value: np.ndarray  # mean spend per repeat purchase; 0 without one
    per_day: bool  # purchases counted per day (the published method) or per order


def _col(frame: pl.DataFrame, name: str) -> np.ndarray | None:
    if name not in frame.columns:
        return None
    return frame.get_column(name).cast(pl.Float64).to_numpy()


def model_inputs(features: pl.DataFrame, table: pl.DataFrame | None) -> ModelInputs | None:
    """x, t_x, T and the repeat spend per customer from the features and the customer table.

    ``features`` gives ``tenure_days`` (reference - first purchase) and ``recency_days``
    (reference - last purchase), so t_x = tenure - recency; ``table`` (row-aligned with
    ``features``) gives ``purchase_days`` and ``repeat_revenue``. None when the features lack
    what the model needs.
    """
    tenure, recency = _col(features, "tenure_days"), _col(features, "recency_days")
    if tenure is None or recency is None:
        return None
    T = np.maximum(tenure, 0.0) / clv.DAYS_PER_WEEK
    t_x = np.clip(tenure - recency, 0.0, None) / clv.DAYS_PER_WEEK
    days = _col(table, "purchase_days") if table is not None else None
    repeat = _col(table, "repeat_revenue") if table is not None else None
    if days is not None and repeat is not None:
        x = np.maximum(days - 1.0, 0.0)
        spend = np.divide(repeat, x, out=np.zeros_like(x), where=x > 0)
        return ModelInputs(x, t_x, T, spend, per_day=True)
    orders, monetary = _col(features, "frequency"), _col(features, "monetary")
    if orders is None or monetary is None:
        return None
    x = np.maximum(orders - 1.0, 0.0)
    spend = np.divide(monetary, orders, out=np.zeros_like(orders), where=orders > 0)
    return ModelInputs(x, t_x, T, spend, per_day=False)


def _limit_note(model: str, params: Any, at: dict[str, str], facts: list[str]) -> str:
    names = ", ".join(f"{name} = {getattr(params, name):.3g}" for name in at)
    what = "; ".join(facts) if facts else "the data do not pin these parameters down"
    return (
        f"The {model} fit ran to the limit of its parameters ({names}): {what}. The 12-month "
        "values rest on that limiting case; those parameter values mean only 'very large' or "
        "'very small'."
    )


def limit_notes(bg: clv.BGNBDParams, gg: clv.GammaGammaParams) -> list[str]:
    """A note per model whose fitted parameters ran to the optimiser's limit, saying what the
    limiting case means for these customers (see :func:`clv.parameters_at_limit`)."""
    notes = []
    at = clv.parameters_at_limit(bg)
    if at:
        facts = []
        if at.keys() & {"a", "b"}:
            # a -> 0 or b -> inf alone: dropout vanishes; both -> inf: the same for everyone.
            dropout = bg.a / (bg.a + bg.b)
            facts.append(
                "almost no customer drops out"
                if dropout < 5e-4
                else f"the chance of dropping out after a purchase is about {dropout:.1%} for "
                "every customer"
            )
        if at.keys() & {"r", "alpha"}:
            rate = bg.r / bg.alpha * 365.0 / clv.DAYS_PER_WEEK
            facts.append(f"every customer buys at about the same rate ({rate:.3g} a year)")
        notes.append(_limit_note("BG/NBD", bg, at, facts))
    at = clv.parameters_at_limit(gg)
    if at:
        facts = []
        if at.keys() & {"q", "v"} and gg.q > 1:
            mean = gg.p * gg.v / (gg.q - 1.0)
            facts.append(f"the mean spend per purchase is about {mean:.4g} for every customer")
        if "p" in at:
            facts.append("each customer spends about the same on every purchase")
        notes.append(_limit_note("Gamma-Gamma", gg, at, facts))
    return notes


def _probabilistic(
    features: pl.DataFrame, table: pl.DataFrame | None, seed: int
) -> tuple[np.ndarray, dict[str, Any], list[str]] | None:
    inputs = model_inputs(features, table)
    if inputs is None:
        return None
    x, t_x, T, spend = inputs.frequency, inputs.recency, inputs.T, inputs.monetary_value
    idx = sample_indices(len(x), FIT_SAMPLE, seed=seed)
    try:
        bg = clv.fit_bgnbd(x[idx], t_x[idx], T[idx])
        repeat = idx[(x[idx] > 0) & (spend[idx] > 0)]
        gg = clv.fit_gamma_gamma(x[repeat], spend[repeat])
        value = clv.expected_value(bg, gg, x, t_x, T, spend, horizon=HORIZON_WEEKS)
    except (InputError, ValueError):
        return None
    notes = [] if inputs.per_day else [ORDERS_AS_PURCHASES]
    notes += limit_notes(bg, gg)
    params: dict[str, Any] = {
        "bgnbd": bg.to_dict(),
        "gamma_gamma": gg.to_dict(),
        "at_limit": {
            "bgnbd": clv.parameters_at_limit(bg),
            "gamma_gamma": clv.parameters_at_limit(gg),
        },
        "purchases": "per_day" if inputs.per_day else "per_order",
    }
    return value, params, notes


def value_insights(
    features: pl.DataFrame,
    segment: np.ndarray,
    segments: list[int],
    *,
    shape: str,
    seed: int = 0,
    table: pl.DataFrame | None = None,
) -> ValueInsights:
    """Historical and 12-month value per customer, summarised per segment (0 = everyone).

    ``table`` is the validated customer table, row-aligned with ``features``; transaction data
    take the value model's per-day purchase counts from it (see :func:`model_inputs`).
    """
    historical = _col(features, "monetary")
    assert historical is not None
    value: np.ndarray | None = None
    params: dict[str, Any] = {}
    notes: list[str] = []
    basis = "historical"
    if shape == "transactions":
        fitted = _probabilistic(features, table, seed)
        if fitted is not None:
            value, params, notes = fitted
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
        notes=tuple(notes),
    )
