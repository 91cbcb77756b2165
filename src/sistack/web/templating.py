"""Jinja2 for the web pages: one environment, the report's number formats, HTML error pages."""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from sistack import __version__
from sistack.api.security import csrf_token
from sistack.errors import SistackError
from sistack.io.exports.report import add_filters
from sistack.service.auth import Principal

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
P = ParamSpec("P")


def fmt_datetime(value: dt.datetime | str | None) -> str:
    """``2026-12-04 16:27 UTC`` (the store keeps UTC)."""
    if value is None:
        return "—"
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def json_script(value: Any) -> Markup:
    """JSON safe inside ``<script type="application/json">`` (``<``, ``>``, ``&`` escaped)."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)


def page_csrf_token(request: Request) -> str:
    """The session's CSRF token for the page's forms and scripts ('' without a session)."""
    session = request.scope.get("session")
    return csrf_token(session) if session is not None else ""


def page_principal(request: Request) -> Principal | None:
    """Who the page is shown to (None on public pages such as /login)."""
    found = request.scope.get("state", {}).get("principal")
    return found if isinstance(found, Principal) else None


def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=HERE / "templates")
    env = templates.env
    add_filters(env)
    env.filters["datetime"] = fmt_datetime
    env.filters["json_script"] = json_script
    env.globals["version"] = __version__
    env.globals["csrf_token"] = page_csrf_token
    env.globals["principal_of"] = page_principal
    env.undefined = jinja2.StrictUndefined
    return templates


templates = _templates()


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page; ``context["twins"]`` lists the API endpoints whose data the page shows."""
    context.setdefault("twins", [])
    context.setdefault("nav", "")
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def html_errors(page: Callable[P, HTMLResponse]) -> Callable[P, HTMLResponse]:
    """Show a page's expected failures (unknown run, run not finished...) as an HTML page.

    The API answers the same errors as JSON; a person following a link gets the message and a
    way back instead.
    """

    @functools.wraps(page)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> HTMLResponse:
        try:
            return page(*args, **kwargs)
        except SistackError as exc:
            request = kwargs.get("request")
            if not isinstance(request, Request):
                raise
            return render(request, "error.html", status_code=exc.status, error=exc)

    return wrapper
