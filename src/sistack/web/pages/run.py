"""The run dashboard: Overview, Segments, Data quality, Exports (and progress while it runs).

JSON twins (the API endpoints whose data each page shows, listed in its footer):

=====================  ===========================================================
page                   data
=====================  ===========================================================
/runs/{id}             GET /api/v1/runs/{id}/insights (banner, KPIs, actions, segments),
                       GET /api/v1/runs/{id} (while the run is queued or running)
/runs/{id}/segments    GET /api/v1/runs/{id}/personas, /insights, /segments
/runs/{id}/quality     GET /api/v1/runs/{id}/quality, /manifest
/runs/{id}/exports     GET /api/v1/runs/{id}/exports/manifest.json (links to every export)
=====================  ===========================================================
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from sistack.io.store.metadata import SUCCEEDED
from sistack.web.templating import html_errors, render
from sistack.web.views import RunDocuments, WebViews, reserved_height, views

router = APIRouter(include_in_schema=False)
TAB_LABELS = {
    "overview": "Overview",
    "segments": "Segments",
    "simulation": "Simulation",
    "compare": "Compare",
    "quality": "Data quality",
    "exports": "Exports",
}
# (name, title, what it holds, built in the background) per export the Exports tab offers.
EXPORTS = (
    (
        "report.pdf",
        "Executive PDF",
        "cover, summary, one page per segment, scenarios, appendix",
        False,
    ),
    (
        "workbook.xlsx",
        "Excel workbook",
        "summary, segments, personas, insights, scenarios, customers",
        True,
    ),
    ("assignments.csv", "Assignments (CSV)", "every customer with their segment", False),
    ("assignments.parquet", "Assignments (Parquet)", "the same, for data tools", False),
    (
        "profiles.csv",
        "Segment profiles (CSV)",
        "one row per segment: size, shares, feature means",
        False,
    ),
    (
        "manifest.json",
        "Manifest (JSON)",
        "input hash, configuration, versions, artifact hashes",
        False,
    ),
)


def run_page(
    request: Request,
    docs: RunDocuments,
    *,
    tab: str,
    twins: list[str],
    charts: dict[str, dict[str, Any]] | None = None,
    **context: Any,
) -> HTMLResponse:
    """A tab of a finished run: its header, tabs and the documents every tab may show."""
    charts = charts or {}
    return render(
        request,
        f"run/{tab}.html",
        run=docs.run,
        filename=docs.manifest["input"]["filename"],
        tab=tab,
        tab_label=TAB_LABELS[tab],
        insights=docs.insights,
        overall=docs.insights["overall"],
        definitions=docs.insights.get("definitions", {}),
        segments=docs.segments,
        colors=docs.colors,
        charts=charts,
        heights={name: reserved_height(name, spec) for name, spec in charts.items()},
        twins=[f"/api/v1/runs/{docs.run.id}{t}" for t in twins],
        **context,
    )


def progress_page(request: Request, web: WebViews, run_id: str) -> HTMLResponse | None:
    """The progress (or failure) page of a run that has not succeeded; ``None`` once it has."""
    run = web.run(run_id)
    if run.status == SUCCEEDED:
        return None
    return render(
        request,
        "run/progress.html",
        run=run,
        filename=web.filename(run.dataset_id),
        tab="overview",
        tab_label="Progress",
        charts={},
        twins=[f"/api/v1/runs/{run_id}"],
    )


@router.get("/runs/{run_id}", response_class=HTMLResponse)
@html_errors
def overview(request: Request, run_id: str, web: WebViews = Depends(views)) -> HTMLResponse:
    waiting = progress_page(request, web, run_id)
    if waiting is not None:
        return waiting
    docs = web.documents(run_id)
    charts = web.overview_charts(docs)
    return run_page(request, docs, tab="overview", twins=["/insights"], charts=charts)


@router.get("/runs/{run_id}/segments", response_class=HTMLResponse)
@html_errors
def segments(request: Request, run_id: str, web: WebViews = Depends(views)) -> HTMLResponse:
    docs = web.documents(run_id)
    twins = ["/personas", "/insights", "/segments"]
    return run_page(request, docs, tab="segments", twins=twins, charts=web.charts(docs))


@router.get("/runs/{run_id}/quality", response_class=HTMLResponse)
@html_errors
def quality(request: Request, run_id: str, web: WebViews = Depends(views)) -> HTMLResponse:
    docs = web.documents(run_id)
    return run_page(
        request,
        docs,
        tab="quality",
        twins=["/quality", "/manifest"],
        quality=docs.quality,
        manifest=docs.manifest,
    )


@router.get("/runs/{run_id}/exports", response_class=HTMLResponse)
@html_errors
def exports(request: Request, run_id: str, web: WebViews = Depends(views)) -> HTMLResponse:
    docs = web.documents(run_id)
    twins = ["/exports/manifest.json"]
    return run_page(request, docs, tab="exports", twins=twins, exports=EXPORTS)
