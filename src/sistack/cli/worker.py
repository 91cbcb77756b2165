"""``sistack worker``: a process that claims and executes queued runs (production profile).

Shutdown: the first SIGTERM or SIGINT lets the current run finish and then exits 0; a second
one re-queues the current run (another worker starts it again from the beginning) and exits
at once with code 130/143. Logs go to stderr, one JSON object per line with
``SISTACK_LOG_FORMAT=json`` (every line about a run carries ``run_id``).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from types import FrameType
from typing import Annotated, Any

import typer

from sistack.cli.app import app, err, guard
from sistack.config import Settings

# Attributes every LogRecord has; anything else came in through ``extra=`` and is logged.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's extras."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and value is not None:
                data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        run_id = getattr(record, "run_id", None)
        return f"{line} run_id={run_id}" if run_id else line


def configure_logging(fmt: str) -> None:
    """Send ``sistack.*`` logs to stderr as JSON lines or text (``SISTACK_LOG_FORMAT``)."""
    handler = logging.StreamHandler(sys.stderr)
    from sistack.service.queue import RunIdFilter

    handler.addFilter(RunIdFilter())
    handler.setFormatter(
        JsonFormatter() if fmt == "json" else TextFormatter("%(asctime)s %(levelname)s %(message)s")
    )
    root = logging.getLogger("sistack")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False


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
    settings = Settings()
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
