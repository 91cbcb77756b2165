"""What the optimiser is asked, validated once, and which optimiser answers.

:class:`OptimizationRequest` is the one validated form of a request, whichever entry point it
comes from (API body, CLI options): ranges are reported whole ("between 100 and 20000, got
20001") and segment ids are checked against the run, as for a scenario. :func:`plan` sends it
to the budget allocation (:func:`~.optimize.optimize_budget`) or, with ``campaign``, to the
choice of segments to contact (:func:`~.contacts.optimize_contacts`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sistack.domain.simulation.baseline import Baseline
from sistack.domain.simulation.contacts import ContactPlan, optimize_contacts
from sistack.domain.simulation.economics import EconomicSettings
from sistack.domain.simulation.optimize import OptimizationResult, optimize_budget
from sistack.domain.simulation.validation import SegmentId, validation_context, with_ranges

Amount = Annotated[float, Field(ge=0.0, le=1e12)]


class OptimizationRequest(BaseModel):
    """A budget to allocate across segments, or a campaign's contact set to choose."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    total_budget: float | None = Field(
        default=None,
        gt=0.0,
        le=1e12,
        description="Budget to allocate (required), or with 'campaign' the cap on the "
        "campaign's cost (optional: no cap).",
    )
    campaign: bool = Field(
        default=False,
        description="Choose which segments to contact once in a campaign (0/1 per segment) "
        "instead of splitting a budget across them.",
    )
    bounds: dict[SegmentId, tuple[Amount, Amount]] | None = Field(
        default=None,
        description="Per-segment (low, high) budget. With 'campaign' a segment's budget is 0 or "
        "the cost of contacting it, so low > 0 forces a contact and high below that cost rules "
        "it out.",
    )
    always: list[SegmentId] | None = Field(
        default=None,
        description="With 'campaign': segments to contact whatever they return.",
    )
    never: list[SegmentId] | None = Field(
        default=None,
        description="With 'campaign': segments never to contact, even when it would pay.",
    )
    objective: Literal["expected", "quantile"] = Field(
        default="expected",
        description="Maximise expected profit, or a quantile of profit (risk-averse).",
    )
    quantile: float = Field(
        default=0.1, gt=0.0, lt=1.0, description="The quantile of profit for 'quantile'."
    )
    draws: int = Field(default=2000, ge=100, le=20_000, description="Draws of the response rates.")
    seed: int = Field(default=0, ge=0, le=2**63 - 1, description="Seed of the draws.")
    economics: EconomicSettings | None = Field(
        default=None, description="Overrides of the run's economic assumptions."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.total_budget is None and not self.campaign:
            raise ValueError("total_budget is required to allocate a budget")
        for seg, (low, high) in (self.bounds or {}).items():
            if low > high:
                raise ValueError(f"bounds of segment {seg}: low ({low}) is above high ({high})")
        if (self.always or self.never) and not self.campaign:
            raise ValueError("always and never choose a campaign's contacts: add campaign: true")
        if both := sorted(set(self.always or ()) & set(self.never or ())):
            raise ValueError(f"segment {both[0]} is in both always and never")
        return self


def validate_request(data: Mapping[str, Any], baseline: Baseline) -> OptimizationRequest:
    """Validate a request against a run's baseline (segment ids of the bounds).

    Raises:
        pydantic.ValidationError: the location names the field, the message the whole range
            or the allowed segment ids.
    """
    raw = dict(data)
    try:
        override = raw.get("economics")
        settings = EconomicSettings.model_validate(override) if override is not None else None
    except ValidationError:
        settings = None  # reported with its location below
    context = validation_context(baseline, baseline.economics_for(settings))
    try:
        return OptimizationRequest.model_validate(raw, context=context)
    except ValidationError as exc:
        raise with_ranges(OptimizationRequest, None, exc) from None


def plan(baseline: Baseline, request: OptimizationRequest) -> OptimizationResult | ContactPlan:
    """Answer a validated request with the optimiser it asks for."""
    bounds = {int(s): (float(lo), float(hi)) for s, (lo, hi) in (request.bounds or {}).items()}
    options: dict[str, Any] = {
        "bounds": bounds or None,
        "objective": request.objective,
        "quantile": request.quantile,
        "draws": request.draws,
        "seed": request.seed,
        "economics": request.economics,
    }
    if request.campaign:
        return optimize_contacts(
            baseline,
            total_budget=request.total_budget,
            always=[int(s) for s in request.always or ()],
            never=[int(s) for s in request.never or ()],
            **options,
        )
    if request.total_budget is None:  # not after validation; a request built by hand
        raise ValueError("total_budget is required to allocate a budget")
    return optimize_budget(baseline, total_budget=request.total_budget, **options)
