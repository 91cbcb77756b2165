"""Access control through the API and the pages: workspaces, roles, keys, headers.

Two workspaces, ``a`` and ``b``, each with a dataset, succeeded runs and a saved scenario, and a
read and a write key each. The routes are enumerated from ``app.routes``, so a route added later
is covered without editing this file (a new POST route that needs a body fails here with a 422
until it gets an entry in ``BODIES``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sistack.api.app import create_app
from sistack.api.security import READ_ONLY_POSTS
from sistack.config import Settings
from sistack.io.store.metadata import MetadataStore
from sistack.service.auth import KeyService
from sistack.service.runs import RunService
from sistack.service.simulation import SimulationService
from tests.conftest import small_settings, three_groups

API = "/api/v1"
ID_PARAMS = ("run_id", "other_id", "scenario_id", "dataset_id")
# Ids in the right format that exist nowhere: what a foreign id must be indistinguishable from.
GHOSTS = {
    "run_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV",
    "other_id": "01ARZ3NDEKTSV4RRFFQ69G5FAW",
    "scenario_id": "01ARZ3NDEKTSV4RRFFQ69G5FAX",
    "dataset_id": "01ARZ3NDEKTSV4RRFFQ69G5FAY",
}
SCENARIO = {
    "levers": [{"lever": "budget_shift", "params": {"sources": [2], "targets": [1], "shift": 0.5}}]
}
SCORE_FILE = three_groups(12, seed=3).write_csv().encode()


@dataclass(frozen=True)
class Workspace:
    dataset: str
    run: str
    run2: str
    scenario: str
    read_key: str
    write_key: str

    def ids(self) -> dict[str, str]:
        return {
            "run_id": self.run,
            "other_id": self.run2,
            "scenario_id": self.scenario,
            "dataset_id": self.dataset,
        }


@dataclass(frozen=True)
class World:
    client: TestClient
    settings: Settings
    a: Workspace
    b: Workspace


def _seed(svc: RunService, keys: KeyService, name: str, data: Path) -> Workspace:
    scoped = svc.scoped(name)
    dataset, _ = scoped.add_dataset(data, keep=False)
    runs = [scoped.execute(scoped.create_run(dataset.id).id) for _ in range(2)]
    assert [r.status for r in runs] == ["succeeded", "succeeded"]
    scenario = SimulationService(scoped).save(runs[0].id, f"{name} plan", SCENARIO)
    return Workspace(
        dataset=dataset.id,
        run=runs[0].id,
        run2=runs[1].id,
        scenario=scenario.id,
        read_key=keys.create(workspace=name, role="read").secret,
        write_key=keys.create(workspace=name, role="write").secret,
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("access")
    settings = small_settings(root / "home")
    data = root / "customers.csv"
    three_groups(60, seed=5).write_csv(data)
    svc = RunService(settings)
    try:
        keys = KeyService(svc.store)
        a, b = (_seed(svc, keys, name, data) for name in ("a", "b"))
    finally:
        svc.close()
    with TestClient(create_app(settings)) as client:
        yield World(client, settings, a, b)


def key(secret: str) -> dict[str, str]:
    return {"X-API-Key": secret}


def bodies(ids: dict[str, str]) -> dict[tuple[str, str], dict[str, Any]]:
    """Request bodies of the routes that need one, filled with ``ids``."""
    return {
        ("POST", f"{API}/runs/{{run_id}}/simulate"): {"json": SCENARIO},
        ("POST", f"{API}/runs/{{run_id}}/scenarios"): {"json": {"name": "x", "scenario": SCENARIO}},
        ("POST", f"{API}/runs/{{run_id}}/scenarios/compare"): {
            "json": {"scenario_ids": [ids["scenario_id"]]}
        },
        ("POST", f"{API}/runs/{{run_id}}/scenarios/import"): {
            "json": {"run_id": ids["run_id"], "scenario_id": ids["scenario_id"]}
        },
        ("POST", f"{API}/runs/{{run_id}}/optimize"): {"json": {"total_budget": 1000.0}},
        ("POST", f"{API}/runs/{{run_id}}/score"): {"files": {"file": ("new.csv", SCORE_FILE)}},
        ("POST", f"{API}/datasets"): {"files": {"file": ("c.csv", SCORE_FILE)}},
        ("POST", f"{API}/runs"): {"json": {"dataset_id": ids["dataset_id"]}},
        ("POST", f"{API}/demo"): {"json": {"customers": 100}},
    }


def walk(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, path template) of every route, through included routers (FastAPI nests them)."""
    for route in routes:
        if hasattr(route, "original_router"):
            inner = prefix + route.include_context.prefix
            yield from walk(route.original_router.routes, inner)
        elif getattr(route, "methods", None):
            for method in sorted(route.methods - {"HEAD"}):
                yield method, prefix + route.path


