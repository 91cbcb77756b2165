"""POST /api/v1/datasets: upload a file, get its shape, mapping, preview and quality summary."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from sistack.api.deps import UPLOAD_BODY, receive_upload, service
from sistack.api.schemas import DatasetOut, error_responses
from sistack.service.runs import RunService

router = APIRouter(prefix="/api/v1/datasets", tags=["datasets"])
ERRORS = error_responses(413, 415, 422)


@router.post(
    "", status_code=201, response_model=DatasetOut, responses=ERRORS, openapi_extra=UPLOAD_BODY
)
async def upload_dataset(
    request: Request,
    shape: str | None = Query(default=None, pattern="^(customers|transactions)$"),
    svc: RunService = Depends(service),
) -> DatasetOut:
    """Upload a CSV/TSV/XLSX/Parquet file (multipart field ``file``)."""
    path, filename = await receive_upload(request, svc.settings.datasets_dir / ".incoming")
    try:
        record, inspection = await run_in_threadpool(
            svc.add_dataset, path, filename=filename, keep=True, shape=shape
        )
    finally:
        path.unlink(missing_ok=True)
    info = inspection.to_dict()
    return DatasetOut(
        id=record.id,
        filename=record.filename,
        sha256=record.sha256,
        size_bytes=record.size_bytes,
        format=record.format,
        shape=record.shape,
        rows=info["rows"],
        columns=info["columns"],
        encoding=info["encoding"],
        delimiter=info["delimiter"],
        mapping=info["mapping"],
        notes=info["notes"],
        warnings=info["warnings"],
        missing_values=info["missing_values"],
        preview=info["preview"],
    )
