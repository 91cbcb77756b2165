"""The web side of access control, over HTTP: login, logout, sessions, CSRF, redirects.

(The same flow in a real browser is in ``test_browser_login.py``.)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sistack.api.app import create_app
from sistack.config import Settings
from sistack.service.auth import KeyService, NewKey
from sistack.service.runs import RunService
from tests.conftest import small_settings, three_groups

API = "/api/v1"
SCENARIO = {
    "levers": [{"lever": "budget_shift", "params": {"sources": [2], "targets": [1], "shift": 0.5}}]
}


@dataclass(frozen=True)
class Site:
    client: TestClient
    keys: KeyService
    writer: NewKey
    reader: NewKey
    run_id: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("login")
    settings = small_settings(root / "home")
    data = root / "customers.csv"
    three_groups(60, seed=5).write_csv(data)
    svc = RunService(settings)
    try:
        scoped = svc.scoped("team")
        dataset, _ = scoped.add_dataset(data, keep=False)
        run = scoped.execute(scoped.create_run(dataset.id).id)
        keys = KeyService(svc.store)
        writer = keys.create(workspace="team", role="write", name="analyst")
        reader = keys.create(workspace="team", role="read", name="viewer")
    finally:
        svc.close()
    with TestClient(create_app(settings)) as client:
        yield Site(client, KeyService(client.app.state.service.store), writer, reader, run.id)  # type: ignore[attr-defined]


@contextmanager
def fresh(site: Site) -> Iterator[TestClient]:
    """A new browser: same app (its lifespan runs in the module's client), no cookies."""
    client = TestClient(site.client.app)
    try:
        yield client
    finally:
        client.close()


def form_token(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def meta_token(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def login(client: TestClient, secret: str, next_path: str = "/") -> Any:
    page = client.get(f"/login?next={next_path}")
    assert page.status_code == 200
    return client.post(
        "/login",
        data={"key": secret, "csrf": form_token(page.text), "next": next_path},
        follow_redirects=False,
    )


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/", "/login?next=%2F"),
        ("/runs/new", "/login?next=%2Fruns%2Fnew"),
        ("/runs/X/compare?other=Y", "/login?next=%2Fruns%2FX%2Fcompare%3Fother%3DY"),
    ],
)
def test_pages_redirect_to_login_while_keys_exist(site: Site, path: str, location: str) -> None:
    with fresh(site) as client:
        response = client.get(path, follow_redirects=False)
        assert (response.status_code, response.headers["location"]) == (303, location)


def test_login_opens_a_session_that_shows_the_workspace_and_logs_out(site: Site) -> None:
    with fresh(site) as client:
        done = login(client, site.writer.secret, f"/runs/{site.run_id}")
        assert (done.status_code, done.headers["location"]) == (303, f"/runs/{site.run_id}")
        cookie = client.cookies["sistack_session"]
        assert site.writer.secret not in cookie  # the cookie names the key id, never the key
        page = client.get(f"/runs/{site.run_id}")
        assert page.status_code == 200
        assert re.search(r'class="workspace"[^>]*>team · write<', page.text)
        # the session also authenticates the API calls of the page's scripts
        assert client.get(f"{API}/runs").json()["total"] == 1
        out = client.post("/logout", data={"csrf": form_token(page.text)}, follow_redirects=False)
        assert (out.status_code, out.headers["location"]) == (303, "/login")
        assert client.get("/", follow_redirects=False).status_code == 303
        assert client.get(f"{API}/runs").status_code == 401


@pytest.mark.parametrize(
    ("key", "status", "message"),
    [
        ("", 401, "not valid"),
        ("sis_000000000000_" + "A" * 43, 401, "not valid"),
        ("{reader}x", 401, "not valid"),
    ],
)
def test_a_bad_key_shows_the_form_again_with_the_reason(
    site: Site, key: str, status: int, message: str
) -> None:
    with fresh(site) as client:
        response = login(client, key.replace("{reader}", site.reader.secret))
        assert response.status_code == status
        assert message in re.search(r'id="login-error">([^<]+)<', response.text).group(1)  # type: ignore[union-attr]
        assert client.get("/", follow_redirects=False).status_code == 303


def test_login_without_the_form_token_is_refused(site: Site) -> None:
    with fresh(site) as client:
        client.get("/login")
        response = client.post(
            "/login", data={"key": site.writer.secret, "next": "/"}, follow_redirects=False
        )
        assert response.status_code == 403
        assert client.get("/", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil"])
def test_login_never_redirects_off_site(site: Site, target: str) -> None:
    with fresh(site) as client:
        response = login(client, site.reader.secret, target)
        assert (response.status_code, response.headers["location"]) == (303, "/")


def test_browser_writes_need_the_csrf_token(site: Site) -> None:
    """A logged-in page's script must send X-CSRF-Token; without it (what a forged cross-site
    request looks like) the API answers 403 csrf_failed and nothing is saved."""
    with fresh(site) as client:
        login(client, site.writer.secret)
        token = meta_token(client.get(f"/runs/{site.run_id}/simulation").text)
        url = f"{API}/runs/{site.run_id}/scenarios"
        body = {"name": "csrf", "scenario": SCENARIO}
        for headers in ({}, {"X-CSRF-Token": "wrong"}, {"X-CSRF-Token": ""}):
            refused = client.post(url, json=body, headers=headers)
            assert refused.status_code == 403
            assert refused.json()["error"]["code"] == "csrf_failed"
        assert client.get(url).json() == []
        saved = client.post(url, json=body, headers={"X-CSRF-Token": token})
        assert saved.status_code == 201, saved.text
        deleted = client.delete(f"{url}/{saved.json()['id']}", headers={"X-CSRF-Token": token})
        assert deleted.status_code == 204
        # a key in a header needs no CSRF token (no browser sends it on its own)
        simulated = client.post(
            f"{API}/runs/{site.run_id}/simulate",
            json=SCENARIO,
            headers={"X-API-Key": site.reader.secret},
        )
        assert simulated.status_code == 200


def test_a_read_only_session_cannot_write(site: Site) -> None:
    with fresh(site) as client:
        login(client, site.reader.secret)
        home = client.get("/").text
        token = meta_token(home)
        assert '<body data-role="read">' in home
        assert 'href="/runs/new"' not in home.split("</nav>")[0]  # no "New analysis" in the menu
        response = client.delete(f"{API}/runs/{site.run_id}", headers={"X-CSRF-Token": token})
        assert (response.status_code, response.json()["error"]["code"]) == (403, "read_only_key")
        assert client.get(f"{API}/runs/{site.run_id}").status_code == 200


def test_revoking_the_key_ends_its_sessions(site: Site) -> None:
    extra = site.keys.create(workspace="team", role="read", name="temporary")
    with fresh(site) as client:
        login(client, extra.secret)
        assert client.get("/", follow_redirects=False).status_code == 200
        site.keys.revoke(extra.record.id)
        assert client.get("/", follow_redirects=False).status_code == 303
        assert client.get(f"{API}/runs").status_code == 401


def test_local_mode_has_no_login_but_refuses_cross_site_writes(tmp_path: Path) -> None:
    """Without keys nothing authenticates; a browser request (Origin header) that changes state
    still needs the page's token, so another site cannot post to the local server."""
    settings: Settings = small_settings(tmp_path / "home")
    with TestClient(create_app(settings)) as client:
        assert client.get("/login", follow_redirects=False).headers["location"] == "/"
        demo = {"customers": 100}
        forged = client.post(f"{API}/demo", json=demo, headers={"Origin": "https://evil.example"})
        assert (forged.status_code, forged.json()["error"]["code"]) == (403, "csrf_failed")
        assert client.get(f"{API}/runs").json()["total"] == 0
        token = meta_token(client.get("/").text)
        own = client.post(
            f"{API}/demo", json=demo, headers={"Origin": "http://testserver", "X-CSRF-Token": token}
        )
        assert own.status_code == 202, own.text
        assert client.post(f"{API}/demo", json=demo).status_code == 202  # curl, scripts
        for run in client.get(f"{API}/runs").json()["items"]:
            client.app.state.jobs.wait(run["id"], timeout=60)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1:8000", True),
        ("localhost:8000", True),
        ("LOCALHOST", True),
        ("app.localhost:8000", True),
        ("[::1]:8000", True),
        ("192.168.1.20:8000", True),
        ("evil.example:8000", False),
        ("evil.example", False),
        ("127.0.0.1.nip.io:8000", False),
        ("", False),
    ],
)
def test_local_mode_answers_only_requests_addressed_to_this_machine(
    tmp_path: Path, host: str, allowed: bool
) -> None:
    """DNS rebinding: a site re-pointing its own name at 127.0.0.1 sends its name as Host."""
    with TestClient(create_app(small_settings(tmp_path / "home"))) as client:
        for path in (f"{API}/runs", "/"):
            response = client.get(path, headers={"host": host})
            assert response.status_code == (200 if allowed else 403), (path, response.text[:200])
            if not allowed:
                assert response.json()["error"]["code"] == "host_not_allowed"
        assert client.get("/health", headers={"host": host}).status_code == 200