def routes(client: TestClient) -> list[tuple[str, str]]:
    """Every (method, path template) the app serves through a route (API and pages)."""
    return list(walk(client.app.routes))  # type: ignore[attr-defined]


def id_routes(client: TestClient) -> list[tuple[str, str]]:
    return [(m, p) for m, p in routes(client) if any(f"{{{n}" in p for n in ID_PARAMS)]


def fill(path: str, ids: dict[str, str]) -> str:
    path = path.replace("{name:path}", "manifest.json")
    for name, value in ids.items():
        path = path.replace(f"{{{name}}}", value)
    return path


def call(client: TestClient, method: str, template: str, ids: dict[str, str], secret: str) -> Any:
    extra = bodies(ids).get((method, template), {})
    return client.request(method, fill(template, ids), headers=key(secret), **extra)


def normalised(response: Any, ids: dict[str, str]) -> tuple[int, str]:
    """Status and body with the ids replaced by their parameter names."""
    text = response.text
    for name, value in ids.items():
        text = text.replace(value, f"<{name}>")
    return response.status_code, text


# --- workspaces ---------------------------------------------------------------------------------
def test_every_id_route_is_enumerated(world: World) -> None:
    """The enumeration finds the API's and the pages' id routes (it is not silently empty)."""
    found = id_routes(world.client)
    paths = {p for _, p in found}
    assert {f"{API}/runs/{{run_id}}", f"{API}/runs/{{run_id}}/simulate", "/runs/{run_id}"} <= paths
    assert ("DELETE", f"{API}/runs/{{run_id}}/scenarios/{{scenario_id}}") in found
    assert len(found) >= 25


def test_another_workspace_s_ids_are_answered_like_ids_that_do_not_exist(world: World) -> None:
    """For every route that takes an id: B's key on A's ids gets exactly the 404 of a
    nonexistent id (same status, same body once the ids are blanked)."""
    client, a, b = world.client, world.a, world.b
    checked = []
    for method, template in id_routes(client):
        foreign = call(client, method, template, a.ids(), b.write_key)
        ghost = call(client, method, template, GHOSTS, b.write_key)
        assert foreign.status_code == 404, (method, template, foreign.text[:300])
        assert normalised(foreign, a.ids()) == normalised(ghost, GHOSTS), (method, template)
        if template.startswith(API):
            error = foreign.json()["error"]
            assert set(error) == {"code", "message", "details"}
            assert error["code"].endswith("not_found"), error
        checked.append((method, template))
    # A's data is untouched by B's deletes, and A still sees it all.
    assert client.get(f"{API}/runs/{a.run}", headers=key(a.read_key)).status_code == 200
    scenario = client.get(f"{API}/runs/{a.run}/scenarios/{a.scenario}", headers=key(a.read_key))
    assert scenario.status_code == 200
    assert len(checked) == len(id_routes(client))


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", f"{API}/runs", {"json": {"dataset_id": "{a.dataset}"}}),
        ("POST", f"{API}/runs", {"json": {"dataset_id": "{b.dataset}", "parent_id": "{a.run}"}}),
        ("GET", f"{API}/runs/{{b.run}}/compare/{{a.run}}", {}),
        ("GET", f"{API}/runs/{{b.run}}/scenarios/{{a.scenario}}", {}),
        ("DELETE", f"{API}/runs/{{b.run}}/scenarios/{{a.scenario}}", {}),
        (
            "POST",
            f"{API}/runs/{{b.run}}/scenarios/compare",
            {"json": {"scenario_ids": ["{a.scenario}"]}},
        ),
        (
            "POST",
            f"{API}/runs/{{b.run}}/scenarios/import",
            {"json": {"run_id": "{a.run}", "scenario_id": "{a.scenario}"}},
        ),
        ("GET", "/runs/{b.run}/compare?other={a.run}", {}),
    ],
)
def test_ids_of_another_workspace_inside_a_request_are_not_found(
    world: World, method: str, path: str, body: dict[str, Any]
) -> None:
    """B refers to A's dataset, run or scenario from its own run: 404, like a ghost id."""
    a, b = world.a, world.b

    def render(value: Any, a_ids: dict[str, str]) -> Any:
        if isinstance(value, str):
            out = value.replace("{b.run}", b.run).replace("{b.dataset}", b.dataset)
            for name, real in a_ids.items():
                out = out.replace(f"{{a.{name}}}", real)
            return out
        if isinstance(value, dict):
            return {k: render(v, a_ids) for k, v in value.items()}
        if isinstance(value, list):
            return [render(v, a_ids) for v in value]
        return value

    real_ids = {"run": a.run, "dataset": a.dataset, "scenario": a.scenario}
    ghost_ids = {
        "run": GHOSTS["run_id"],
        "dataset": GHOSTS["dataset_id"],
        "scenario": GHOSTS["scenario_id"],
    }
    answers = []
    for ids in (real_ids, ghost_ids):
        response = world.client.request(
            method, render(path, ids), headers=key(b.write_key), **render(body, ids)
        )
        text = response.text
        for name, value in ids.items():
            text = text.replace(value, f"<{name}>")
        answers.append((response.status_code, text))
    assert answers[0][0] == 404, answers[0]
    assert answers[0] == answers[1]


