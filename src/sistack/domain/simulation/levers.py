"""Built-in marketing levers: move budget between segments, run a campaign.

Each lever is a Pydantic model of its parameters and registers itself with :func:`register`,
exactly as a new lever would. The other built-in levers live in
:mod:`sistack.domain.simulation.pricing` (price, discount depth) and
:mod:`sistack.domain.simulation.operations` (channel shift, retention). See
:mod:`sistack.domain.simulation.registry` for the contract: per-segment deltas against the
baseline, shape (draws, k), that add up across levers.
"""

from __future__ import annotations

import math
from typing import Literal, Self

import numpy as np
from pydantic import Field, ValidationInfo, model_validator

from sistack.domain.simulation.baseline import FloatArray
from sistack.domain.simulation.economics import Money
from sistack.domain.simulation.registry import (
    Guardrail,
    Lever,
    LeverContext,
    LeverEffect,
    above_ceiling,
    lever_catalogue,
    register,
    unknown_response,
)
from sistack.domain.simulation.validation import Rate, SegmentId

__all__ = [
    "BudgetShift",
    "Campaign",
    "Lever",
    "lever_catalogue",
    "register",
]


def _rates(
    ctx: LeverContext,
    lever: str,
    ids: list[int],
    given: dict[int, float] | None,
    *,
    name: str,
    use: str,
) -> tuple[FloatArray, dict[int, float], dict[str, str], list[Guardrail]]:
    """Rates for ``ids``: given ones fixed, the others the segment's response rate (draws).

    Returns the (draws, len(ids)) rates, the point values used, what was filled and warnings.
    An unknown response rate counts as 0 and raises a warning.
    """
    given = given or {}
    b = ctx.baseline
    out = np.empty((ctx.draws, len(ids)))
    points: dict[int, float] = {}
    filled: dict[str, str] = {}
    warnings: list[Guardrail] = []
    for j, seg in enumerate(ids):
        pos = int(b.positions([seg])[0])
        if seg in given:
            out[:, j] = points[seg] = float(given[seg])
        elif math.isfinite(b.response_rate[pos]):
            out[:, j] = ctx.response[:, pos]
            points[seg] = float(b.response_rate[pos])
            filled[f"{name}.{seg}"] = f"response rate of segment {seg}"
        else:
            out[:, j] = points[seg] = 0.0
            filled[f"{name}.{seg}"] = f"0: segment {seg} has no response rate"
            warnings.append(unknown_response(seg, lever, use))
        if (w := above_ceiling(ctx, seg, name, points[seg])) is not None:
            warnings.append(w)
    return out, points, filled, warnings


