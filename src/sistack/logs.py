"""Log lines for operators: text for a terminal, one JSON object per line for a log pipeline.

``SISTACK_LOG_FORMAT=json`` applies to ``sistack worker`` and ``sistack serve`` alike (the
latter also formats uvicorn's own lines, in every process of ``--workers N``). Every line about
a run carries ``run_id``: lines written while a run executes get it from the context
(``RunIdFilter``), HTTP access lines from the request path (``/api/v1/runs/<id>/...``,
``/runs/<id>``).
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
from typing import Any

# Attributes every LogRecord has; anything else came in through ``extra=`` and is logged.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
# The run a thread is working on (set by the job runners); RunIdFilter puts it on log records.
CURRENT_RUN: contextvars.ContextVar[str | None] = contextvars.ContextVar("run_id", default=None)
_RUN_IN_PATH = re.compile(r"/runs/([0-9A-HJKMNP-TV-Z]{26})(?:[/?#]|$)")


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
            if key not in _STANDARD and value is not None and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


class TextFormatter(logging.Formatter):
    """The usual text line, with ``run_id=...`` appended when the record has one."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        run_id = getattr(record, "run_id", None)
        return f"{line} run_id={run_id}" if run_id else line


class RunIdFilter(logging.Filter):
    """Put the id of the run being executed on every record emitted meanwhile."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "run_id", None) is None:
            record.run_id = CURRENT_RUN.get()
        return True


class AccessFilter(logging.Filter):
    """Structured fields of uvicorn's access lines, and the run id found in the path.

    uvicorn logs ``'%s - "%s %s HTTP/%s" %d'`` with (client, method, path, version, status).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5:
            client, method, path, _version, status = args
            record.client, record.method, record.path, record.status = client, method, path, status
            found = _RUN_IN_PATH.search(str(path))
            if found and getattr(record, "run_id", None) is None:
                record.run_id = found.group(1)
        return True


def _formatter(fmt: str) -> dict[str, Any]:
    if fmt == "json":
        return {"()": "sistack.logs.JsonFormatter"}
    return {"()": "sistack.logs.TextFormatter", "fmt": "%(asctime)s %(levelname)s %(message)s"}


def logging_config(fmt: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for ``sistack.*`` and uvicorn's loggers (uvicorn applies
    it in each process it starts)."""
    handler = {
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
        "formatter": "main",
        "filters": ["run_id"],
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"run_id": {"()": RunIdFilter}, "access": {"()": AccessFilter}},
        "formatters": {"main": _formatter(fmt)},
        "handlers": {
            "main": handler,
            "access": {**handler, "filters": ["access", "run_id"]},
        },
        "loggers": {
            "sistack": {"handlers": ["main"], "level": "INFO", "propagate": False},
            "uvicorn": {"handlers": ["main"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        },
    }


def configure_logging(fmt: str) -> None:
    """Apply :func:`logging_config` in this process (``sistack worker``)."""
    import logging.config

    logging.config.dictConfig(logging_config(fmt))
