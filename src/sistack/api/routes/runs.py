"""Runs: create, poll, list, results, reproduce, score, delete."""

from __future__ import annotations

import io
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse

from sistack.api.deps import UPLOAD_BODY, exports, jobs, receive_upload, service
from sistack.api.schemas import (
    AssignmentsPage,
    ReproduceOut,
    RunCreate,
    RunOut,
    RunPage,
    SegmentsOut,
    error_responses,
)
from sistack.io.exports import neutralise
from sistack.service.exports import ExportService
from sistack.service.jobs import JobRunner
from sistack.service.runs import RunService

router = APIRouter(prefix="/api/v1/runs", tags=["runs"])
NOT_FOUND = error_responses(404)
NOT_READY = error_responses(404, 409)
CSV = {"text/csv": {"schema": {"type": "string"}}}
PARQUET = {"application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}}}


@router.post(
    "",
    status_code=202,
    response_model=RunOut,
    responses=error_responses(404, 422),
)
def create_run(
    body: RunCreate, svc: RunService = Depends(service), runner: JobRunner = Depends(jobs)
) -> RunOut:
    """Queue a segmentation run of an uploaded dataset; poll ``GET /runs/{id}`` for progress."""
    config = svc.default_config(
        k=body.k,
        k_min=body.k_min,
        k_max=body.k_max,
        seed=body.seed,
        reference_date=body.reference_date,
        engine=body.engine,
        spark_master=body.spark_master,
    )
    record = svc.create_run(
        body.dataset_id,
        config=config,
        mapping=body.mapping,
        name=body.name,
        parent_id=body.parent_id,
    )
    runner.submit(record.id)
    return RunOut.of(record, filename=svc.filenames([record]).get(record.dataset_id))


@router.get("", response_model=RunPage)
def list_runs(
    status: Literal["queued", "running", "succeeded", "failed"] | None = None,
    dataset_id: str | None = Query(default=None, max_length=64),
    limit: int = Query(default=50, ge=1, le=500),
    offset: int = Query(default=0, ge=0, le=10**9),
    svc: RunService = Depends(service),
) -> RunPage:
    items, total = svc.list_runs(status=status, dataset_id=dataset_id, limit=limit, offset=offset)
    names = svc.filenames(items)
    return RunPage(
        items=[RunOut.of(r, filename=names.get(r.dataset_id)) for r in items],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/{run_id}", response_model=RunOut, responses=NOT_FOUND)
def get_run(run_id: str, svc: RunService = Depends(service)) -> RunOut:
    record = svc.get_run(run_id)
    return RunOut.of(record, filename=svc.filenames([record]).get(record.dataset_id))


@router.get("/{run_id}/manifest", responses=NOT_READY)
def get_manifest(run_id: str, svc: RunService = Depends(service)) -> dict:
    return svc.manifest(run_id)


@router.get("/{run_id}/segments", response_model=SegmentsOut, responses=NOT_READY)
def get_segments(run_id: str, svc: RunService = Depends(service)) -> SegmentsOut:
    """Per-segment sizes, revenue shares, feature means and medians, stability."""
    doc = svc.profiles(run_id)
    population, *segments = doc["profiles"]
    return SegmentsOut(
        run_id=run_id,
        k=len(segments),
        features=doc["features"],
        population=population,
        segments=segments,
    )


@router.get("/{run_id}/quality", responses=NOT_READY)
def get_quality(run_id: str, svc: RunService = Depends(service)) -> dict:
    return svc.quality(run_id)


@router.get(
    "/{run_id}/assignments",
    response_model=AssignmentsPage,
    responses={**NOT_READY, 200: {"content": {**CSV, **PARQUET}}},
)
def get_assignments(
    run_id: str,
    offset: int = Query(default=0, ge=0, le=10**9),
    limit: int = Query(default=100, ge=1, le=10_000),
    format: Literal["json", "csv", "parquet"] = "json",
    svc: RunService = Depends(service),
    cached: ExportService = Depends(exports),
) -> Response | AssignmentsPage:
    """A page of customer assignments as JSON, or the whole file with ``format=csv|parquet``."""
    if format == "parquet":
        return FileResponse(
            svc.assignments_path(run_id),
            media_type="application/vnd.apache.parquet",
            filename=f"{run_id}-assignments.parquet",
        )
    if format == "csv":
        # The same cached, streamed (and formula-neutralised) file as /exports/assignments.csv.
        export = cached.export(run_id, "assignments.csv")
        return FileResponse(export.path, media_type=export.media_type, filename=export.filename)
    frame, total = svc.assignments_page(run_id, offset=offset, limit=limit)
    return AssignmentsPage(
        run_id=run_id, items=frame.to_dicts(), total=total, limit=limit, offset=offset
    )


@router.post("/{run_id}/reproduce", response_model=ReproduceOut, responses=NOT_READY)
def reproduce(run_id: str, svc: RunService = Depends(service)) -> ReproduceOut:
    """Recompute the run from its stored input and config and say whether it is identical."""
    result = svc.reproduce(run_id)
    return ReproduceOut(
        run_id=result.run_id,
        new_run_id=result.new_run_id,
        identical=result.identical,
        differing=result.differing,
    )


@router.post(
    "/{run_id}/score",
    responses={
        **error_responses(404, 409, 413, 415, 422),
        200: {
            "description": "The customers with their segments (CSV by default, or JSON records)",
            "content": {**CSV, "application/json": {"schema": {"type": "array"}}},
        },
    },
    openapi_extra=UPLOAD_BODY,
)
async def score(
    request: Request,
    run_id: str,
    format: Literal["csv", "json"] = "csv",
    svc: RunService = Depends(service),
) -> Response:
    """Upload new customers (multipart ``file``); get their segments without refitting."""
    await run_in_threadpool(svc.finished, run_id)
    path, filename = await receive_upload(request, svc.settings.datasets_dir / ".incoming")
    try:
        frame = await run_in_threadpool(svc.score, run_id, path, filename=filename)
    finally:
        path.unlink(missing_ok=True)
    if format == "json":
        return Response(frame.write_json(), media_type="application/json")
    buffer = io.BytesIO()
    neutralise(frame).write_csv(buffer)
    return Response(
        buffer.getvalue(),
        media_type="text/csv",
        headers={"content-disposition": f'attachment; filename="{run_id}-scored.csv"'},
    )


@router.delete("/{run_id}", status_code=204, responses=error_responses(404, 409))
def delete_run(run_id: str, svc: RunService = Depends(service)) -> Response:
    svc.delete_run(run_id)
    return Response(status_code=204)
