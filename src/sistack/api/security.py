"""The edge of access control: who is calling, may they do this, and security headers.

:class:`AccessMiddleware` runs before routing, so no route (new ones included) can forget it:

- ``/api/...`` (except the public paths below) needs a principal: an API key in
  ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``, or a signed web session. Without one,
  while keys exist: 401 ``auth_required`` (a bad key: 401 ``invalid_key``). With no key at all the
  server is in local mode and every request acts for workspace ``default`` with write access.
- A read-only key may ``GET`` anything and call the computations that persist nothing
  (``READ_ONLY_POSTS``); any other method is 403 ``read_only_key``. A new write route is
  therefore protected by default.
- A request from a browser (a session cookie, or ``Origin``/``Sec-Fetch-Site`` headers in local
  mode) that changes state must carry the session's CSRF token in ``X-CSRF-Token``; API clients
  that send a key header do not need one (a page on another site cannot set that header).
- Pages (everything else) redirect to ``/login`` while keys exist and no session is open.
- In local mode a request must name this machine in its ``Host`` header (``localhost``, an IP
  address): a page of another site whose name the attacker re-points at 127.0.0.1 (DNS
  rebinding) would otherwise read and change everything, the browser seeing one origin.

:class:`SecurityHeadersMiddleware` adds the CSP and friends to every response.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers

from sistack.errors import AuthError, Forbidden, SistackError
from sistack.service.auth import LOCAL, KeyService, Principal

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Paths anyone may fetch: liveness/readiness, the API's description, static files, login.
PUBLIC = re.compile(
    r"^/(health|ready|openapi\.json|docs(/.*)?|redoc|static/.*|vendor/.*|login|favicon\.ico)$"
)
# POST routes that compute an answer from stored results and persist nothing (an export build
# only fills the cache a GET of the same export fills too): allowed for read-only keys. Every
# other state-changing request needs a write key.
READ_ONLY_POSTS = re.compile(
    r"^/api/v1/runs/[^/]+/(simulate|optimize|scenarios/compare|score|exports/.+)$"
)
# Pages that check the CSRF token of their form themselves (the token is in the form body).
FORM_POSTS = frozenset({"/login", "/logout"})
CSRF_HEADER = "x-csrf-token"
CHALLENGE = 'Bearer realm="sistack"'
SESSION_KEY = "key_id"
SESSION_CSRF = "csrf"

# No inline script anywhere: the pages carry data in <script type="application/json"> blocks
# and code in /static. Inline *styles* are allowed: templates set widths and segment colours in
# style attributes, and Vega writes styles into the SVG it draws.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# FastAPI's /docs and /redoc load Swagger UI / ReDoc from jsDelivr and start it with an inline
# script: those two pages (no user data on them) get a policy that allows exactly that.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src 'self' https://fonts.gstatic.com; "
    "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    "worker-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


AUTH_REQUIRED = AuthError(
    "This server requires an API key: send 'Authorization: Bearer <key>' or "
    "'X-API-Key: <key>' (create one with `sistack keys create`).",
    code="auth_required",
)
CSRF_FAILED = Forbidden(
    "The request did not carry this page's CSRF token (X-CSRF-Token); reload the page and try "
    "again.",
    code="csrf_failed",
)
READ_ONLY = Forbidden(
    "This API key is read-only: it can read results and simulate, not upload, run, reproduce, "
    "delete or save. Use a key created with --role write.",
    code="read_only_key",
)
HOST_NOT_ALLOWED = Forbidden(
    "Without API keys this server answers only requests addressed to localhost or an IP address "
    "(a guard against DNS rebinding). Use http://127.0.0.1:<port>/, or create a key with "
    "`sistack keys create`.",
    code="host_not_allowed",
)


def csrf_token(session: MutableMapping[str, Any]) -> str:
    """The session's CSRF token, made on first use."""
    token = session.get(SESSION_CSRF)
    if not isinstance(token, str) or len(token) < 32:
        token = session[SESSION_CSRF] = secrets.token_urlsafe(32)
    return token


