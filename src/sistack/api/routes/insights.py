"""Insights, personas and comparison of runs: read from artifacts computed at run creation."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from sistack.api.deps import service
from sistack.api.schemas import error_responses
from sistack.service.runs import RunService

router = APIRouter(prefix="/api/v1/runs", tags=["insights"])
NOT_READY = error_responses(404, 409)


@router.get("/{run_id}/insights", responses=NOT_READY)
def get_insights(run_id: str, svc: RunService = Depends(service)) -> dict[str, Any]:
    """KPIs, decision banner, top actions and per-segment insights, each with its definition."""
    return svc.insights(run_id)


@router.get("/{run_id}/personas", responses=NOT_READY)
def get_personas(run_id: str, svc: RunService = Depends(service)) -> dict[str, Any]:
    """One persona per segment: name, narrative, traits with numbers, recommended actions."""
    doc = svc.insights(run_id)
    return {
        "run_id": run_id,
        "personas": [
            {**s["persona"], "actions": s["actions"], "contribution": s["contribution"]}
            for s in doc["segments"]
        ],
        "definitions": doc["definitions"],
    }


@router.get("/{run_id}/compare/{other_id}", responses=NOT_READY)
def compare(run_id: str, other_id: str, svc: RunService = Depends(service)) -> dict[str, Any]:
    """Compare ``other_id`` (the reference; ``parent`` for the run's parent) with this run."""
    return svc.compare(run_id, other_id)
