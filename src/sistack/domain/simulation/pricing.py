"""Built-in pricing levers: discount depth on deal purchases, and list price.

Both register through :func:`register` like any other lever. Elasticities are uncertain: in a
Monte Carlo run they are drawn from Normal(value, 0.25 |value|) truncated to their allowed range
(:meth:`LeverContext.elasticity`).

Volume never goes below zero: where an elasticity times a change would make the volume factor
negative, it is held at 0 and a warning says so.
"""

from __future__ import annotations

import math
from typing import Annotated, Self

import numpy as np
from pydantic import Field, ValidationInfo, model_validator

from sistack.domain.simulation.baseline import FloatArray
from sistack.domain.simulation.registry import (
    Guardrail,
    Lever,
    LeverContext,
    LeverEffect,
    per_segment,
    register,
)
from sistack.domain.simulation.validation import Change, SegmentId

RATIO_RANGE = (0.25, 4.0)  # deal-share ratio that scales the discount elasticity
DEPENDENT_DEAL_SHARE = 0.3  # deal share at or above which a segment is discount-dependent
DEPENDENT_RATIO = 1.25  # ... or at or above 1.25 x the population's deal share
ELASTICITY_RANGE = (-5.0, 0.0)
DEFAULT_PRICE_ELASTICITY = -1.2

PriceElasticity = Annotated[float, Field(ge=ELASTICITY_RANGE[0], le=ELASTICITY_RANGE[1])]


def _volume(ctx: LeverContext, factor: FloatArray, name: str) -> tuple[FloatArray, list[Guardrail]]:
    """Volume factor held at >= 0, with a warning per segment where the point estimate is < 0."""
    warnings = []
    if ctx.rng is None:
        for i in np.flatnonzero(factor[0] < 0):
            seg = ctx.baseline.ids[i]
            warnings.append(
                Guardrail(
                    "volume_floor",
                    f"The {name} change for segment {seg} would make volume negative; it is "
                    "held at zero.",
                    segment=seg,
                    values={"volume_factor": float(factor[0, i])},
                )
            )
    return np.maximum(factor, 0.0), warnings


@register
class DiscountDepth(Lever):
    """Change the discount given on deal purchases.

    Elasticity of deal-driven volume in segment s: e_s = base x clip(deal_share_s /
    population deal share, 0.25, 4). With R revenue, deal revenue D = R x deal_share, current
    depth d0 and change c: gross deal revenue G = D / (1 - d0); volume change v = e_s x c; new
    deal revenue = G (1 + v)(1 - d0 - c); revenue delta = new - D; cost of goods of deal
    purchases = D (1 - margin rate); margin delta = revenue delta - cost of goods x v.

    Details per segment: ``volume_change`` (v, the relative change of deal-driven volume after
    the floor at zero volume; 0.2 = 20% more deal purchases), ``elasticity`` and the deal
    revenue before and after.
    """

    name = "discount_depth"
    title = "Change discount depth"
    description = (
        "Deepen or reduce discounts on deal purchases. Deal-driven volume responds with an "
        "elasticity that is higher in segments that buy more on deals."
    )
    swing = ("change", "base_elasticity")

    change: dict[SegmentId, Change] = Field(
        min_length=1,
        description="Change of discount depth per segment, as a fraction of the list price "
        "(-0.5 to 0.5; +0.05 = five points deeper).",
    )
    base_elasticity: float = Field(
        default=2.0,
        ge=0.0,
        le=10.0,
        description="Elasticity of deal volume for an average segment.",
    )

    @model_validator(mode="after")
    def _depth(self, info: ValidationInfo) -> Self:
        context = info.context if isinstance(info.context, dict) else {}
        d0 = context.get("current_discount_depth")
        if d0 is None:
            return self
        for seg, change in self.change.items():
            if not 0.0 <= d0 + change < 1.0:
                raise ValueError(
                    f"change {change} for segment {seg} gives a discount depth of "
                    f"{d0 + change}; with a current depth of {d0} the change must be between "
                    f"{-d0} and {min(0.5, 1.0 - d0)} (exclusive)"
                )
        return self

    def apply(self, ctx: LeverContext) -> LeverEffect:
        b, m = ctx.baseline, ctx.economics.margin_rate
        d0 = ctx.economics.current_discount_depth
        pop = b.population_deal_share
        known = np.isfinite(b.deal_share)
        share = np.where(known, b.deal_share, 0.0)
        ratio = share / pop if math.isfinite(pop) and pop > 0 else np.ones(b.k)
        ratio = np.clip(ratio, *RATIO_RANGE)
        base = ctx.elasticity(self.base_elasticity, low=0.0, high=10.0)[:, None]
        elasticity = base * ratio
        change = per_segment(ctx, self.change)
        deal = b.revenue * share
        gross = deal / (1.0 - d0)
        volume, warnings = _volume(ctx, 1.0 + elasticity * change, "discount")
        new = gross * volume * (1.0 - d0 - change)
        revenue = new - deal
        margin = revenue - deal * (1.0 - m) * (volume - 1.0)
        for seg, c in self.change.items():
            i = int(b.positions([seg])[0])
            if not known[i]:
                warnings.append(
                    Guardrail(
                        "unknown_deal_share",
                        f"Segment {seg} has no deal share in the data; its discount change "
                        "counts as 0.",
                        segment=seg,
                    )
                )
            elif c > 0 and (share[i] >= DEPENDENT_DEAL_SHARE or share[i] >= DEPENDENT_RATIO * pop):
                warnings.append(
                    Guardrail(
                        "discount_dependent",
                        f"Segment {seg} already buys {share[i]:.0%} of its purchases on deals "
                        f"(population {pop:.0%}); deeper discounts deepen that dependency.",
                        segment=seg,
                        values={"deal_share": float(share[i]), "population_deal_share": pop},
                    )
                )
        return LeverEffect(
            revenue=revenue,
            margin=margin,
            cost=ctx.zeros(),
            params={"change": dict(self.change), "base_elasticity": self.base_elasticity},
            filled={"current_discount_depth": "economics"},
            details={
                "volume_change": np.where(known, volume - 1.0, 0.0),  # unknown share: no change
                "elasticity": elasticity,
                "deal_revenue_before": np.broadcast_to(deal, revenue.shape).copy(),
                "deal_revenue_after": deal + revenue,
            },
            warnings=tuple(warnings),
        )


