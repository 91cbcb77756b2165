"""The FastAPI application: routers, error translation, limits, lifecycle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.sessions import SessionMiddleware

from sistack import __version__, web
from sistack.api import errors
from sistack.api.limits import BodyLimitMiddleware
from sistack.api.routes import datasets, exports, health, insights, runs, simulation, system
from sistack.api.schemas import error_responses
from sistack.api.security import AccessMiddleware, SecurityHeadersMiddleware
from sistack.config import Settings
from sistack.service.auth import session_secret
from sistack.service.exports import ExportService
from sistack.service.jobs import JobRunner
from sistack.service.queue import sweep_stale
from sistack.service.runs import RunService
from sistack.service.simulation import SimulationService


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the service is opened at start-up and closed at shutdown."""
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = RunService(settings)
        inline = settings.execution == "inline"
        queued: list[str] = []
        if inline:
            # One process owns every run: whatever was running is dead; what was queued (a
            # graceful stop leaves the queue untouched) runs now.
            _, queued = service.recover()
        else:
            # Other API and worker processes share the database: fail only the runs whose
            # worker stopped heartbeating, never the queue or live runs.
            sweep_stale(service)
        app.state.service = service
        app.state.jobs = JobRunner(service, workers=settings.job_workers, inline=inline)
        for run_id in queued:
            app.state.jobs.submit(run_id)
        app.state.simulation = SimulationService(service)
        app.state.exports = ExportService(service, simulation=app.state.simulation)
        try:
            yield
        finally:
            app.state.jobs.shutdown(wait=True)
            app.state.exports.close()
            service.close()

    app = FastAPI(
        title="Strategic Intelligence Stack",
        version=__version__,
        description="Customer segmentation and decision intelligence. Errors always come as "
        '`{"error": {"code", "message", "details"}}`.',
        lifespan=lifespan,
        # Any route can meet a storage failure (database down, damaged artifact): documented
        # once for all of them.
        responses=error_responses(503),
    )
    errors.install(app)
    app.include_router(system.router)
    app.include_router(health.router)
    app.include_router(datasets.router)
    app.include_router(runs.router)
    app.include_router(insights.router)
    app.include_router(simulation.router)
    app.include_router(exports.router)
    app.include_router(datasets.roles_router)
    web.install(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_bytes)
    # Outermost last: security headers on every answer, then the signed session cookie the
    # access checks read (keys, roles, CSRF), then the body limit.
    app.add_middleware(AccessMiddleware)
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(settings),
        session_cookie="sistack_session",
        max_age=settings.session_max_age,
        same_site="lax",
        https_only=settings.session_https_only,
    )
    app.add_middleware(SecurityHeadersMiddleware)
    if settings.allowed_origins:
        # Outermost, so a preflight is answered before any key check. No credentials: a page
        # of another origin calls with an API key header, never with the session cookie.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.allowed_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
            expose_headers=["Retry-After", "Content-Disposition"],
            max_age=600,
        )
    return app
