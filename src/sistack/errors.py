"""One error hierarchy for the whole product.

Every error carries a stable ``code`` (what a client can switch on), a ``message`` a person can act
on, optional structured ``details`` and the HTTP status the API answers with. The API and the CLI
translate these once, at the edge; nothing below them knows about HTTP or exit codes.
"""

from __future__ import annotations

from typing import Any


class SistackError(Exception):
    """Base class: an expected, explainable failure."""

    code = "error"
    status = 400

    def __init__(
        self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details: dict[str, Any] = details or {}

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class InputError(SistackError):
    """The user's data or request cannot be used as given (HTTP 422, CLI exit 2)."""

    code = "invalid_input"
    status = 422


class UnsupportedFormat(InputError):
    """The file content is not a format we read (HTTP 415)."""

    code = "unsupported_format"
    status = 415


class LimitExceeded(InputError):
    """A configured size limit was exceeded while reading (HTTP 413)."""

    code = "limit_exceeded"
    status = 413


class NotFound(SistackError):
    """An id that does not exist (or is malformed) was asked for (HTTP 404)."""

    code = "not_found"
    status = 404


class AuthError(SistackError):
    """No API key where one is required (``auth_required``), or an unknown or revoked one
    (``invalid_key``) (HTTP 401)."""

    code = "auth_required"
    status = 401


class Forbidden(SistackError):
    """The caller is known but may not do this (HTTP 403): ``read_only_key``, ``csrf_failed``,
    ``host_not_allowed``."""

    code = "forbidden"
    status = 403


class Conflict(SistackError):
    """The object exists but is not in a state that allows the request (HTTP 409)."""

    code = "conflict"
    status = 409


class StorageError(SistackError):
    """The metadata store or artifact root failed (HTTP 503)."""

    code = "storage_error"
    status = 503


# Failure codes of runs that are not the user's input (a run row stores only its code).
SERVER_SIDE_CODES = frozenset(
    {
        "internal_error",
        "storage_error",
        "artifact_root_unwritable",
        "artifact_corrupt",
        "disk_full",
        "run_exists",
        "database_unavailable",
        "export_unavailable",
    }
)


def row_examples(rows: list[int], *, limit: int = 5) -> str:
    """Format 1-based row numbers for a message: ``"rows 4, 19, 233, ..."``."""
    shown = ", ".join(str(r) for r in rows[:limit])
    more = ", ..." if len(rows) > limit else ""
    word = "row" if len(rows) == 1 else "rows"
    return f"{word} {shown}{more}"
