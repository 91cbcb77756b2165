"""Health and the demo."""

from __future__ import annotations

import tempfile
from pathlib import Path

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool

from sistack import __version__
from sistack.api.deps import jobs, service
from sistack.api.schemas import DemoCreate, Health, RunOut
from sistack.demo import write_dataset
from sistack.service.jobs import JobRunner
from sistack.service.runs import RunService

router = APIRouter()


@router.get("/health", response_model=Health, tags=["system"])
def health() -> Health:
    return Health(status="ok", version=__version__)


@router.post("/api/v1/demo", status_code=202, response_model=RunOut, tags=["runs"])
async def demo(
    body: DemoCreate | None = None,
    svc: RunService = Depends(service),
    runner: JobRunner = Depends(jobs),
) -> RunOut:
    """Generate a synthetic customer file with planted segments and queue a run on it."""
    body = body or DemoCreate()
    incoming = svc.settings.datasets_dir / ".incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(dir=incoming)) / f"demo-{body.layout}.csv"

    def _make() -> RunOut:
        write_dataset(path, customers=body.customers, layout=body.layout, seed=body.seed)
        record, _ = svc.add_dataset(path, filename=path.name, keep=True)
        path.parent.rmdir()
        run = svc.create_run(record.id, name=f"Demo ({body.customers:,} customers)")
        runner.submit(run.id)
        return RunOut.of(run, filename=record.filename)

    return await run_in_threadpool(_make)
