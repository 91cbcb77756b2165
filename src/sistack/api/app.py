"""The FastAPI application: routers, error translation, limits, lifecycle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from sistack import __version__
from sistack.api import errors
from sistack.api.limits import BodyLimitMiddleware
from sistack.api.routes import datasets, insights, runs, simulation, system
from sistack.config import Settings
from sistack.service.jobs import JobRunner
from sistack.service.runs import RunService
from sistack.service.simulation import SimulationService


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the service is opened at start-up and closed at shutdown."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = RunService(settings)
        service.recover()
        app.state.service = service
        app.state.jobs = JobRunner(service, workers=settings.job_workers)
        app.state.simulation = SimulationService(service)
        try:
            yield
        finally:
            app.state.jobs.shutdown(wait=True)
            service.close()

    app = FastAPI(
        title="Strategic Intelligence Stack",
        version=__version__,
        description="Customer segmentation and decision intelligence. Errors always come as "
        '`{"error": {"code", "message", "details"}}`.',
        lifespan=lifespan,
    )
    errors.install(app)
    app.include_router(system.router)
    app.include_router(datasets.router)
    app.include_router(runs.router)
    app.include_router(insights.router)
    app.include_router(simulation.router)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_upload_bytes)
    return app
