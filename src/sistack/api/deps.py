"""Dependencies: the services, scoped to the caller's workspace, and the job runner.

The services on the application state see every workspace; each request gets a view of them
limited to its principal's workspace (set by :class:`~sistack.api.security.AccessMiddleware`),
so a route cannot reach another workspace's data even by accident.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from fastapi import Request
from starlette.datastructures import UploadFile

from sistack.errors import AuthError, InputError
from sistack.service.auth import Principal
from sistack.service.exports import ExportService
from sistack.service.jobs import JobRunner
from sistack.service.runs import RunService
from sistack.service.simulation import SimulationService

UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}


def principal(request: Request) -> Principal:
    """Who the request acts for; refused when the access middleware did not identify anyone."""
    found = request.scope.get("state", {}).get("principal")
    if not isinstance(found, Principal):
        raise AuthError("This request is not authenticated.", code="auth_required")
    return found


def service(request: Request) -> RunService:
    svc: RunService = request.app.state.service
    return svc.scoped(principal(request).workspace)


def runtime(request: Request) -> RunService:
    """The unscoped service, for what concerns the process and no workspace (readiness)."""
    svc: RunService = request.app.state.service
    return svc


def simulation(request: Request) -> SimulationService:
    sim: SimulationService = request.app.state.simulation
    return sim.scoped(principal(request).workspace)


def exports(request: Request) -> ExportService:
    cached: ExportService = request.app.state.exports
    return cached.scoped(principal(request).workspace)


def jobs(request: Request) -> JobRunner:
    return request.app.state.jobs


async def receive_upload(request: Request, folder: Path) -> tuple[Path, str]:
    """Stream the multipart field ``file`` to a server-named file in ``folder``.

    The body limit middleware stops oversized bodies while they stream; the user's file name is
    returned only as display metadata, never used as a path.
    """
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise InputError(
            "Send the file as multipart/form-data in a field named 'file'.",
            code="upload_expected",
        )
    folder.mkdir(parents=True, exist_ok=True)
    async with request.form(max_files=1, max_fields=10) as form:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InputError("The form has no file field named 'file'.", code="upload_expected")
        fd, name = tempfile.mkstemp(prefix="upload-", suffix=".bin", dir=folder)
        path = Path(name)
        with open(fd, "wb") as out:
            await upload.seek(0)
            shutil.copyfileobj(upload.file, out, length=1 << 20)
        return path, upload.filename or "upload"
