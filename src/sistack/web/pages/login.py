"""Log in with an API key (a signed session cookie then carries its id), and log out.

Only while keys exist: in local mode there is nobody to be, and ``/login`` goes home. The forms
carry the session's CSRF token in a hidden field (checked here, not by the middleware, since it
is in the body); the key itself is never stored in the cookie, only its public id.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from sistack.api.security import SESSION_KEY, csrf_ok, csrf_token
from sistack.errors import AuthError
from sistack.service.auth import KeyService
from sistack.web.templating import render

router = APIRouter(include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Where to go after login: a path on this site only (never ``//host`` or a URL)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def _keys(request: Request) -> KeyService:
    return KeyService(request.app.state.service.store)


def _page(
    request: Request, *, next_path: str, error: str | None = None, status: int = 200
) -> HTMLResponse:
    return render(
        request,
        "login.html",
        status_code=status,
        next_path=next_path,
        login_error=error,
        csrf=csrf_token(request.session),
    )


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str | None = None) -> Response:
    if not await run_in_threadpool(_keys(request).enabled):
        return RedirectResponse(safe_next(next), status_code=303)
    return _page(request, next_path=safe_next(next))


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    async with request.form(max_files=0, max_fields=5) as form:
        key, sent, target = (str(form.get(n) or "") for n in ("key", "csrf", "next"))
    next_path = safe_next(target)
    if not csrf_ok(request.session, sent):
        return _page(
            request,
            next_path=next_path,
            error="The form expired (CSRF check failed); paste the key again.",
            status=403,
        )
    try:
        principal = await run_in_threadpool(_keys(request).verify, key)
    except AuthError as exc:
        return _page(request, next_path=next_path, error=exc.message, status=401)
    # A new session (and CSRF token) at the moment of login: nothing set before carries over.
    request.session.clear()
    request.session[SESSION_KEY] = principal.key_id
    csrf_token(request.session)
    return RedirectResponse(next_path, status_code=303)


@router.post("/logout")
async def logout(request: Request) -> Response:
    async with request.form(max_files=0, max_fields=5) as form:
        sent = str(form.get("csrf") or "")
    if not csrf_ok(request.session, sent):
        return _page(
            request, next_path="/", error="Log out failed the CSRF check; try again.", status=403
        )
    request.session.clear()
    return RedirectResponse("/login", status_code=303)
