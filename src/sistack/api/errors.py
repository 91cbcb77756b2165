"""Translate every failure into one error body, once, at the edge of the API."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from sistack.api.schemas import ErrorResponse
from sistack.errors import SistackError

log = logging.getLogger("sistack.api")


def error_response(
    status: int, code: str, message: str, details: dict | None = None
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return JSONResponse(body, status_code=status)


def install(app: FastAPI) -> None:
    @app.exception_handler(SistackError)
    async def _sistack(_: Request, exc: SistackError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {
                "field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"),
                "message": e.get("msg", ""),
            }
            for e in exc.errors()
        ]
        summary = "; ".join(f"{p['field'] or 'body'}: {p['message']}" for p in problems[:5])
        return error_response(
            422, "invalid_request", f"The request is not valid: {summary}", {"problems": problems}
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # A body that is not JSON, or broken multipart: a request that is not valid, like any
            # other (FastAPI's 400 here was documented nowhere).
            return error_response(
                422,
                "invalid_request",
                f"The request is not valid: {exc.detail}. Send a well-formed JSON body, or "
                "multipart/form-data for uploads.",
            )
        codes = {404: "not_found", 405: "method_not_allowed", 413: "limit_exceeded"}
        code = codes.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))

    document_errors(app)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(
            500, "internal_error", "An unexpected error occurred; it has been logged."
        )


UNAUTHORIZED = (
    "No API key (`auth_required`), or an unknown or revoked one (`invalid_key`); only while "
    "API keys exist (without any, the server is in local mode)"
)
FORBIDDEN = (
    "A read-only key on a route that changes state (`read_only_key`), or a browser request "
    "without the session's CSRF token (`csrf_failed`)"
)
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "`sistack keys create`"},
    "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


def document_errors(app: FastAPI) -> None:
    """Make the OpenAPI document say what the edge really answers.

    FastAPI documents its own ``HTTPValidationError`` body for 422, but the handlers above answer
    every 422 with our error body; and any request with a body may be refused with 413 by the
    body limit (``limits.py``) before a route sees it.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        refs = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(refs.pop("$defs", {}))
        components["ErrorResponse"] = refs
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
        schema["components"]["securitySchemes"] = SECURITY_SCHEMES
        for path, item in schema.get("paths", {}).items():
            for method, operation in item.items():
                responses = operation.setdefault("responses", {})
                if path.startswith("/api/"):
                    # Access control (api/security.py) answers before any route, once keys exist.
                    responses.setdefault("401", {"description": UNAUTHORIZED, "content": error})
                    # Either header; ``{}``: none needed in local mode. (Swagger UI's Authorize.)
                    operation.setdefault("security", [{"bearer": []}, {"apiKeyHeader": []}, {}])
                    if method.upper() not in ("GET", "HEAD", "OPTIONS"):
                        responses.setdefault("403", {"description": FORBIDDEN, "content": error})
                if "422" in responses:
                    responses["422"] = {"description": "Invalid request", "content": error}
                if "requestBody" in operation and "413" not in responses:
                    responses["413"] = {"description": "Request body too large", "content": error}
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
