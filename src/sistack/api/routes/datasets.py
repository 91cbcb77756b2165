"""POST /api/v1/datasets: upload a file, get its shape, mapping, preview and quality summary."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from sistack.api.deps import UPLOAD_BODY, receive_upload, service
from sistack.api.schemas import DatasetOut, error_responses
from sistack.service.runs import RunService

router = APIRouter(prefix="/api/v1/datasets", tags=["datasets"])
roles_router = APIRouter(tags=["datasets"])
ERRORS = error_responses(413, 415, 422)


class RoleOut(BaseModel):
    """A role a column can be mapped to."""

    name: str = Field(description="Role name; family roles read 'family:<name>'.")
    shape: Literal["customers", "transactions"]
    description: str
    type: Literal["text", "number", "date", "flag", "none"] = Field(
        description="The kind of value the column must hold."
    )
    family: bool = Field(description="One column per member (e.g. spend:wines, spend:meat).")
    required: bool = Field(description="Every mapping of this shape needs this role.")
    required_group: str | None = Field(
        description="Needed unless another role of the same group is mapped."
    )


@roles_router.get("/api/v1/roles", response_model=list[RoleOut])
def roles(
    shape: Literal["customers", "transactions"] | None = None,
    svc: RunService = Depends(service),
) -> list[RoleOut]:
    """The roles a column can play, per layout: what each means, the values it needs and
    whether a mapping must have it (what the mapping editor of New analysis lists)."""
    return [RoleOut(**r.to_dict()) for r in svc.roles(shape)]


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
