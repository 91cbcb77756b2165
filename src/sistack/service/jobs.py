"""Executing queued runs: in the serving process (inline) or in ``sistack worker`` processes.

``SISTACK_EXECUTION=inline`` (the default, one process on a laptop): a small thread pool of the
API process runs each queued run, so a request never waits for a pipeline. A graceful stop lets
the running runs finish and leaves the rest queued; at the next start ``RunService.recover``
fails the runs a dead process left running (``interrupted``) and the queued ones are executed.

``SISTACK_EXECUTION=queue`` (production): the API only inserts queued rows; :class:`Worker`
loops claim them one at a time (:mod:`sistack.service.queue`), heartbeat while running, and
sweep runs whose worker stopped heartbeating. Progress lives in the run row, so any process can
report it.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

from sistack.io.store.metadata import FAILED, SUCCEEDED
from sistack.logs import CURRENT_RUN
from sistack.service.queue import drop_staging, sweep_stale, utcnow
from sistack.service.runs import RunService

log = logging.getLogger("sistack.jobs")


class JobRunner:
    """Runs queued runs on ``workers`` background threads; with ``inline=False`` it only
    leaves them queued for worker processes (``submit`` is then a no-op)."""

    def __init__(self, service: RunService, *, workers: int = 1, inline: bool = True) -> None:
        self.service = service
        self.inline = inline
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, workers), thread_name_prefix="sistack-run"
        )
        self._futures: dict[str, Future[object]] = {}

    def submit(self, run_id: str) -> None:
        if not self.inline:
            log.info("run queued for a worker", extra={"run_id": run_id})
            return
        future = self._pool.submit(self._run, run_id)
        self._futures[run_id] = future
        future.add_done_callback(lambda _: self._futures.pop(run_id, None))

    def _run(self, run_id: str) -> object:
        CURRENT_RUN.set(run_id)
        try:
            return self.service.execute(run_id)
        except Exception:
            log.exception("background run %s crashed", run_id)
            return None

    def wait(self, run_id: str, timeout: float | None = None) -> None:
        """Block until a submitted run finishes (tests and the CLI use this)."""
        if not self.inline:
            deadline = None if timeout is None else time.monotonic() + timeout
            while self.service.get_run(run_id).status not in (SUCCEEDED, FAILED):
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"run {run_id} did not finish in {timeout} s")
                time.sleep(0.1)
            return
        future = self._futures.get(run_id)
        if future is not None:
            future.result(timeout=timeout)

    def shutdown(self, *, wait: bool = True) -> None:
        """Stop: runs in progress finish (``wait``); runs not started stay queued in the
        database, and the next start of an inline process runs them."""
        self._pool.shutdown(wait=wait, cancel_futures=True)


class Worker:
    """Claims queued runs one at a time and executes them until told to stop.

    ``stop()`` (first SIGTERM/SIGINT) lets the current run finish, then the loop ends.
    ``abandon()`` (a second signal) gives the current run back to the queue at once: the claim
    is released, its staging files removed, and the process may exit; the run restarts from
    the beginning on another worker.
    """

    def __init__(self, service: RunService, *, poll: float | None = None) -> None:
        self.service = service
        self.id = service.worker_id
        self.poll = poll if poll is not None else service.settings.worker_poll
        self.current: str | None = None
        self.completed: list[str] = []
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def abandon(self) -> str | None:
        """Re-queue the run in progress (if any, and still ours); returns its id."""
        self._stop.set()
        run_id = self.current
        if run_id is not None and self.service.store.requeue(run_id, self.id):
            drop_staging(self.service, run_id)
            log.warning("run re-queued: worker stopping fast", extra={"run_id": run_id})
            return run_id
        return None

    def step(self) -> str | None:
        """Sweep stale runs, then claim and execute one queued run; its id, or None if idle."""
        sweep_stale(self.service)
        record = self.service.store.claim_next(self.id, now=utcnow())
        if record is None:
            return None
        self.current = record.id
        log.info("run claimed", extra={"run_id": record.id, "worker": self.id})
        started = time.monotonic()
        done: list[str] = []
        thread = threading.Thread(
            target=self._execute, args=(record.id, done), name=f"sistack-run-{record.id}"
        )
        thread.start()
        # The main thread only waits (in short slices, so signal handlers run promptly).
        while thread.is_alive():
            thread.join(0.2)
        self.current = None
        status = done[0] if done else "crashed"
        log.info(
            "run finished",
            extra={
                "run_id": record.id,
                "worker": self.id,
                "status": status,
                "seconds": round(time.monotonic() - started, 3),
            },
        )
        self.completed.append(record.id)
        return record.id

    def _execute(self, run_id: str, done: list[str]) -> None:
        CURRENT_RUN.set(run_id)
        try:
            result = self.service.execute(run_id, worker=self.id)
            done.append(result.status)
            if result.error_code:
                log.warning("run failed", extra={"run_id": run_id, "error_code": result.error_code})
        except Exception:
            log.exception("run crashed", extra={"run_id": run_id})

    def run(self, *, once: bool = False) -> int:
        """Loop until ``stop()``; ``once``: at most one run, then return. Runs executed."""
        log.info(
            "worker started",
            extra={
                "worker": self.id,
                "poll": self.poll,
                "database": self.service.store.engine.dialect.name,
            },
        )
        while not self._stop.is_set():
            ran = self.step()
            if once:
                break
            if ran is None:
                self._stop.wait(self.poll)
        log.info("worker stopped", extra={"worker": self.id, "runs": len(self.completed)})
        return len(self.completed)