def test_listings_show_only_the_workspace_s_own_runs(world: World) -> None:
    client, a, b = world.client, world.a, world.b
    for ws in (a, b):
        listed = client.get(f"{API}/runs", headers=key(ws.read_key)).json()
        assert (listed["total"], {r["id"] for r in listed["items"]}) == (2, {ws.run, ws.run2})
        home = client.get("/", headers=key(ws.read_key)).text
        other = b if ws is a else a
        assert ws.run in home and ws.run2 in home
        assert other.run not in home and other.run2 not in home
    filtered = client.get(f"{API}/runs?dataset_id={a.dataset}", headers=key(b.read_key)).json()
    assert (filtered["total"], filtered["items"]) == (0, [])


# --- roles --------------------------------------------------------------------------------------
def test_a_read_only_key_changes_nothing(world: World) -> None:
    """Every state-changing API route answers 403 read_only_key; the computations that persist
    nothing (simulate, optimize, compare scenarios, score, building an export) answer 2xx."""
    client, a = world.client, world.a
    before = client.get(f"{API}/runs/{a.run}/scenarios", headers=key(a.read_key)).json()
    refused, allowed = [], []
    for method, template in routes(client):
        if not template.startswith(API) or method == "GET":
            continue
        response = call(client, method, template, a.ids(), a.read_key)
        if READ_ONLY_POSTS.match(fill(template, a.ids())):
            assert response.status_code in (200, 201), (method, template, response.text[:300])
            allowed.append(template.removeprefix(f"{API}/runs/{{run_id}}/"))
        else:
            assert response.status_code == 403, (method, template, response.text[:300])
            assert response.json()["error"]["code"] == "read_only_key"
            refused.append((method, template))
    assert sorted(allowed) == [
        "exports/{name:path}",
        "optimize",
        "scenarios/compare",
        "score",
        "simulate",
    ]
    assert {(m, p.removeprefix(API)) for m, p in refused} >= {
        ("POST", "/datasets"),
        ("POST", "/runs"),
        ("POST", "/demo"),
        ("POST", "/runs/{run_id}/reproduce"),
        ("POST", "/runs/{run_id}/scenarios"),
        ("POST", "/runs/{run_id}/scenarios/import"),
        ("DELETE", "/runs/{run_id}"),
        ("DELETE", "/runs/{run_id}/scenarios/{scenario_id}"),
    }
    # The allowance is for POST only: a DELETE whose path looks like a computation is refused.
    lookalike = client.delete(f"{API}/runs/{a.run}/scenarios/compare", headers=key(a.read_key))
    assert (lookalike.status_code, lookalike.json()["error"]["code"]) == (403, "read_only_key")
    after = client.get(f"{API}/runs/{a.run}/scenarios", headers=key(a.read_key)).json()
    assert after == before
    listed = client.get(f"{API}/runs", headers=key(a.read_key)).json()
    assert listed["total"] == 2


def test_a_read_only_key_reads_everything_of_its_workspace(world: World) -> None:
    client, a = world.client, world.a
    for method, template in routes(client):
        if (
            method != "GET"
            or template in ("/login",)
            or ("{" not in template and not (template.startswith(API)))
        ):
            continue
        if template.endswith("/compare/{other_id}") or template == "/runs/{run_id}/compare":
            continue  # needs two runs of one lineage: covered below
        response = client.get(fill(template, a.ids()), headers=key(a.read_key))
        assert response.status_code == 200, (template, response.text[:300])
    compared = client.get(f"{API}/runs/{a.run2}/compare/{a.run}", headers=key(a.read_key))
    assert compared.status_code == 200
    assert (compared.json()["run_a"], compared.json()["run_b"]) == (a.run, a.run2)


