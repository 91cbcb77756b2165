"""Readiness: can this process serve requests and accept runs (database, artifact root)?

``GET /health`` (liveness, in ``system``) says the process answers. ``GET /ready`` checks the
things a request needs: the metadata database answers and the artifact root is writable. A load
balancer sends traffic only while it returns 200; 503 names what is wrong.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from sistack.api.deps import runtime
from sistack.service.queue import readiness
from sistack.service.runs import RunService

router = APIRouter(tags=["system"])


class Ready(BaseModel):
    status: Literal["ready", "not_ready"]
    execution: Literal["inline", "queue"]
    checks: dict[str, str]


@router.get("/ready", response_model=Ready, responses={503: {"model": Ready}})
def ready(svc: RunService = Depends(runtime)) -> JSONResponse:
    checks = readiness(svc)
    ok = all(value == "ok" for value in checks.values())
    body = Ready(
        status="ready" if ok else "not_ready", execution=svc.settings.execution, checks=checks
    )
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)
