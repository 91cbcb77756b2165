"""Simulation and Compare tabs of a run, and the executive report page.

JSON twins: ``/runs/{id}/simulation`` shows ``GET /api/v1/runs/{id}/baseline`` and drives
``GET /api/v1/levers``, ``POST /api/v1/runs/{id}/simulate``, ``/scenarios`` and ``/optimize``
from the browser (every number it shows is a response of those calls);
``/runs/{id}/compare?other=X`` shows ``GET /api/v1/runs/{id}/compare/{X}``;
``/runs/{id}/report`` is the document ``GET /api/v1/runs/{id}/exports/report.pdf`` prints.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from sistack.io.exports.charts import migration_chart
from sistack.io.exports.report import fmt_number, fmt_pct
from sistack.io.store.metadata import SUCCEEDED
from sistack.service.simulation import SimulationService
from sistack.web.pages.run import run_page
from sistack.web.templating import html_errors
from sistack.web.views import WebViews, views

router = APIRouter(include_in_schema=False)
# The simulation's outcome measures: (key, label, short label for table headers, number format).
METRICS = (
    ("revenue", "Revenue", "Revenue", "money"),
    ("margin", "Margin", "Margin", "money"),
    ("cost", "Marketing cost", "Cost", "money"),
    ("profit", "Profit", "Profit", "money"),
    ("roi", "ROI", "ROI", "ratio"),
)
MC_DRAWS = 1000
CANDIDATES = 100


@router.get("/runs/{run_id}/simulation", response_class=HTMLResponse)
@html_errors
def simulation(request: Request, run_id: str, web: WebViews = Depends(views)) -> HTMLResponse:
    docs = web.documents(run_id)
    baseline = web.simulation.current(run_id)  # GET /api/v1/runs/{id}/baseline
    overall_channels = (docs.insights["overall"].get("channels") or {}).get("shares") or {}
    sim_data = {
        "baseline": baseline,
        "run_id": run_id,
        "levers": SimulationService.levers(),
        "segments": [
            {"id": s["segment"], "name": s["persona"]["name"], "color": docs.colors[s["segment"]]}
            for s in docs.segments
        ],
        "channels": list(overall_channels),
        "mc_draws": MC_DRAWS,
    }
    return run_page(
        request,
        docs,
        tab="simulation",
        twins=["/baseline", "/scenarios"],
        sim_data=sim_data,
        mc_draws=MC_DRAWS,
        metrics=METRICS,
        baseline=baseline,
        baseline_of={s["segment"]: s for s in baseline["segments"]},
        assumptions=assumptions_text(baseline["assumptions"]["economics"]),
    )


def assumptions_text(economics: dict[str, Any]) -> str:
    """The economics a simulation uses, in one sentence (as the page's script writes it)."""
    sources = economics["sources"]
    return (
        f"Assumptions: margin rate {fmt_pct(economics['margin_rate'], 0)} "
        f"({sources['margin_rate']}), cost per contact {fmt_number(economics['cost_per_contact'])} "
        f"({sources['cost_per_contact']}), revenue per response "
        f"{fmt_number(economics['revenue_per_response'])} ({sources['revenue_per_response']}), "
        f"current discount depth {fmt_pct(economics['current_discount_depth'], 0)} "
        f"({sources['current_discount_depth']})."
    )


@router.get("/runs/{run_id}/compare", response_class=HTMLResponse)
@html_errors
def compare(
    request: Request,
    run_id: str,
    other: str | None = Query(default=None, max_length=64),
    web: WebViews = Depends(views),
) -> HTMLResponse:
    docs = web.documents(run_id)
    finished, _ = web.runs.list_runs(status=SUCCEEDED, limit=CANDIDATES, offset=0)
    candidates = [r for r in finished if r.id != run_id]
    chosen = other or docs.run.parent_id
    comparison, names_a, charts, twins = None, {}, {}, []
    if chosen:
        comparison = web.comparison(run_id, chosen)
        names_a = {
            s["segment"]: s["persona"]["name"] for s in web.runs.insights(chosen)["segments"]
        }
        charts = {"migration": migration_chart(comparison)}
        twins = [f"/compare/{chosen}"]
    return run_page(
        request,
        docs,
        tab="compare",
        twins=twins,
        charts=charts,
        candidates=candidates,
        other=next((c for c in candidates if c.id == chosen), None),
        comparison=comparison,
        names_a=names_a,
        names_b={s["segment"]: s["persona"]["name"] for s in docs.segments},
    )


@router.get("/runs/{run_id}/report", response_class=HTMLResponse)
@html_errors
def report(request: Request, run_id: str, web: WebViews = Depends(views)) -> HTMLResponse:
    return HTMLResponse(web.report_html(run_id))
