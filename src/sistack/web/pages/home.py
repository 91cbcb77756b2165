"""Home (the list of analyses) and New analysis (upload, mapping, options, progress).

JSON twins: ``/`` shows ``GET /api/v1/runs``; ``/runs/new`` drives ``POST /api/v1/datasets``,
``POST /api/v1/runs`` and ``GET /api/v1/runs/{id}`` from the browser.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from sistack.api.schemas import DemoCreate, RunOut
from sistack.domain.schema import SHAPES
from sistack.web.templating import html_errors, render
from sistack.web.views import WebViews, views

router = APIRouter(include_in_schema=False)
LISTED = 50


@router.get("/", response_class=HTMLResponse)
@html_errors
def home(request: Request, web: WebViews = Depends(views)) -> HTMLResponse:
    records, total = web.runs.list_runs(limit=LISTED, offset=0)
    names = web.runs.filenames(records)  # as GET /api/v1/runs lists them
    runs = [RunOut.of(r, filename=names.get(r.dataset_id)) for r in records]
    return render(
        request,
        "home.html",
        nav="home",
        runs=runs,
        total=total,
        demo_customers=DemoCreate().customers,
        twins=[f"/api/v1/runs?limit={LISTED}"],
    )


def size_text(n: int) -> str:
    """``2147483648`` -> ``2 GB`` (a limit shown to the user)."""
    for unit, size in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


@router.get("/runs/new", response_class=HTMLResponse)
@html_errors
def new_analysis(request: Request, web: WebViews = Depends(views)) -> HTMLResponse:
    settings = web.runs.settings
    return render(
        request,
        "new.html",
        nav="new",
        roles={
            shape: [r.to_dict() for r in web.runs.roles(shape)] for shape in SHAPES
        },  # GET /api/v1/roles
        defaults={"seed": settings.seed, "k_min": settings.k_min, "k_max": settings.k_max},
        max_upload=size_text(settings.max_upload_bytes),
        twins=["/api/v1/roles"],
    )
