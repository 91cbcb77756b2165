"""The web UI: server-rendered pages at ``/``, served by the API's app (the API stays at /api/v1).

Pages read the same use cases as the API (see :mod:`sistack.web.views`) and only format what
those return; the browser's JavaScript calls the API and formats its answers. Each page lists
its JSON twin (the endpoints whose data it shows) in its footer and in a
``<link rel="alternate" type="application/json">``:

=============================  ====================================================
page                           JSON twin
=============================  ====================================================
/                              GET /api/v1/runs
/runs/new                      GET /api/v1/roles, POST /api/v1/datasets, POST /api/v1/runs,
                               GET /api/v1/runs/{id}
/runs/{id}                     GET /api/v1/runs/{id}/insights (GET /api/v1/runs/{id} while running)
/runs/{id}/segments            GET /api/v1/runs/{id}/personas, /insights, /segments
/runs/{id}/simulation          GET /api/v1/runs/{id}/baseline, GET /api/v1/levers,
                               POST /api/v1/runs/{id}/simulate, /scenarios, /scenarios/compare,
                               /optimize
/runs/{id}/compare?other=X     GET /api/v1/runs/{id}/compare/X
/runs/{id}/quality             GET /api/v1/runs/{id}/quality, /manifest
/runs/{id}/exports             GET /api/v1/runs/{id}/exports/manifest.json (links to each export;
                               the workbook through POST .../exports/workbook.xlsx, 202 until built)
/runs/{id}/report              the document GET /api/v1/runs/{id}/exports/report.pdf prints
/login                         (no twin: pastes an API key, opens a signed session)
=============================  ====================================================

While API keys exist, every page needs a session (``/login``; see :mod:`sistack.api.security`)
and shows only the data of its key's workspace. The pages' scripts send the session's CSRF token
(``<meta name="csrf-token">``) in ``X-CSRF-Token`` with every request that changes state.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from sistack.web.pages import analysis, assets, home, login, precompile, run
from sistack.web.templating import STATIC_DIR

router = APIRouter(include_in_schema=False)
for module in (home, run, analysis, assets, login):
    router.include_router(module.router)


def install(app: FastAPI) -> None:
    """Add the pages and the static files (``/static``) to an app."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    precompile()
