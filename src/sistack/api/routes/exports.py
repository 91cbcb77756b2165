"""Exports: download a run's report, workbook, tables and manifest as files.

The workbook holds every customer and is built on a background thread: asking for it answers
``202 Accepted`` with the build's progress and a ``Retry-After`` until the file is there, then
``200`` with the file. ``POST`` on the same URL starts the build (or reports it) without ever
sending the file, which is what the Exports tab polls before it downloads.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Response
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field

from sistack.api.deps import exports
from sistack.api.schemas import error_responses
from sistack.service.exports import REGISTRY, ExportFile, ExportService, ExportStatus

router = APIRouter(prefix="/api/v1/runs", tags=["exports"])
# ``:path`` so that every name, even one with a slash, reaches the registry lookup and gets the
# same answer (404 listing the allowed names) instead of the router's bare 404.
EXPORT_PATH = "/{run_id}/exports/{name:path}"


class ExportStatusOut(BaseModel):
    """Where an export stands: ``ready`` (download it from ``url``) or ``building``."""

    run_id: str
    name: str
    status: Literal["ready", "building"]
    progress: float = Field(ge=0, le=1, description="Share of the build done (1 when ready).")
    elapsed_seconds: float = Field(ge=0, description="Time since the build started.")
    retry_after: int | None = Field(description="Seconds to wait before asking again.")
    url: str = Field(description="Where the file is downloaded from.")


def _url(run_id: str, name: str) -> str:
    return f"/api/v1/runs/{run_id}/exports/{name}"


def _building(status: ExportStatus) -> JSONResponse:
    body = ExportStatusOut(
        run_id=status.run_id,
        name=status.name,
        status="building",
        progress=status.progress,
        elapsed_seconds=status.elapsed_seconds,
        retry_after=status.retry_after,
        url=_url(status.run_id, status.name),
    )
    return JSONResponse(
        body.model_dump(), status_code=202, headers={"retry-after": str(status.retry_after)}
    )


BUILDING: dict[int | str, dict[str, Any]] = {
    202: {
        "model": ExportStatusOut,
        "description": "The export is being built (the workbook, on first request): ask again "
        "after Retry-After seconds.",
    }
}


@router.get(
    EXPORT_PATH,
    response_class=FileResponse,
    responses={
        200: {"content": {fmt.media_type: {} for fmt in REGISTRY.values()}},
        **BUILDING,
        **error_responses(404, 409, 503),
    },
)
def get_export(run_id: str, name: str, svc: ExportService = Depends(exports)) -> Response:
    """Download an export of a finished run: ``report.pdf``, ``workbook.xlsx``,
    ``assignments.csv``, ``assignments.parquet``, ``profiles.csv`` or ``manifest.json``.

    Built on the first request and cached (the report and workbook again after a scenario is
    saved). The workbook is built in the background: until it is ready the answer is ``202``
    with its progress and a ``Retry-After`` header.
    """
    found = svc.prepare(run_id, name)
    if isinstance(found, ExportStatus):
        return _building(found)
    return FileResponse(found.path, media_type=found.media_type, filename=found.filename)


@router.post(
    EXPORT_PATH,
    response_model=ExportStatusOut,
    responses={**BUILDING, **error_responses(404, 409, 503)},
)
def prepare_export(
    run_id: str, name: str, svc: ExportService = Depends(exports)
) -> ExportStatusOut | Response:
    """Start building an export (if it is not built or building) and say where it stands:
    ``200`` ready, with the URL to download it from, or ``202`` building, with its progress.
    Never sends the file itself."""
    found: ExportFile | ExportStatus = svc.prepare(run_id, name)
    if isinstance(found, ExportStatus):
        return _building(found)
    return ExportStatusOut(
        run_id=run_id,
        name=name,
        status="ready",
        progress=1.0,
        elapsed_seconds=0.0,
        retry_after=None,
        url=_url(run_id, name),
    )
