"""The canonical feature set, derived from whatever roles a customer table has.

Every feature has a definition a person can read and a flag saying whether the segmentation model
uses it. Heavy-tailed money and count features are marked ``log`` so preprocessing applies
``log1p`` before robust scaling. The reference date comes from the data, never from the clock.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class FeatureSpec:
    """One canonical feature: its name, plain-language definition and how the model treats it."""

    name: str
    definition: str
    log: bool = False
    in_model: bool = True


@dataclass(frozen=True)
class FeatureMatrix:
    """``customer_id`` plus one Float64 column per feature, and the specs in column order."""

    frame: pl.DataFrame
    specs: tuple[FeatureSpec, ...]

    @property
    def model_features(self) -> list[str]:
        return [s.name for s in self.specs if s.in_model]


def _family(table: pl.DataFrame, family: str) -> list[str]:
    prefix = family + "_"
    return [c for c in table.columns if c.startswith(prefix)]


def _safe_div(num: pl.Expr, den: pl.Expr) -> pl.Expr:
    return pl.when(den > 0).then(num / den).otherwise(0.0)


def build_features(table: pl.DataFrame, *, reference_date: dt.date | None) -> FeatureMatrix:
    """Derive canonical features from a validated customer table (see :func:`feature_specs`)."""
    exprs: list[pl.Expr] = []
    specs: list[FeatureSpec] = []

    def add(expr: pl.Expr, spec: FeatureSpec) -> None:
        exprs.append(expr.cast(pl.Float64).alias(spec.name))
        specs.append(spec)

    purchases = _family(table, "purchases")
    spend = _family(table, "spend")
    campaigns = _family(table, "campaign")
    cols = set(table.columns)

    if "recency_days" in cols:
        add(pl.col("recency_days"), FeatureSpec("recency_days", "Days since the last purchase."))
    frequency: pl.Expr | None = None
    if "orders" in cols:
        frequency = pl.col("orders")
    elif purchases:
        frequency = pl.sum_horizontal(purchases)
    if frequency is not None:
        add(frequency, FeatureSpec("frequency", "Number of purchases (all channels).", log=True))
    monetary: pl.Expr | None = None
    if "revenue" in cols:
        monetary = pl.col("revenue")
    elif spend:
        monetary = pl.sum_horizontal(spend)
    if monetary is not None:
        add(monetary, FeatureSpec("monetary", "Total spend over the period in the data.", log=True))
    if monetary is not None and frequency is not None:
        add(
            _safe_div(monetary, frequency),
            FeatureSpec("avg_order_value", "Average spend per purchase.", log=True),
        )
    if "signup_date" in cols and reference_date is not None:
        tenure = (pl.lit(reference_date) - pl.col("signup_date")).dt.total_days()
        add(
            tenure.fill_null(tenure.median()),
            FeatureSpec("tenure_days", "Days between becoming a customer and the reference date."),
        )
    if "inter_purchase_days" in cols:
        add(
            pl.col("inter_purchase_days"),
            FeatureSpec("inter_purchase_days", "Average days between consecutive purchases."),
        )
    if len(purchases) >= 2:
        total = pl.sum_horizontal(purchases)
        for column in purchases:
            channel = column.removeprefix("purchases_")
            add(
                _safe_div(pl.col(column), total),
                FeatureSpec(f"share_{channel}", f"Share of purchases made via {channel}."),
            )
    if "deal_purchases" in cols and frequency is not None:
        add(
            _safe_div(pl.col("deal_purchases"), frequency).clip(0.0, 1.0),
            FeatureSpec("deal_share", "Share of purchases made with a discount or deal."),
        )
    if campaigns:
        accepted = pl.sum_horizontal([pl.col(c).clip(0, 1) for c in campaigns])
        add(
            accepted / len(campaigns),
            FeatureSpec("promo_rate", f"Share of the {len(campaigns)} past campaigns accepted."),
        )
    if len(spend) >= 2:
        bought = pl.sum_horizontal([(pl.col(c) > 0).cast(pl.Int32) for c in spend])
        add(
            bought / len(spend),
            FeatureSpec("variety", f"Share of the {len(spend)} product categories bought."),
        )
    if "income" in cols:
        add(pl.col("income"), FeatureSpec("income", "Yearly household income.", log=True))
    if "age" in cols:
        add(pl.col("age"), FeatureSpec("age", "Age in years."))
    elif "birth_year" in cols and reference_date is not None:
        add(
            reference_date.year - pl.col("birth_year"),
            FeatureSpec("age", "Age in years at the reference date."),
        )
    household = [c for c in ("kids", "teens") if c in cols]
    if household:
        add(
            pl.sum_horizontal(household),
            FeatureSpec("household_children", "Children and teenagers at home."),
        )
    if "web_visits" in cols:
        add(pl.col("web_visits"), FeatureSpec("web_visits", "Website visits per month.", log=True))
    if monetary is not None and len(spend) >= 2:
        for column in spend:
            category = column.removeprefix("spend_")
            add(
                _safe_div(pl.col(column), monetary),
                FeatureSpec(f"mix_{category}", f"Share of spend on {category}.", in_model=False),
            )
    frame = table.select(pl.col("customer_id"), *exprs)
    return FeatureMatrix(frame=frame, specs=tuple(specs))
