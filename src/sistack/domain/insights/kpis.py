"""Revenue contribution against customer share, Pareto concentration and overall KPIs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sistack.domain.profiles import SegmentProfile

DEFINITIONS = {
    "customers": "Number of customers (in the segment, or in the whole run).",
    "revenue": "What the customers spent over the period in the data (net of returns).",
    "customer_share": "Share of all customers who are in the segment.",
    "revenue_share": "Share of all revenue that the segment's customers brought.",
    "revenue_index": "Revenue share divided by customer share: above 1 the segment brings more "
    "than its headcount, below 1 less.",
    "avg_revenue": "Revenue per customer over the period in the data.",
    "top20_revenue_share": "Share of revenue that comes from the top 20% of customers by "
    "revenue (overall, or within the segment).",
}
TOP_SHARE = 0.2


@dataclass(frozen=True)
class Contribution:
    """One segment's (or the population's, segment 0) weight in customers and revenue."""

    segment: int
    customers: int
    customer_share: float
    revenue: float
    revenue_share: float
    revenue_index: float
    avg_revenue: float
    top20_revenue_share: float


def top_share(values: np.ndarray, *, share: float = TOP_SHARE) -> float:
    """Share of the total held by the top ``share`` of values (at least one value)."""
    if values.size == 0:
        return float("nan")
    total = float(values.sum())
    if total <= 0:
        return float("nan")
    n_top = max(1, int(np.ceil(share * values.size)))
    top = np.sort(values)[::-1][:n_top]
    return float(top.sum() / total)


def contributions(
    profiles: tuple[SegmentProfile, ...], monetary: np.ndarray, segment: np.ndarray
) -> tuple[Contribution, ...]:
    """Population (first) and per-segment contribution, Pareto share within each."""
    out = []
    for p in profiles:
        values = monetary if p.segment == 0 else monetary[segment == p.segment]
        index = p.revenue_share / p.customer_share if p.customer_share > 0 else float("nan")
        out.append(
            Contribution(
                segment=p.segment,
                customers=p.customers,
                customer_share=p.customer_share,
                revenue=p.revenue,
                revenue_share=p.revenue_share,
                revenue_index=index,
                avg_revenue=p.revenue / p.customers if p.customers else float("nan"),
                top20_revenue_share=top_share(values),
            )
        )
    return tuple(out)