def csrf_ok(session: MutableMapping[str, Any], sent: str | None) -> bool:
    expected = session.get(SESSION_CSRF)
    return bool(sent and isinstance(expected, str) and hmac.compare_digest(expected, sent))


def local_host(host: str) -> bool:
    """Whether a ``Host`` header names this machine without a DNS name an attacker could own:
    an IP address, ``localhost`` (or ``*.localhost``), or ``testserver`` (Starlette's test
    client, a single-label name no public domain can take)."""
    name = host.strip().lower()
    if name.startswith("["):  # [::1]:8000
        name = name[1 : name.find("]")] if "]" in name else name
    elif name.count(":") == 1:
        name = name.rsplit(":", 1)[0]
    if name in ("localhost", "testserver") or name.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def presented_key(headers: Headers) -> str | None:
    """The API key of a request: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``."""
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    key = headers.get("x-api-key", "").strip()
    return key or None


async def _refuse(send: Send, exc: SistackError) -> None:
    """Answer with the API's error body (this runs before the app's exception handlers)."""
    body = json.dumps({"error": exc.to_dict()}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if exc.status == 401:
        raw.append((b"www-authenticate", CHALLENGE.encode()))
    await send({"type": "http.response.start", "status": exc.status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _redirect(send: Send, location: str) -> None:
    headers = [(b"location", location.encode("latin-1")), (b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 303, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


class AccessMiddleware:
    """Authenticate, authorise and CSRF-check every request (see the module docstring).

    Needs the session middleware outside it and ``app.state.service`` (the metadata store).
    The principal is left in ``scope["state"]["principal"]`` for the dependencies.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or PUBLIC.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        headers = Headers(scope=scope)
        session: MutableMapping[str, Any] = scope.get("session", {})
        keys = KeyService(scope["app"].state.service.store)
        api = path.startswith("/api/")
        key = presented_key(headers)
        try:
            principal, browser = await run_in_threadpool(
                self._identify, keys, key, session, headers
            )
        except AuthError as exc:
            await _refuse(send, exc)
            return
        if principal is LOCAL and not local_host(headers.get("host", "")):
            await _refuse(send, HOST_NOT_ALLOWED)
            return
        if principal is None:
            if api:
                await _refuse(send, AUTH_REQUIRED)
            else:
                target = path + (
                    f"?{scope['query_string'].decode('latin-1')}"
                    if scope.get("query_string")
                    else ""
                )
                await _redirect(send, f"/login?next={quote(target, safe='')}")
            return
        if method not in SAFE_METHODS:
            if (
                browser
                and path not in FORM_POSTS
                and not csrf_ok(session, headers.get(CSRF_HEADER))
            ):
                await _refuse(send, CSRF_FAILED)
                return
            computes = method == "POST" and READ_ONLY_POSTS.match(path)
            if not principal.can_write and not computes and path not in FORM_POSTS:
                await _refuse(send, READ_ONLY)
                return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)

    @staticmethod
    def _identify(
        keys: KeyService,
        key: str | None,
        session: MutableMapping[str, Any],
        headers: Headers,
    ) -> tuple[Principal | None, bool]:
        """The principal (None: none and keys are required) and whether the request comes from
        a browser relying on ambient credentials (it then needs a CSRF token to change state).
        """
        if key is not None:
            return keys.verify(key), False
        key_id = session.get(SESSION_KEY)
        if isinstance(key_id, str):
            found = keys.by_id(key_id)
            if found is not None:
                return found, True
            session.pop(SESSION_KEY, None)  # revoked since login
        if keys.enabled():
            return None, True
        # Local mode: no credentials at all, but a browser on another site could still post
        # to localhost; browsers mark such requests with Origin / Sec-Fetch-Site.
        browser = "origin" in headers or "sec-fetch-site" in headers
        return LOCAL, browser


class SecurityHeadersMiddleware:
    """Content-Security-Policy, nosniff, Referrer-Policy and framing rules on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = scope["path"] in ("/docs", "/redoc", "/docs/oauth2-redirect")
        policy = (DOCS_CSP if docs else CSP).encode()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = [(b"content-security-policy", policy), *HEADERS]
                headers += [(n, v) for n, v in extra if n not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
