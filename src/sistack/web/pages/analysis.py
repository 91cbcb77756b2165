"""Simulation and Compare tabs of a run, and the executive report page.

JSON twins: ``/runs/{id}/simulation`` drives ``GET /api/v1/levers``,
``POST /api/v1/runs/{id}/simulate``, ``/scenarios`` and ``/optimize`` from the browser (every
number it shows is a response of those calls); ``/runs/{id}/compare?other=X`` shows
``GET /api/v1/runs/{id}/compare/{X}``; ``/runs/{id}/report`` is the document
``GET /api/v1/runs/{id}/exports/report.pdf`` prints.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from sistack.io.exports.charts import migration_chart
from sistack.io.store.metadata import SUCCEEDED
from sistack.service.simulation import SimulationService
from sistack.web.pages.run import run_page
from sistack.web.templating import html_errors
from sistack.web.views import WebViews, views

router = APIRouter(include_in_schema=False)
MC_DRAWS = 1000
CANDIDATES = 100


@router.get("/runs/{run_id}/simulation", response_class=HTMLResponse)
@html_errors
def simulation(request: Request, run_id: str, web: WebViews = Depends(views)) -> HTMLResponse:
    docs = web.documents(run_id)
    overall_channels = (docs.insights["overall"].get("channels") or {}).get("shares") or {}
    sim_data = {
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
        twins=["/scenarios"],
        sim_data=sim_data,
        mc_draws=MC_DRAWS,
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
