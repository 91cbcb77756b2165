"""The run queue shared by several processes: worker ids, heartbeats, the stale-run sweep.

The queue is the ``runs`` table itself (no broker): a queued run is claimed by exactly one
worker in one statement (:meth:`MetadataStore.claim_next`), the worker heartbeats while it runs,
and any process may fail a run whose heartbeat is older than ``heartbeat_timeout`` as
``interrupted``. Every later write of a worker is conditional on still holding the claim, so a
worker that comes back after being swept can neither mark the run succeeded nor leave files.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import shutil
import socket
import tempfile
import threading
from types import TracebackType
from typing import TYPE_CHECKING

from sistack.errors import StorageError
from sistack.io.store.artifacts import STAGING
from sistack.io.store.metadata import MetadataStore

if TYPE_CHECKING:  # runs.py imports this module; the service is only a type here
    from sistack.service.runs import RunService

log = logging.getLogger("sistack.queue")


def worker_id() -> str:
    """``host:pid:token``: unique per process start, readable in logs and in the run row."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(3)}"


def utcnow() -> dt.datetime:
    """Wall-clock time for metadata only (claims, heartbeats, created/finished); never results."""
    return dt.datetime.now(dt.UTC)


class Heartbeat:
    """A daemon thread that refreshes a claimed run's ``heartbeat_at`` every ``every`` seconds.

    ``lost`` turns true when the claim is gone (a sweep failed the run, or it was re-queued);
    the executing code then discards its result instead of writing it.
    """

    def __init__(self, store: MetadataStore, run_id: str, worker: str, *, every: float) -> None:
        self.store = store
        self.run_id = run_id
        self.worker = worker
        self.every = every
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"sistack-heartbeat-{run_id}", daemon=True
        )

    def _beat(self) -> None:
        while not self._stop.wait(self.every):
            try:
                alive = self.store.update_claimed(self.run_id, self.worker, heartbeat_at=utcnow())
            except Exception:  # a database blip: try again at the next beat
                log.warning("heartbeat failed", extra={"run_id": self.run_id}, exc_info=True)
                continue
            if not alive:
                self.lost = True
                log.warning("claim lost", extra={"run_id": self.run_id, "worker": self.worker})
                return

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=self.every + 5)


def sweep_stale(service: RunService) -> list[str]:
    """Fail running runs without a heartbeat for ``heartbeat_timeout`` seconds (as
    ``interrupted``) and remove their staging directories. Safe with live workers: a run whose
    worker heartbeats is never touched."""
    now = utcnow()
    before = now - dt.timedelta(seconds=service.settings.heartbeat_timeout)
    failed = service.store.fail_stale(before=before, now=now)
    staging = service.artifacts.root / STAGING
    for run_id in failed:
        if staging.is_dir():
            for leftover in staging.glob(f"{run_id}.*"):
                shutil.rmtree(leftover, ignore_errors=True)
        log.warning("run failed as interrupted: no heartbeat", extra={"run_id": run_id})
    return failed


def drop_staging(service: RunService, run_id: str) -> None:
    """Remove the staging directories of one run (a worker giving its run back)."""
    staging = service.artifacts.root / STAGING
    if staging.is_dir():
        for leftover in staging.glob(f"{run_id}.*"):
            shutil.rmtree(leftover, ignore_errors=True)


def readiness(service: RunService) -> dict[str, str]:
    """``{"database": ..., "artifact_root": ...}``: "ok" or what is wrong with each."""
    checks: dict[str, str] = {}
    try:
        service.store.ping()
        checks["database"] = "ok"
    except StorageError as exc:
        checks["database"] = exc.message
    root = service.artifacts.root
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".ready-"):
            pass
        checks["artifact_root"] = "ok"
    except OSError as exc:
        checks["artifact_root"] = f"Cannot write to {root}: {exc.strerror or exc}."
    return checks
