"""Pydantic models of the API's requests and responses."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sistack.io.store.metadata import RunRecord


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorResponse(BaseModel):
    error: ErrorBody


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` documenting our error body for each status."""
    return {status: {"model": ErrorResponse} for status in statuses}


class DatasetOut(BaseModel):
    id: str
    filename: str
    sha256: str
    size_bytes: int
    format: str
    shape: str
    rows: int
    columns: list[str]
    encoding: str | None
    delimiter: str | None
    mapping: dict[str, Any]
    notes: list[str]
    warnings: list[dict[str, str]]
    missing_values: dict[str, int]
    preview: list[dict[str, Any]]


class RunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset_id: str = Field(min_length=1, max_length=64)
    mapping: dict[str, Any] | None = None
    k: int | None = Field(default=None, ge=2, le=30)
    k_min: int | None = Field(default=None, ge=2, le=30)
    k_max: int | None = Field(default=None, ge=2, le=30)
    seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    reference_date: dt.date | None = None
    name: str | None = Field(default=None, max_length=255)
    parent_id: str | None = Field(default=None, max_length=64)
    engine: Literal["local", "spark"] | None = Field(
        default=None, description="Where the run computes: 'local' (default) or 'spark'."
    )
    spark_master: str | None = Field(
        default=None, max_length=300, description="Spark master URL, e.g. spark://host:7077."
    )

    @model_validator(mode="after")
    def _k_range(self) -> RunCreate:
        if self.k_min is not None and self.k_max is not None and self.k_min > self.k_max:
            raise ValueError(f"k_min ({self.k_min}) must not exceed k_max ({self.k_max})")
        return self


class DemoCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customers: int = Field(default=2000, ge=100, le=200_000)
    seed: int = Field(default=42, ge=0, le=2**31 - 1)
    layout: str = Field(default="customers", pattern="^(customers|transactions)$")


class RunOut(BaseModel):
    id: str
    dataset_id: str
    parent_id: str | None
    name: str
    status: str
    stage: str
    progress: int
    config: dict[str, Any]
    error: ErrorBody | None
    n_customers: int | None
    k: int | None
    summary: dict[str, Any] | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    filename: str | None = Field(
        default=None, description="The input file's original name (cleaned for display)."
    )
    links: dict[str, str]

    @classmethod
    def of(cls, r: RunRecord, *, filename: str | None = None) -> RunOut:
        base = f"/api/v1/runs/{r.id}"
        links = {"self": base}
        if r.status == "succeeded":
            links.update(
                segments=f"{base}/segments",
                assignments=f"{base}/assignments",
                quality=f"{base}/quality",
                manifest=f"{base}/manifest",
            )
        error = (
            ErrorBody(code=r.error_code, message=r.error_message or "") if r.error_code else None
        )
        return cls(
            id=r.id,
            dataset_id=r.dataset_id,
            parent_id=r.parent_id,
            name=r.name,
            status=r.status,
            stage=r.stage,
            progress=r.progress,
            config=r.config,
            error=error,
            n_customers=r.n_customers,
            k=r.k,
            summary=r.summary,
            created_at=r.created_at,
            started_at=r.started_at,
            finished_at=r.finished_at,
            filename=filename,
            links=links,
        )


class RunPage(BaseModel):
    items: list[RunOut]
    total: int
    limit: int
    offset: int


class SegmentsOut(BaseModel):
    run_id: str
    k: int
    features: list[dict[str, Any]]
    population: dict[str, Any]
    segments: list[dict[str, Any]]


class AssignmentsPage(BaseModel):
    run_id: str
    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


class ReproduceOut(BaseModel):
    run_id: str
    new_run_id: str
    identical: bool
    differing: list[str]


class Health(BaseModel):
    status: str
    version: str
