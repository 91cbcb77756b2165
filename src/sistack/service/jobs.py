"""Background execution of queued runs inside the serving process.

A small thread pool runs queued runs so an API request never waits for a pipeline. Progress lives
in the metadata store (the run row), so any process can report it. A process that dies with runs
in flight leaves them queued/running; ``RunService.recover`` marks them failed at the next start.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor

from sistack.service.runs import RunService

log = logging.getLogger("sistack.jobs")


class JobRunner:
    """Runs queued runs on ``workers`` background threads."""

    def __init__(self, service: RunService, *, workers: int = 1) -> None:
        self.service = service
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, workers), thread_name_prefix="sistack-run"
        )
        self._futures: dict[str, Future[object]] = {}

    def submit(self, run_id: str) -> None:
        future = self._pool.submit(self._run, run_id)
        self._futures[run_id] = future
        future.add_done_callback(lambda _: self._futures.pop(run_id, None))

    def _run(self, run_id: str) -> object:
        try:
            return self.service.execute(run_id)
        except Exception:
            log.exception("background run %s crashed", run_id)
            return None

    def wait(self, run_id: str, timeout: float | None = None) -> None:
        """Block until a submitted run finishes (tests and the CLI use this)."""
        future = self._futures.get(run_id)
        if future is not None:
            future.result(timeout=timeout)

    def shutdown(self, *, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
