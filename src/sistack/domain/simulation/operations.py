"""Built-in levers on serving and keeping customers: shift purchases between channels, retention.

Both register through :func:`register` like any other lever; see
:mod:`sistack.domain.simulation.registry` for the contract (per-segment deltas against the
baseline, shape (draws, k), that add up across levers).
"""

from __future__ import annotations

from typing import Literal, Self

import numpy as np
from pydantic import Field, model_validator

from sistack.domain.simulation.economics import Money
from sistack.domain.simulation.registry import (
    Guardrail,
    Lever,
    LeverContext,
    LeverEffect,
    per_segment,
    register,
)
from sistack.domain.simulation.validation import Change, Channel, Rate, SegmentId


@register
class ChannelShift(Lever):
    """Move a share of purchases from one channel to another.

    Cost-to-serve delta per segment = purchases in ``from_channel`` x share x (cost to serve
    of ``to_channel`` - cost to serve of ``from_channel``); revenue, margin and the marketing
    cost are unchanged. The delta is reported as the scenario's ``serving_cost_change``, not as
    marketing cost, so a large saving cannot turn the marketing cost (and its ROI) negative.
    """

    name = "channel_shift"
    title = "Shift purchases between channels"
    description = (
        "Move a share of the purchases made in one channel to another; only the cost to serve "
        "changes."
    )
    swing = ("share",)

    segments: list[SegmentId] | Literal["all"] = Field(
        default="all", description="Segments whose purchases move, or 'all'."
    )
    from_channel: Channel = Field(description="Channel the purchases leave.")
    to_channel: Channel = Field(description="Channel the purchases move to.")
    share: Rate = Field(default=0.1, description="Share of the from-channel purchases that move.")
    cost_to_serve: dict[Channel, Money] | None = Field(
        default=None, description="Cost of serving one purchase per channel. Default: economics."
    )

    @model_validator(mode="after")
    def _different(self) -> Self:
        if self.from_channel == self.to_channel:
            raise ValueError("from_channel and to_channel must differ")
        return self

    def apply(self, ctx: LeverContext) -> LeverEffect:
        b = ctx.baseline
        costs = {**ctx.economics.cost_to_serve, **(self.cost_to_serve or {})}
        ids = list(b.ids) if self.segments == "all" else sorted(set(self.segments))
        mask = np.zeros(b.k, dtype=bool)
        mask[b.positions(ids)] = True
        purchases = b.purchases[:, b.channels.index(self.from_channel)]
        moved = np.where(mask, purchases * self.share, 0.0)
        unit = costs[self.to_channel] - costs[self.from_channel]
        serving = np.broadcast_to(moved * unit, (ctx.draws, b.k)).copy()
        return LeverEffect(
            revenue=ctx.zeros(),
            margin=ctx.zeros(),
            cost=ctx.zeros(),
            serving_cost=serving,
            params={
                "segments": ids,
                "from_channel": self.from_channel,
                "to_channel": self.to_channel,
                "share": self.share,
                "cost_to_serve": {
                    self.from_channel: costs[self.from_channel],
                    self.to_channel: costs[self.to_channel],
                },
            },
            filled={} if self.cost_to_serve else {"cost_to_serve": "economics"},
            details={
                "purchases_moved": np.broadcast_to(moved, (ctx.draws, b.k)).copy(),
                "cost_per_purchase_change": np.full(ctx.draws, unit),
            },
        )


@register
class Retention(Lever):
    """Change the share of customers retained.

    Revenue delta = change x 12-month value of the segment x horizon / 12; margin delta =
    revenue delta x margin rate. A segment without a 12-month value contributes nothing (with a
    warning). Nothing here is drawn in a Monte Carlo run: see :mod:`.uncertainty` for why.
    """

    name = "retention"
    title = "Change retention"
    description = (
        "Keep more (or fewer) customers: the change in retention rate times the segment's "
        "expected value over the horizon."
    )
    swing = ("change",)

    change: dict[SegmentId, Change] = Field(
        min_length=1, description="Change of the retention rate per segment (-0.5 to 0.5)."
    )
    horizon_months: int = Field(default=12, ge=1, le=60, description="Months the change lasts.")

    def apply(self, ctx: LeverContext) -> LeverEffect:
        b = ctx.baseline
        change = per_segment(ctx, self.change)
        known = np.isfinite(b.value_12m)
        delta = change * np.where(known, b.value_12m, 0.0) * self.horizon_months / 12.0
        revenue = np.broadcast_to(delta, (ctx.draws, b.k)).copy()
        warnings = tuple(
            Guardrail(
                "unknown_value",
                f"Segment {s} has no 12-month value in the data; its retention change counts as 0.",
                segment=s,
            )
            for s in self.change
            if not known[b.positions([s])[0]]
        )
        return LeverEffect(
            revenue=revenue,
            margin=revenue * ctx.economics.margin_rate,
            cost=ctx.zeros(),
            params={"change": dict(self.change), "horizon_months": self.horizon_months},
            warnings=warnings,
        )