@register
class BudgetShift(Lever):
    """Move a share of the marketing budget of some segments to others.

    For one source s and one target t (R = revenue, B = baseline budget):
    revenue lost in s = R_s x loss_rate_s x shift; revenue gained in t = R_t x uplift_t x shift.
    With several targets the moved budget and the gain are split equally: gain_t =
    R_t x uplift_t x shift / n_targets. The total budget is unchanged; margin delta = revenue
    delta x margin rate.
    """

    name = "budget_shift"
    title = "Move marketing budget"
    description = (
        "Move a share of the marketing budget from some segments to others. Sources lose "
        "revenue at their loss rate, targets gain revenue at their uplift; the total budget "
        "stays the same."
    )
    swing = ("shift", "uplift", "loss_rate")

    sources: list[SegmentId] = Field(min_length=1, description="Segments that give budget.")
    targets: list[SegmentId] = Field(min_length=1, description="Segments that receive it.")
    shift: Rate = Field(
        default=0.1, description="Share of each source's budget that is moved (0 to 1)."
    )
    uplift: dict[SegmentId, Rate] | None = Field(
        default=None,
        description="Revenue uplift per target at full shift (0 to 1). Default: the target's "
        "expected response rate.",
    )
    loss_rate: dict[SegmentId, Rate] | None = Field(
        default=None,
        description="Revenue lost per source at full shift (0 to 1). Default: the source's "
        "expected response rate.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for name, ids in (("sources", self.sources), ("targets", self.targets)):
            if len(set(ids)) != len(ids):
                raise ValueError(f"{name} lists a segment twice: {ids}")
        if both := sorted(set(self.sources) & set(self.targets)):
            raise ValueError(f"sources and targets must be disjoint; both contain {both}")
        for name, keys, allowed in (
            ("uplift", self.uplift, self.targets),
            ("loss_rate", self.loss_rate, self.sources),
        ):
            if extra := sorted(set(keys or {}) - set(allowed)):
                raise ValueError(f"{name} is given for segments {extra}, allowed: {allowed}")
        return self

    def apply(self, ctx: LeverContext) -> LeverEffect:
        b, m = ctx.baseline, ctx.economics.margin_rate
        src, tgt = b.positions(self.sources), b.positions(self.targets)
        n_t = len(self.targets)
        uplift, up, f_up, w_up = _rates(
            ctx, self.name, self.targets, self.uplift, name="uplift", use="uplift"
        )
        loss, lo, f_lo, w_lo = _rates(
            ctx, self.name, self.sources, self.loss_rate, name="loss_rate", use="loss"
        )
        revenue, cost = ctx.zeros(), ctx.zeros()
        lost = b.revenue[src] * loss * self.shift
        gained = b.revenue[tgt] * uplift * self.shift / n_t
        revenue[:, src] -= lost
        revenue[:, tgt] += gained
        moved = float(ctx.budget[src].sum()) * self.shift
        cost[:, src] -= ctx.budget[src] * self.shift
        cost[:, tgt] += moved / n_t
        # an emptied budget is checked on the whole scenario (several levers may take from the
        # same segment): see guardrails.emptied_budgets
        warnings = [*w_up, *w_lo]
        return LeverEffect(
            revenue=revenue,
            margin=revenue * m,
            cost=cost,
            params={
                "sources": list(self.sources),
                "targets": list(self.targets),
                "shift": self.shift,
                "uplift": up,
                "loss_rate": lo,
            },
            filled={**f_up, **f_lo},
            details={
                "budget_moved": np.full(ctx.draws, moved),
                "revenue_lost": lost.sum(axis=1),
                "revenue_gained": gained.sum(axis=1),
            },
            warnings=tuple(warnings),
        )


@register
class Campaign(Lever):
    """Contact every customer of the chosen segments once.

    Contacts = customers; expected responders = customers x response rate; revenue = responders
    x revenue per response, which is the contribution of a response (as the data's Z_Revenue
    is), so margin delta = revenue delta; cost = contacts x cost per contact.
    """

    name = "campaign"
    title = "Run a campaign"
    description = (
        "Contact the customers of the chosen segments once: expected responders times revenue "
        "per response, against contacts times cost per contact."
    )
    swing = ("cost_per_contact", "revenue_per_response")

    which: Literal["all", "top_n", "list"] = Field(
        default="all",
        description="All segments, the n with the highest expected response rate, or a list.",
    )
    n: int | None = Field(default=None, ge=1, le=1000, description="How many segments for 'top_n'.")
    segments: list[SegmentId] | None = Field(default=None, description="Segments for 'list'.")
    cost_per_contact: Money | None = Field(
        default=None, description="Cost of one contact. Default: the scenario's economics."
    )
    revenue_per_response: Money | None = Field(
        default=None, description="Contribution of one response. Default: the scenario's economics."
    )

    @model_validator(mode="after")
    def _choice(self, info: ValidationInfo) -> Self:
        if self.which == "top_n" and self.n is None:
            raise ValueError("which='top_n' needs n (how many segments)")
        if self.which == "list" and not self.segments:
            raise ValueError("which='list' needs a non-empty segments list")
        allowed = (info.context or {}).get("segments") if isinstance(info.context, dict) else None
        if self.which == "top_n" and allowed is not None and (self.n or 0) > len(allowed):
            raise ValueError(f"n must be between 1 and {len(allowed)} (the number of segments)")
        return self

    def chosen(self, ctx: LeverContext) -> list[int]:
        """Chosen segment ids; top_n ranks by expected rate (unknown last), ties by id."""
        b = ctx.baseline
        if self.which == "list":
            return sorted(set(self.segments or []))
        if self.which == "all":
            return list(b.ids)
        rate = np.where(np.isfinite(b.response_rate), b.response_rate, -np.inf)
        ranked = sorted(b.ids, key=lambda s: (-rate[b.positions([s])[0]], s))
        return sorted(ranked[: self.n])

    def apply(self, ctx: LeverContext) -> LeverEffect:
        b, econ = ctx.baseline, ctx.economics
        cpc = econ.cost_per_contact if self.cost_per_contact is None else self.cost_per_contact
        rpr = (
            econ.revenue_per_response
            if self.revenue_per_response is None
            else self.revenue_per_response
        )
        chosen = self.chosen(ctx)
        pos = b.positions(chosen)
        mask = np.zeros(b.k, dtype=bool)
        mask[pos] = True
        known = np.isfinite(b.response_rate)
        rate = np.where(mask & known, np.nan_to_num(ctx.response), 0.0)
        responders = b.customers * rate
        revenue = responders * rpr
        cost = np.broadcast_to(np.where(mask, b.customers * cpc, 0.0), revenue.shape).copy()
        total_cost, total_revenue = cost.sum(axis=1), revenue.sum(axis=1)
        profit = total_revenue - total_cost
        filled = {} if self.cost_per_contact is not None else {"cost_per_contact": "economics"}
        if self.revenue_per_response is None:
            filled["revenue_per_response"] = "economics"
        return LeverEffect(
            revenue=revenue,
            margin=revenue.copy(),
            cost=cost,
            params={
                "which": self.which,
                "n": self.n,
                "segments": chosen,
                "cost_per_contact": cpc,
                "revenue_per_response": rpr,
            },
            filled=filled,
            details={
                "contacts": np.full(ctx.draws, float(b.customers[mask].sum())),
                "responders": responders.sum(axis=1),
                "revenue": total_revenue,
                "cost": total_cost,
                "profit": profit,
                "roi": np.divide(
                    profit, total_cost, out=np.full_like(profit, np.nan), where=total_cost > 0
                ),
            },
            warnings=tuple(
                unknown_response(s, self.name, "responders")
                for s in chosen
                if not known[b.positions([s])[0]]
            ),
        )
