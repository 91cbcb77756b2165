"""A live app for the web tests: uvicorn on a free port in a background thread, its own home.

The browser tests drive Debian's Chromium through Playwright. Where either is missing they are
skipped with the reason, except in CI (``CI=true``), where a missing browser is a failure: CI
installs Chromium, so its absence means the UI went untested.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from sistack.api.app import create_app
from sistack.config import Settings
from tests.conftest import small_settings

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
RUN_TIMEOUT = 90.0


@dataclass(frozen=True)
class Live:
    url: str
    settings: Settings
    http: httpx.Client

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        assert response.status_code < 400, response.text
        return response.json()

    def wait(self, run_id: str, timeout: float = RUN_TIMEOUT) -> dict[str, Any]:
        """Poll the API until the run has finished; returns its final record."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run: dict[str, Any] = self.api("GET", f"/api/v1/runs/{run_id}")
            if run["status"] in ("succeeded", "failed"):
                return run
            time.sleep(0.2)
        raise TimeoutError(f"run {run_id} did not finish in {timeout} s")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The whole app (API and pages) served over HTTP, as a user's browser sees it."""
    settings = small_settings(tmp_path_factory.mktemp("web") / "home")
    port = _free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the app did not start")
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=url, timeout=60) as http:
        yield Live(url, settings, http)
    server.should_exit = True
    thread.join(timeout=20)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI must run the browser tests")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's package) driven by Playwright."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright for Python is not installed (pip install playwright)")
    if not (Path(CHROMIUM).is_file() or shutil.which("chromium")):
        _unavailable(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page at 1280x800; JavaScript errors on the page fail the test.

    The browser also logs every 4xx answer as an error; those are the API refusing bad input,
    which the tests provoke on purpose, so they are not counted.
    """
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    tab = context.new_page()
    errors: list[str] = []

    def console(message: Any) -> None:
        if message.type == "error" and "Failed to load resource" not in message.text:
            errors.append(message.text)

    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.on("console", console)
    tab.set_default_timeout(30_000)
    yield tab
    context.close()
    assert not errors, errors


def screenshot(page: Any, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/ (kept out of git)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _demo(live: Live, *, customers: int, seed: int) -> str:
    run = live.api("POST", "/api/v1/demo", json={"customers": customers, "seed": seed})
    assert live.wait(run["id"])["status"] == "succeeded"
    return str(run["id"])


@pytest.fixture(scope="session")
def finished_run(live: Live) -> str:
    """A succeeded run of 600 synthetic customers, made through the API."""
    return _demo(live, customers=600, seed=42)


@pytest.fixture(scope="session")
def other_run(live: Live, finished_run: str) -> str:
    """A second run (other customers' values, same ids) to compare with."""
    return _demo(live, customers=600, seed=7)
