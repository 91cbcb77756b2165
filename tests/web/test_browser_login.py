"""Access control in a real browser: a server with API keys, the login page, a session.

Its own server (the shared ``live`` one stays in local mode for the other browser tests). The
page fixture fails on any console error, so a Content-Security-Policy violation (an inline
script, Vega compiling an expression with ``Function``) fails these tests too; they are also
collected explicitly below, since Chromium reports some of them as security-policy events only.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from sistack.api.app import create_app
from sistack.service.auth import KeyService, NewKey
from sistack.service.runs import RunService
from tests.conftest import small_settings
from tests.web.conftest import Live, _free_port, screenshot

pytestmark = pytest.mark.usefixtures("browser")
PRICE_UP = {"levers": [{"lever": "price", "params": {"change": {"1": 0.05}}}]}


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Live, NewKey, NewKey]]:
    """A server with a write key and a read key of workspace 'team', and a finished demo run."""
    settings = small_settings(tmp_path_factory.mktemp("guarded") / "home")
    svc = RunService(settings)
    try:
        keys = KeyService(svc.store)
        writer = keys.create(workspace="team", role="write", name="analyst")
        reader = keys.create(workspace="team", role="read", name="viewer")
    finally:
        svc.close()
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="uvicorn-guarded", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the app did not start")
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {writer.secret}"}
    with httpx.Client(base_url=url, timeout=60, headers=headers) as http:
        yield Live(url, settings, http), writer, reader
    server.should_exit = True
    thread.join(timeout=20)


def watch_csp(page: Any) -> None:
    """Collect securitypolicyviolation events of the page (installed before any script)."""
    page.add_init_script(
        "window.__csp = []; document.addEventListener('securitypolicyviolation', "
        "e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
    )


def test_login_dashboard_and_a_saved_scenario(
    guarded: tuple[Live, NewKey, NewKey], page: Any
) -> None:
    live, writer, reader = guarded
    run = live.api("POST", "/api/v1/demo", json={"customers": 400, "seed": 3})
    assert live.wait(run["id"])["status"] == "succeeded"
    watch_csp(page)
    page.goto(f"{live.url}/runs/{run['id']}")
    page.wait_for_url(f"{live.url}/login?next=%2Fruns%2F{run['id']}")
    page.fill("#key", writer.secret + "x")
    page.click("form.form button[type=submit]")
    assert "not valid" in page.inner_text("#login-error")
    page.fill("#key", writer.secret)
    page.click("form.form button[type=submit]")
    page.wait_for_url(f"{live.url}/runs/{run['id']}")
    assert page.inner_text(".topbar .workspace") == "team · write"
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-chart]')]"
        ".every(e => e.dataset.ready === '1' && e.querySelector('svg'))"
    )
    screenshot(page, "09-login-dashboard")
    # The simulation page calls the API with the session cookie and the CSRF header.
    page.goto(f"{live.url}/runs/{run['id']}/simulation")
    page.wait_for_load_state("networkidle")
    page.focus("#price-change-1")
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    page.fill("#scenario-name", "Premium +5%")
    page.click("#save-form button[type=submit]")
    page.wait_for_selector("#scenario-list li[data-scenario-id]")
    saved = live.api("GET", f"/api/v1/runs/{run['id']}/scenarios")
    assert [s["name"] for s in saved] == ["Premium +5%"]
    assert page.evaluate("window.__csp") == []
    # Log out: the pages ask for a key again.
    page.click(".topbar .session button")
    # The logout answer lands on /login; a call the page still had in flight may get its 401
    # first and go to /login?next=<this page>. Either way the user is at the login page.
    page.wait_for_url(re.compile(rf"^{re.escape(live.url)}/login(\?next=%2Fruns%2F[^&]*)?$"))
    assert page.locator("#key").is_visible()
    page.goto(f"{live.url}/")
    page.wait_for_url(f"{live.url}/login?next=%2F")
    # A read-only login sees the run but cannot save.
    page.fill("#key", reader.secret)
    page.click("form.form button[type=submit]")
    page.wait_for_url(f"{live.url}/")
    assert run["id"] in page.content()
    status = page.evaluate(
        """async (url) => (await fetch(url, {method: 'DELETE', headers: {
            'X-CSRF-Token': document.querySelector('meta[name=csrf-token]').content}})).status""",
        f"/api/v1/runs/{run['id']}",
    )
    assert status == 403
    assert page.evaluate("window.__csp") == []
