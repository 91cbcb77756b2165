"""Path traversal against every route that takes an id or a file name (MLflow's CVE patterns).

A sentinel file and a sentinel JSON document sit beside the home, outside it. Every route with a
path parameter is called with each hostile value in each parameter (the others real: a succeeded
run, a saved scenario), as a real server would pass them: ``scope["path"]`` percent-decoded
once, ``raw_path`` as sent. Ids that arrive in a body or a query get the same values. Every answer
must be 404 or 422, no answer may contain the sentinel, nothing outside the home may change, and
the run and its scenario must survive. Symbolic links planted inside a run directory must not be
followed either.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import polars as pl
import pytest
from fastapi.testclient import TestClient

from sistack.api.app import create_app
from sistack.config import Settings
from sistack.service.doctor import diagnose
from tests.conftest import run_file, small_settings, three_groups

API = "/api/v1"
SENTINEL = f"sentinel-{secrets.token_hex(8)}"

# Raw path segments as a client sends them; {abs} is the sentinel's absolute path.
SEGMENTS = [
    "..",
    "../..",
    "../../../outside/sentinel.txt",
    "..%2F..%2F..%2Foutside%2Fsentinel.txt",
    "%2e%2e",
    "%2e%2e%2f%2e%2e%2f%2e%2e%2foutside%2fsentinel.json",
    "%252e%252e%252f%252e%252e%252foutside%252fsentinel.txt",
    "..%5C..%5C..%5Coutside%5Csentinel.txt",
    "..\\..\\..\\outside\\sentinel.txt",
    "{abs_encoded}",
    "/{abs}",
    "file:%2F%2F{abs_encoded}",
    "file:///{abs}",
    "%23",
    "#",
    "%3F",
    "..?path=../../outside/sentinel.txt",
    "%00",
    "{run}%00",
    "{run}%00.json",
    "{run}%2F..%2F..%2F..%2Foutside%2Fsentinel.json",
    "{run}/../../../outside",
    "%c0%ae%c0%ae%c0%af",
    ".staging",
    "%2estaging",
    "~",
]
PARAMS = ("run_id", "other_id", "scenario_id", "dataset_id", "name", "export", "filename")


@dataclass(frozen=True)
class Home:
    client: TestClient
    settings: Settings
    root: Path  # holds home/ and outside/
    run_id: str
    scenario_id: str
    scenario: dict[str, Any]

    @property
    def outside(self) -> Path:
        return self.root / "outside"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    root = tmp_path_factory.mktemp("traversal")
    outside = root / "outside"
    outside.mkdir()
    (outside / "sentinel.txt").write_text(SENTINEL)
    (outside / "sentinel.json").write_text(json.dumps({"sentinel": SENTINEL, "profiles": []}))
    pl.DataFrame({"customer_id": [SENTINEL], "segment": [1], "distance": [0.0]}).write_parquet(
        outside / "sentinel.parquet"
    )
    settings = small_settings(root / "home")
    data = root / "customers.csv"
    three_groups(60, seed=2).write_csv(data)
    with TestClient(create_app(settings)) as client:
        _, run_id = run_file(client, data)
        run = client.get(f"{API}/runs/{run_id}").json()
        assert run["status"] == "succeeded", run
        shift = {"sources": [run["k"]], "targets": [1], "shift": 0.5}
        scenario = {"levers": [{"lever": "budget_shift", "params": shift}]}
        saved = client.post(
            f"{API}/runs/{run_id}/scenarios", json={"name": "keep", "scenario": scenario}
        )
        assert saved.status_code == 201, saved.text
        yield Home(client, settings, root, run_id, saved.json()["id"], scenario)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(Path(d, f)): Path(d, f).read_bytes() for d, _, files in os.walk(folder) for f in files
    }


def asgi(client: TestClient, method: str, raw: str, body: Any = None) -> tuple[int, bytes]:
    """Call the app as uvicorn would: path percent-decoded once, raw_path as sent."""
    path, _, query = raw.partition("?")
    headers = [(b"host", b"testserver")]
    payload = b""
    if isinstance(body, dict | list):
        payload = json.dumps(body).encode()
        headers.append((b"content-type", b"application/json"))
    elif isinstance(body, bytes):
        payload = body
        headers.append((b"content-type", b"multipart/form-data; boundary=trav"))
    headers.append((b"content-length", str(len(payload)).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(path),
        "raw_path": path.encode("latin-1", "backslashreplace"),
        "root_path": "",
        "query_string": query.encode(),
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    sent: list[dict[str, Any]] = []
    done = False

    async def receive() -> dict[str, Any]:
        nonlocal done
        if done:
            return {"type": "http.disconnect"}
        done = True
        return {"type": "http.request", "body": payload, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    portal: Any = client.portal  # the test client's event loop, started with the app
    portal.call(client.app, scope, receive, send)
    body_out = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body_out


def upload_body() -> bytes:
    csv = three_groups(12, seed=2).write_csv().encode()
    return (
        b'--trav\r\nContent-Disposition: form-data; name="file"; filename="x.csv"\r\n\r\n'
        + csv
        + b"\r\n--trav--\r\n"
    )


def body_for(home: Home, method: str, template: str) -> Any:
    """A valid body for the route, so only the hostile id can be what is refused."""
    if method not in ("POST", "PUT", "PATCH"):
        return None
    if template.endswith("/simulate"):
        return home.scenario
    if template.endswith("/scenarios"):
        return {"name": "t", "scenario": home.scenario}
    if template.endswith("/scenarios/compare"):
        return {"scenario_ids": [home.scenario_id]}
    if template.endswith("/scenarios/import"):
        return {"run_id": home.run_id, "scenario_id": home.scenario_id}
    if template.endswith("/optimize"):
        return {"total_budget": 1000, "draws": 100}
    if template.endswith("/score"):
        return upload_body()
    return {}


def routes(home: Home) -> list[tuple[str, str, list[str]]]:
    """(method, path template, its parameters) of every documented route with a path parameter."""
    found: list[tuple[str, str, list[str]]] = []
    schema = home.client.app.openapi()  # type: ignore[attr-defined]
    for path, item in schema["paths"].items():
        names = re.findall(r"{(\w+)}", path)
        unknown = set(names) - set(PARAMS)
        assert not unknown, f"{path}: add {unknown} to PARAMS"
        if names:
            found.extend((method.upper(), path, names) for method in sorted(item))
    return found


def segments(home: Home) -> list[str]:
    absolute = str(home.outside / "sentinel.json")
    return [
        s.format(abs=absolute.lstrip("/"), abs_encoded=quote(absolute, safe=""), run=home.run_id)
        for s in SEGMENTS
    ]


def real_value(home: Home, name: str) -> str:
    return home.scenario_id if name == "scenario_id" else home.run_id


def check(home: Home, status: int, body: bytes, what: str, *, moved: bool = False) -> None:
    """404 or 422 with our error body and no sentinel. ``moved``: the value held a raw "/" or
    "?", so the request reached another path, where 405 (that path lacks the method) is fine."""
    allowed = (404, 405, 422) if moved else (404, 422)
    assert status in allowed, f"{what}: {status} {body[:300]!r}"
    assert SENTINEL.encode() not in body, what
    error = json.loads(body)["error"]
    assert error["code"] and error["message"], what


def test_every_route_with_an_id_refuses_every_pattern(home: Home) -> None:
    before = snapshot(home.outside)
    table = routes(home)
    assert len(table) >= 15  # runs, results, insights, simulation, scenarios (+ exports)
    calls = 0
    for method, template, names in table:
        for target in names:
            for segment in segments(home):
                values = {n: (segment if n == target else real_value(home, n)) for n in names}
                raw = template.format(**values)
                status, body = asgi(home.client, method, raw, body_for(home, method, template))
                moved = any(c in unquote(segment) for c in "/?")
                check(home, status, body, f"{method} {raw}", moved=moved)
                calls += 1
    assert calls >= 15 * len(SEGMENTS)
    assert snapshot(home.outside) == before
    assert_intact(home)


def test_ids_in_bodies_and_queries_refuse_every_pattern(home: Home) -> None:
    before = snapshot(home.outside)
    run, sid = home.run_id, home.scenario_id
    for segment in segments(home):
        value = unquote(segment)
        calls = [
            ("POST", f"{API}/runs", {"dataset_id": value}),
            ("POST", f"{API}/runs/{run}/scenarios/import", {"run_id": value, "scenario_id": sid}),
            ("POST", f"{API}/runs/{run}/scenarios/import", {"run_id": run, "scenario_id": value}),
            ("POST", f"{API}/runs/{run}/scenarios/compare", {"scenario_ids": [value]}),
        ]
        for method, path, body in calls:
            status, out = asgi(home.client, method, path, body)
            check(home, status, out, f"{method} {path} {body}")
        parent = {"dataset_id": value, "parent_id": value}
        status, out = asgi(home.client, "POST", f"{API}/runs", parent)
        check(home, status, out, f"parent {value!r}")
    page = home.client.get(f"{API}/runs", params={"dataset_id": "../../outside/sentinel.txt"})
    assert page.status_code == 200 and page.json()["total"] == 0
    assert snapshot(home.outside) == before
    assert_intact(home)


def assert_intact(home: Home) -> None:
    """The seeded run and its scenario survived every hostile call, and nothing is stray."""
    client = home.client
    assert client.get(f"{API}/runs/{home.run_id}").json()["status"] == "succeeded"
    scenario = client.get(f"{API}/runs/{home.run_id}/scenarios/{home.scenario_id}")
    assert scenario.status_code == 200
    svc = client.app.state.service  # type: ignore[attr-defined]
    report = diagnose(svc.store, svc.artifacts)
    assert report.ok, report.to_dict()
    for path in snapshot(home.root):
        inside = Path(path).is_relative_to(home.settings.home)
        assert inside or Path(path).parent == home.outside or path.endswith("customers.csv")


# --- symbolic links planted inside a run directory -------------------------------------------

# (artifact replaced by a link to an outside file, the sentinel file it points at, routes)
LINKED = [
    ("manifest.json", "sentinel.json", ["/manifest", "/exports/manifest.json"]),
    ("profiles.json", "sentinel.json", ["/segments"]),
    ("quality.json", "sentinel.json", ["/quality"]),
    ("insights.json", "sentinel.json", ["/insights", "/personas"]),
    (
        "assignments.parquet",
        "sentinel.parquet",
        [
            "/assignments",
            "/assignments?format=csv",
            "/assignments?format=parquet",
            "/exports/assignments.csv",
        ],
    ),
]


@pytest.mark.parametrize(("artifact", "target", "paths"), LINKED, ids=[a for a, _, _ in LINKED])
def test_a_symlinked_artifact_is_not_followed(
    home: Home, artifact: str, target: str, paths: list[str]
) -> None:
    folder = home.settings.artifacts / home.run_id
    original = (folder / artifact).read_bytes()
    (folder / artifact).unlink()
    os.symlink(home.outside / target, folder / artifact)
    try:
        for path in paths:
            response = home.client.get(f"{API}/runs/{home.run_id}{path}")
            assert SENTINEL not in response.text, path
            assert response.status_code == 404, path
    finally:
        (folder / artifact).unlink()
        (folder / artifact).write_bytes(original)


def test_a_symlinked_run_directory_is_not_followed(home: Home) -> None:
    fake = home.outside / "fake-run"
    shutil.copytree(home.settings.artifacts / home.run_id, fake)
    (fake / "manifest.json").write_text(json.dumps({"sentinel": SENTINEL}))
    folder = home.settings.artifacts / home.run_id
    moved = folder.with_name("moved")
    folder.rename(moved)
    os.symlink(fake, folder)
    try:
        response = home.client.get(f"{API}/runs/{home.run_id}/manifest")
        assert SENTINEL not in response.text
        assert response.status_code == 404
    finally:
        folder.unlink()
        moved.rename(folder)
        shutil.rmtree(fake)


def test_deleting_a_run_never_deletes_through_a_link(home: Home, tmp_path: Path) -> None:
    """A link inside a run directory is removed as a link; its target outside is untouched."""
    settings = small_settings(tmp_path / "home")
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text(SENTINEL)
    data = tmp_path / "c.csv"
    three_groups(30, seed=4).write_csv(data)
    with TestClient(create_app(settings)) as client:
        _, run_id = run_file(client, data)
        os.symlink(victim, settings.artifacts / run_id / "planted")
        os.symlink(victim / "keep.txt", settings.artifacts / run_id / "planted.txt")
        assert client.delete(f"{API}/runs/{run_id}").status_code == 204
        assert client.get(f"{API}/runs/{run_id}").status_code == 404
    assert (victim / "keep.txt").read_text() == SENTINEL
    assert not (settings.artifacts / run_id).exists()
