"""Discount dependency: how much of each segment's buying happens on a deal, and what is exposed.

Risk tiers per customer by deal share of purchases (documented thresholds):
low < 20%, medium 20% to < 50%, high >= 50%. "Deal-dependent" means the high tier; the revenue
of deal-dependent customers is the revenue exposed if discounts are withdrawn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOW_MAX = 0.2
HIGH_MIN = 0.5
TIERS = ("low", "medium", "high")
BINS = np.linspace(0.0, 1.0, 11)

DEFINITIONS = {
    "deal_share": "Share of a customer's purchases made with a discount or deal.",
    "risk_tier": f"Discount dependency tier: low below {LOW_MAX:.0%} deal share, medium "
    f"{LOW_MAX:.0%} to {HIGH_MIN:.0%}, high {HIGH_MIN:.0%} or more.",
    "deal_dependent_share": f"Share of customers in the high tier (deal share >= {HIGH_MIN:.0%}).",
    "revenue_exposed": "Revenue of deal-dependent customers: what is at risk if discounts are "
    "withdrawn.",
    "revenue_exposed_share": "Revenue exposed as a share of the revenue of the segment (overall: "
    "of all revenue).",
    "mean_deal_share": "Average of the customers' deal shares.",
    "median_deal_share": "Median of the customers' deal shares: half the customers buy on a deal "
    "more often than this.",
    "p75_deal_share": "75th percentile of the customers' deal shares: a quarter of the customers "
    "buy on a deal more often than this.",
    "tier_counts": "Customers in each discount dependency tier (low, medium, high; see risk_tier).",
    "histogram": "Customers per tenth of deal share: 0-10%, 10-20%, ..., 90-100%.",
}


@dataclass(frozen=True)
class DiscountRisk:
    """Deal-share distribution and exposure of one segment (0 = population)."""

    segment: int
    customers: int
    mean_deal_share: float
    median_deal_share: float
    p75_deal_share: float
    tier_counts: dict[str, int]
    deal_dependent_share: float
    revenue_exposed: float
    revenue_exposed_share: float
    histogram: tuple[int, ...]


def risk_tier(deal_share: np.ndarray) -> np.ndarray:
    """0 = low, 1 = medium, 2 = high for each customer."""
    return np.where(deal_share >= HIGH_MIN, 2, np.where(deal_share >= LOW_MAX, 1, 0))


def discount_risk(
    deal_share: np.ndarray, monetary: np.ndarray, segment: np.ndarray, segments: list[int]
) -> tuple[DiscountRisk, ...]:
    """Population (first) and per-segment discount dependency."""
    tiers = risk_tier(deal_share)
    out = []
    for seg in [0, *segments]:
        mask = np.ones(len(segment), bool) if seg == 0 else segment == seg
        share, money, tier = deal_share[mask], monetary[mask], tiers[mask]
        n = int(mask.sum())
        revenue = float(money.sum())
        exposed = float(money[tier == 2].sum())
        counts = np.bincount(tier, minlength=3)
        hist, _ = np.histogram(share, bins=BINS)
        out.append(
            DiscountRisk(
                segment=seg,
                customers=n,
                mean_deal_share=float(share.mean()) if n else float("nan"),
                median_deal_share=float(np.median(share)) if n else float("nan"),
                p75_deal_share=float(np.quantile(share, 0.75)) if n else float("nan"),
                tier_counts={t: int(c) for t, c in zip(TIERS, counts, strict=True)},
                deal_dependent_share=float(counts[2] / n) if n else float("nan"),
                revenue_exposed=exposed,
                revenue_exposed_share=exposed / revenue if revenue > 0 else float("nan"),
                histogram=tuple(int(h) for h in hist),
            )
        )
    return tuple(out)
