"""Exports: download a run's report, workbook, tables and manifest as files."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse

from sistack.api.deps import exports
from sistack.api.schemas import error_responses
from sistack.service.exports import REGISTRY, ExportService

router = APIRouter(prefix="/api/v1/runs", tags=["exports"])


@router.get(
    # ``:path`` so that every name, even one with a slash, reaches the registry lookup and gets
    # the same answer (404 listing the allowed names) instead of the router's bare 404.
    "/{run_id}/exports/{name:path}",
    response_class=FileResponse,
    responses={
        200: {"content": {fmt.media_type: {} for fmt in REGISTRY.values()}},
        **error_responses(404, 409, 503),
    },
)
def get_export(run_id: str, name: str, svc: ExportService = Depends(exports)) -> FileResponse:
    """Download an export of a finished run: ``report.pdf``, ``workbook.xlsx``,
    ``assignments.csv``, ``assignments.parquet``, ``profiles.csv`` or ``manifest.json``.

    Built on the first request and cached (the report and workbook again after a scenario is
    saved); a large run's workbook takes about a minute and a half per million customers.
    """
    file = svc.export(run_id, name)
    return FileResponse(file.path, media_type=file.media_type, filename=file.filename)