@register
class Price(Lever):
    """Change the list price.

    With relative price change dp and elasticity e: volume factor = 1 + e dp; revenue delta =
    R ((1 + dp)(1 + e dp) - 1); cost of goods = R (1 - margin rate); margin delta = revenue
    delta - cost of goods x e dp.
    """

    name = "price"
    title = "Change price"
    description = (
        "Raise or lower prices per segment; volume responds with the price elasticity "
        f"(default {DEFAULT_PRICE_ELASTICITY})."
    )
    swing = ("change", "elasticity")

    change: dict[SegmentId, Change] = Field(
        min_length=1, description="Relative price change per segment (-0.5 to 0.5)."
    )
    elasticity: dict[SegmentId, PriceElasticity] | None = Field(
        default=None,
        description=f"Price elasticity per segment (-5 to 0). Default: "
        f"{DEFAULT_PRICE_ELASTICITY} for every segment with a price change.",
    )

    @model_validator(mode="after")
    def _keys(self) -> Self:
        if extra := sorted(set(self.elasticity or {}) - set(self.change)):
            raise ValueError(
                f"elasticity is given for segments {extra} without a price change; "
                f"allowed: {sorted(self.change)}"
            )
        return self

    def apply(self, ctx: LeverContext) -> LeverEffect:
        b, m = ctx.baseline, ctx.economics.margin_rate
        given = self.elasticity or {}
        used = {s: float(given.get(s, DEFAULT_PRICE_ELASTICITY)) for s in self.change}
        e = ctx.elasticity(per_segment(ctx, used), low=ELASTICITY_RANGE[0], high=0.0)
        dp = per_segment(ctx, self.change)
        volume, warnings = _volume(ctx, 1.0 + e * dp, "price")
        revenue = b.revenue * ((1.0 + dp) * volume - 1.0)
        margin = revenue - b.revenue * (1.0 - m) * (volume - 1.0)
        return LeverEffect(
            revenue=revenue,
            margin=margin,
            cost=ctx.zeros(),
            params={"change": dict(self.change), "elasticity": used},
            filled={f"elasticity.{s}": "default" for s in self.change if s not in given},
            details={"volume_factor": volume, "elasticity": e},
            warnings=tuple(warnings),
        )
