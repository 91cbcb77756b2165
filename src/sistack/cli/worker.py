"""``sistack worker``: a process that claims and executes queued runs (production profile).

Shutdown: the first SIGTERM or SIGINT lets the current run finish and then exits 0; a second
one re-queues the current run (another worker starts it again from the beginning) and exits
at once with code 130/143. Logs go to stderr, one JSON object per line with
``SISTACK_LOG_FORMAT=json`` (every line about a run carries ``run_id``).
"""

from __future__ import annotations

import logging
import os
import signal
from types import FrameType
from typing import Annotated

import typer

from sistack.cli.app import app, err, guard
from sistack.config import Settings
from sistack.logs import configure_logging


@app.command()
@guard
def worker(
    poll: Annotated[
        float | None,
        typer.Option(min=0.01, help="Seconds between claims when the queue is empty (default 1)."),
    ] = None,
    once: Annotated[bool, typer.Option(help="Execute at most one queued run, then exit.")] = False,
) -> None:
    """Claim and execute queued runs (SISTACK_EXECUTION=queue); stop with SIGTERM or Ctrl-C."""
    settings = Settings.from_env()
    configure_logging(settings.log_format)
    from sistack.service.jobs import Worker
    from sistack.service.runs import RunService

    service = RunService(settings)
    loop = Worker(service, poll=poll)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if not loop.stopping:
            logging.getLogger("sistack.worker").info(
                "stopping after the current run", extra={"run_id": loop.current, "signal": signum}
            )
            loop.stop()
            return
        loop.abandon()
        logging.shutdown()
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        loop.run(once=once)
    finally:
        service.close()
    if settings.log_format != "json":
        err.print(f"Worker {loop.id} stopped after {len(loop.completed)} run(s).")
