"""Assemble every insight of a run, once, when the run is created.

Input: the run's features, the validated customer table, the segment of every customer and the
segment profiles. Output: an :class:`Insights` value that is persisted as ``insights.json`` and
served as is; nothing here is recomputed per request.

Every number has a plain-language definition in ``definitions``, found by its key: under
``"<parent>.<key>"`` when a bare key would be ambiguous (``value_12m.p90``, ``channels.shares``),
else under ``"<key>"``. A number inside a map keyed by data values (a channel, a category, a
feature, a tier, a KPI: ``shares``, ``index``, ``category_mix``, ``population_std``,
``tier_counts``) or inside a rate interval (``observed``, ``interval``) is defined by that map or
interval. Segment ids and the fitted models' parameters (``overall.value_model``,
``response_model.params``) are structure, not metrics.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import polars as pl

from sistack.domain.insights import actions as actions_mod
from sistack.domain.insights import channels, discount, kpis, personas, promotion, value
from sistack.domain.profiles import SegmentProfile, finite_std

# Behaviour metrics: segment means of these features (those the run has).
BEHAVIOUR = {
    "recency_days": "Days since the last purchase, averaged over the segment's customers.",
    "frequency": "Purchases per customer over the period in the data (segment mean).",
    "monetary": "Spend per customer over the period in the data (segment mean).",
    "avg_order_value": "Spend per purchase, averaged over the segment's customers.",
    "tenure_days": "Days from becoming a customer (or the first purchase) to the reference "
    "date, averaged over the segment's customers.",
    "variety": "Share of the product categories a customer bought from, averaged over the "
    "segment's customers.",
    "inter_purchase_days": "Average days between consecutive purchases (one purchase only: the "
    "days since it), averaged over the segment's customers.",
}
DEFINITIONS = {
    **BEHAVIOUR,
    "category_mix": "Share of a customer's spend on each product category, averaged over the "
    "segment's customers (a customer without spend counts as 0).",
    "stability": "Mean Jaccard similarity between the segment and its best match when the model "
    "is refitted on bootstrap resamples: above about 0.75 the segment is stable, below 0.5 it "
    "dissolves.",
    "population_std": "Standard deviation of each feature over all customers: the unit of the "
    "persona traits' z and of the segment matching between runs.",
}
TOP_ACTIONS = 3  # actions named in the decision banner


@dataclass(frozen=True)
class Insights:
    """All insights of a run, JSON-ready through :meth:`to_dict`."""

    overall: dict[str, Any]
    banner: str
    top_actions: tuple[actions_mod.Action, ...]
    segments: tuple[dict[str, Any], ...]
    response_model: dict[str, Any]
    population_std: dict[str, float]
    definitions: dict[str, str]
    customer_scores: pl.DataFrame  # customer_id, response_probability, deal_share, risk_tier, value

    def to_dict(self) -> dict[str, Any]:
        return {
            "overall": self.overall,
            "banner": self.banner,
            "top_actions": [asdict(a) for a in self.top_actions],
            "segments": list(self.segments),
            "response_model": self.response_model,
            "population_std": self.population_std,
            "definitions": self.definitions,
        }


def _std(features: pl.DataFrame, names: list[str]) -> dict[str, float]:
    return {n: finite_std(features.get_column(n).cast(pl.Float64).to_numpy()) for n in names}


def _z(
    profile: SegmentProfile, population: SegmentProfile, stds: dict[str, float], feature: str
) -> float | None:
    std = stds.get(feature, 0.0)
    if feature not in profile.means or not std > 0:
        return None
    return (profile.means[feature] - population.means[feature]) / std


def build_insights(
    features: pl.DataFrame,
    table: pl.DataFrame,
    segment: np.ndarray,
    profiles: tuple[SegmentProfile, ...],
    *,
    shape: str,
    reference_date: dt.date | None,
    seed: int,
    response_sample: int = 20_000,
    response_fit: promotion.Fitted | None = None,
    response_scores: np.ndarray | None = None,
) -> Insights:
    """Compute every insight of a run (see the module docstring)."""
    names = [c for c in features.columns if c != "customer_id"]
    stds = _std(features, names)
    population = profiles[0]
    seg_ids = [p.segment for p in profiles[1:]]
    monetary = features.get_column("monetary").to_numpy().astype(np.float64)

    contrib = {c.segment: c for c in kpis.contributions(profiles, monetary, segment)}
    risk = (
        {
            r.segment: r
            for r in discount.discount_risk(
                features.get_column("deal_share").to_numpy(), monetary, segment, seg_ids
            )
        }
        if "deal_share" in features.columns
        else {}
    )
    mix = {m.segment: m for m in channels.channel_mix(profiles)}
    resp = promotion.response_insights(
        features,
        table,
        segment,
        seg_ids,
        seed=seed,
        max_rows=response_sample,
        fitted=response_fit,
        probabilities=response_scores,
    )
    val = value.value_insights(features, segment, seg_ids, shape=shape, seed=seed, table=table)
    people = {p.segment: p for p in personas.build_personas(profiles, stds)}

    all_actions: list[actions_mod.Action] = []
    segments_out: list[dict[str, Any]] = []
    pop_resp = resp.expected.get(0)
    per_response = _revenue_per_response(table)
    for p in profiles[1:]:
        c = contrib[p.segment]
        mx = mix.get(p.segment)
        dominant = mx.dominant if mx else None
        context = actions_mod.SegmentContext(
            segment=p.segment,
            persona=people[p.segment].name,
            customers=p.customers,
            revenue=p.revenue,
            revenue_index=c.revenue_index,
            avg_revenue=c.avg_revenue,
            population_avg_revenue=contrib[0].avg_revenue,
            deal_share=risk[p.segment].mean_deal_share if risk else None,
            population_deal_share=risk[0].mean_deal_share if risk else None,
            revenue_exposed=risk[p.segment].revenue_exposed if risk else None,
            deal_dependent_share=risk[p.segment].deal_dependent_share if risk else None,
            response_probability=resp.expected.get(p.segment),
            population_response_probability=pop_resp,
            revenue_per_response=per_response,
            recency_z=_z(p, population, stds, "recency_days"),
            tenure_z=_z(p, population, stds, "tenure_days"),
            variety_z=_z(p, population, stds, "variety"),
            dominant_channel=dominant,
            dominant_channel_index=mx.index.get(dominant) if mx and dominant else None,
        )
        recommended = actions_mod.recommend(context)
        all_actions.extend(recommended)
        segments_out.append(
            {
                "segment": p.segment,
                "persona": asdict(people[p.segment]),
                "contribution": asdict(c),
                "discount": asdict(risk[p.segment]) if risk else None,
                "channels": asdict(mx) if mx else None,
                "response": resp.segments.get(p.segment),
                "value": val.segments.get(p.segment),
                "behaviour": _behaviour(p),
                "category_mix": {
                    k.removeprefix("mix_"): v for k, v in p.means.items() if k.startswith("mix_")
                },
                "stability": p.stability,
                "actions": [asdict(a) for a in recommended],
            }
        )
    top = tuple(actions_mod.rank(all_actions, top=TOP_ACTIONS))
    overall = {
        "customers": population.customers,
        "revenue": population.revenue,
        "avg_revenue": contrib[0].avg_revenue,
        "top20_revenue_share": contrib[0].top20_revenue_share,
        "response_rate": resp.observed_rate,
        "expected_response_rate": pop_resp,
        "deal_dependent_share": risk[0].deal_dependent_share if risk else None,
        "revenue_exposed": risk[0].revenue_exposed if risk else None,
        "value_total": val.total,
        "value_basis": val.basis,
        "value_model": val.params,  # fitted BG/NBD and Gamma-Gamma parameters, when used
        "value_notes": list(val.notes),  # caveats of the 12-month value (e.g. a limiting fit)
        "reference_date": reference_date.isoformat() if reference_date else None,
        "discount": asdict(risk[0]) if risk else None,
        "channels": asdict(mix[0]) if 0 in mix else None,
        "response": resp.segments.get(0),
    }
    definitions = {
        **kpis.DEFINITIONS,
        **discount.DEFINITIONS,
        **channels.DEFINITIONS,
        **personas.DEFINITIONS,
        **promotion.DEFINITIONS,
        **value.DEFINITIONS,
        **actions_mod.DEFINITIONS,
        **DEFINITIONS,
    }
    scores = pl.DataFrame(
        {
            "customer_id": features.get_column("customer_id"),
            "segment": pl.Series("segment", segment, dtype=pl.Int32),
            "response_probability": resp.per_customer,
            "deal_share": features.get_column("deal_share")
            if "deal_share" in names
            else pl.Series("deal_share", [None] * len(segment), dtype=pl.Float64),
            "value_12m": val.per_customer,
        }
    )
    return Insights(
        overall=overall,
        banner=decision_banner(profiles, people, contrib, risk, top),
        top_actions=top,
        segments=tuple(segments_out),
        response_model=resp.model_summary,
        population_std=stds,
        definitions=definitions,
        customer_scores=scores,
    )


def _behaviour(p: SegmentProfile) -> dict[str, float]:
    return {k: p.means[k] for k in BEHAVIOUR if k in p.means}


def _revenue_per_response(table: pl.DataFrame) -> float | None:
    if "revenue_per_response" not in table.columns:
        return None
    values = table.get_column("revenue_per_response").drop_nulls()
    return float(values.median()) if values.len() else None  # type: ignore[arg-type]


def decision_banner(
    profiles: tuple[SegmentProfile, ...],
    people: dict[int, personas.Persona],
    contrib: dict[int, kpis.Contribution],
    risk: dict[int, discount.DiscountRisk],
    top: tuple[actions_mod.Action, ...],
) -> str:
    """One sentence from the strongest findings: the segment with the highest revenue index
    (the lower id on a tie), the revenue that depends on discounts, and the top actions (at most
    ``TOP_ACTIONS``, in the order given: largest revenue at stake first)."""
    best = max(profiles[1:], key=lambda p: (contrib[p.segment].revenue_index, -p.segment))
    parts = [
        f"{people[best.segment].name} (segment {best.segment}) is {best.customer_share:.0%} of "
        f"customers and brings {best.revenue_share:.0%} of revenue"
    ]
    if risk and risk[0].revenue_exposed_share == risk[0].revenue_exposed_share:
        parts.append(f"{risk[0].revenue_exposed_share:.0%} of revenue depends on discounts")
    moves = top[:TOP_ACTIONS]
    if moves:
        listed = "; ".join(
            f"({i}) {a.title[:1].lower()}{a.title[1:]} (segment {a.segment})"
            for i, a in enumerate(moves, start=1)
        )
        what = f"top {len(moves)} moves" if len(moves) > 1 else "top move"
        parts.append(f"{what} by revenue at stake: {listed}")
    return "; ".join(parts) + "."