# --- keys ---------------------------------------------------------------------------------------
def test_keys_are_stored_only_as_hashes(world: World) -> None:
    """No file of the database (SQLite with its WAL) holds a key; listings show no secret."""
    files = list(world.settings.home.glob("sistack.db*"))
    assert files
    stored = b"".join(f.read_bytes() for f in files)
    for secret in (world.a.read_key, world.a.write_key, world.b.read_key, world.b.write_key):
        assert secret.encode() not in stored
        assert secret.split("_", 2)[2].encode() not in stored  # not even the random part
        assert re.fullmatch(r"sis_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", secret)


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "auth_required"),
        ({"Authorization": "Bearer {key}"}, 200, None),
        ({"authorization": "bearer {key}"}, 200, None),
        ({"X-API-Key": "{key}"}, 200, None),
        ({"X-API-Key": "{key}x"}, 401, "invalid_key"),
        ({"Authorization": "Bearer sis_000000000000_" + "A" * 43}, 401, "invalid_key"),
        ({"Authorization": "Basic {key}"}, 401, "auth_required"),
        ({"X-API-Key": "not-a-key"}, 401, "invalid_key"),
    ],
)
def test_both_header_forms_and_the_401s(
    world: World, headers: dict[str, str], status: int, code: str | None
) -> None:
    sent = {k: v.replace("{key}", world.a.read_key) for k, v in headers.items()}
    response = world.client.get(f"{API}/runs", headers=sent)
    assert response.status_code == status, response.text
    if code is not None:
        assert response.json()["error"]["code"] == code
        assert response.headers["www-authenticate"] == 'Bearer realm="sistack"'
    else:
        assert response.json()["total"] == 2


@pytest.mark.parametrize("path", ["/health", "/ready", "/openapi.json", "/docs"])
def test_health_readiness_and_docs_need_no_key(world: World, path: str) -> None:
    assert world.client.get(path).status_code == 200


def test_a_revoked_key_is_refused_at_once(tmp_path: Path) -> None:
    settings = small_settings(tmp_path / "home")
    with TestClient(create_app(settings)) as client:
        keys = KeyService(client.app.state.service.store)  # type: ignore[attr-defined]
        assert client.get(f"{API}/runs").status_code == 200  # local mode: no key needed
        first, second = (keys.create(workspace="default", role="write") for _ in range(2))
        assert client.get(f"{API}/runs").status_code == 401
        assert client.get(f"{API}/runs", headers=key(first.secret)).status_code == 200
        keys.revoke(first.record.id)
        refused = client.get(f"{API}/runs", headers=key(first.secret))
        assert (refused.status_code, refused.json()["error"]["code"]) == (401, "invalid_key")
        assert client.get(f"{API}/runs", headers=key(second.secret)).status_code == 200
        keys.revoke(second.record.id)
        # No active key left: local mode again, and a revoked key is still refused.
        assert client.get(f"{API}/runs").status_code == 200
        assert client.get(f"{API}/runs", headers=key(second.secret)).status_code == 401
        listed = {r.id: r.revoked_at is not None for r in keys.list()}
        assert listed == {first.record.id: True, second.record.id: True}


def test_keys_and_workspaces_on_postgresql(postgres_url: str) -> None:
    store = MetadataStore(postgres_url)
    try:
        keys = KeyService(store)
        assert not keys.enabled()
        new = keys.create(workspace="acme", role="read", name="dashboards")
        assert keys.enabled()
        assert keys.verify(new.secret).workspace == "acme"
        with store.engine.connect() as conn:
            dumped = str(conn.exec_driver_sql("SELECT * FROM api_keys").all())
        assert new.secret not in dumped and new.record.key_hash in dumped
        keys.revoke(new.record.id)
        assert not keys.enabled()
        with store.engine.connect() as conn:
            columns = {
                table: {
                    row[0]
                    for row in conn.exec_driver_sql(
                        "SELECT column_name FROM information_schema.columns "
                        f"WHERE table_name = '{table}'"
                    )
                }
                for table in ("datasets", "runs", "scenarios")
            }
        assert all("workspace" in c for c in columns.values()), columns
    finally:
        store.close()


# --- security headers -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path", ["/", "/login", f"{API}/runs", f"{API}/levers", "/health", "/static/app.css", "/nope"]
)
def test_security_headers_on_every_answer(world: World, path: str) -> None:
    for headers in ({}, key(world.a.read_key)):
        response = world.client.get(path, headers=headers, follow_redirects=False)
        csp = response.headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["script-src"] == "'self'"
        assert directives["frame-ancestors"] == "'none'"
        assert "unsafe-eval" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_the_api_docs_get_their_own_policy(world: World, path: str) -> None:
    """Swagger UI and ReDoc come from jsDelivr and start with an inline script: allowed there
    (and only there); framing is still refused."""
    response = world.client.get(path)
    csp = response.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self' 'unsafe-inline' https://cdn.jsdelivr.net"
    assert directives["frame-ancestors"] == "'none'"
    assert "https://cdn.jsdelivr.net" in response.text


def test_openapi_documents_401_and_403(world: World) -> None:
    schema = world.client.get("/openapi.json").json()
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            codes = set(operation["responses"])
            if path.startswith(API):
                assert "401" in codes, (method, path)
                assert ("403" in codes) == (method != "get"), (method, path)
            else:
                assert "401" not in codes, (method, path)
