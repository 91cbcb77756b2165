"""The API routes the dashboard reads: the baseline, the role catalogue, runs with their file.

The baseline is checked against the simulation service and against the numbers worked out from
the run's own profiles (revenue per segment, margin = revenue x margin rate, cost = customers x
contacts x cost per contact, profit = margin - cost, ROI = profit / cost).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from numpy.testing import assert_allclose

from sistack.api.app import create_app
from sistack.domain.schema import SHAPES, allowed_roles
from sistack.service.runs import RunService
from sistack.service.simulation import SimulationService
from tests.api.test_api import error_of, start_run, upload
from tests.conftest import _write_customers, small_settings

API = "/api/v1"
METRICS = ("revenue", "margin", "cost", "profit", "roi")
UPLOADED_AS = "C:\\fakepath\\shop customers.csv"  # as some browsers send it; shown cleaned
SHOWN_AS = "shop customers.csv"


@dataclass(frozen=True)
class Served:
    client: TestClient
    run_id: str
    simulation: SimulationService
    runs: RunService


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("dashboard-api")
    csv = _write_customers(root / "customers.csv", customers=240, seed=11)
    with TestClient(create_app(small_settings(root / "home"))) as client:
        uploaded = upload(client, csv, name=UPLOADED_AS)
        assert uploaded.status_code == 201, uploaded.text
        run = start_run(client, uploaded.json()["id"])
        assert run["status"] == "succeeded", run
        state = client.app.state  # type: ignore[attr-defined]
        yield Served(client, run["id"], state.simulation, state.service)


@pytest.fixture(scope="module")
def baseline(served: Served) -> dict[str, Any]:
    response = served.client.get(f"{API}/runs/{served.run_id}/baseline")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_baseline_is_the_simulation_services(served: Served, baseline: dict[str, Any]) -> None:
    assert baseline == served.simulation.current(served.run_id)
    assert baseline["run_id"] == served.run_id


@pytest.mark.parametrize("metric", METRICS)
def test_baseline_equals_every_scenarios_baseline(
    served: Served, baseline: dict[str, Any], metric: str
) -> None:
    neutral = {"levers": [{"lever": "price", "params": {"change": {"1": 0}}}]}
    result = served.simulation.simulate(served.run_id, neutral)
    assert baseline["overall"][metric] == result["overall"]["baseline"][metric]
    for mine, theirs in zip(baseline["segments"], result["segments"], strict=True):
        assert mine["segment"] == theirs["segment"]
        assert mine[metric] == theirs["baseline"][metric]


def test_baseline_numbers_worked_out_from_the_profiles(
    served: Served, baseline: dict[str, Any]
) -> None:
    profiles = {p["segment"]: p for p in served.runs.profiles(served.run_id)["profiles"]}
    economics = baseline["assumptions"]["economics"]
    per_customer = economics["contacts_per_customer"] * economics["cost_per_contact"]
    rows = [*baseline["segments"], baseline["overall"]]
    assert [r["segment"] for r in rows] == [*range(1, len(rows)), 0]
    for row in rows:
        profile = profiles[row["segment"]]
        revenue, customers = profile["revenue"], profile["customers"]
        margin = revenue * economics["margin_rate"]
        cost = customers * per_customer
        assert row["customers"] == customers
        assert_allclose(
            [row["revenue"], row["margin"], row["cost"], row["profit"], row["roi"]],
            [revenue, margin, cost, margin - cost, (margin - cost) / cost],
            rtol=1e-12,
        )


@pytest.mark.parametrize(
    ("run_id", "status", "code"),
    [("01ARZ3NDEKTSV4RRFFQ69G5FAV", 404, "run_not_found"), ("not-a-run", 404, "run_not_found")],
)
def test_baseline_of_an_unknown_run_is_404(
    served: Served, run_id: str, status: int, code: str
) -> None:
    response = served.client.get(f"{API}/runs/{run_id}/baseline")
    assert response.status_code == status
    assert error_of(response)["code"] == code


@pytest.mark.parametrize("shape", [None, *SHAPES])
def test_roles_are_the_services_catalogue(served: Served, shape: str | None) -> None:
    response = served.client.get(f"{API}/roles", params={"shape": shape} if shape else {})
    assert response.status_code == 200
    assert response.json() == [r.to_dict() for r in served.runs.roles(shape)]
    shapes = [shape] if shape else list(SHAPES)
    assert [r["name"] for r in response.json()] == [n for s in shapes for n in allowed_roles(s)]


@pytest.mark.parametrize(
    ("shape", "required", "groups"),
    [
        ("customers", {"customer_id"}, {"revenue", "spend:<name>"}),
        ("transactions", {"customer_id", "timestamp"}, {"amount", "quantity", "unit_price"}),
    ],
)
def test_roles_say_what_a_mapping_needs(
    served: Served, shape: str, required: set[str], groups: set[str]
) -> None:
    roles = served.client.get(f"{API}/roles", params={"shape": shape}).json()
    assert {r["name"] for r in roles if r["required"]} == required
    assert {r["name"] for r in roles if r["required_group"]} == groups
    assert all(r["description"] and r["shape"] == shape for r in roles)
    kinds = {r["name"]: r["type"] for r in roles}
    assert kinds["customer_id"] == "text" and kinds["ignore"] == "none"


def test_roles_of_an_unknown_shape_are_422(served: Served) -> None:
    response = served.client.get(f"{API}/roles", params={"shape": "orders"})
    assert response.status_code == 422


def test_runs_show_the_cleaned_name_of_their_file(served: Served) -> None:
    one = served.client.get(f"{API}/runs/{served.run_id}").json()
    assert one["filename"] == SHOWN_AS
    listed = served.client.get(f"{API}/runs").json()["items"]
    assert [r["filename"] for r in listed if r["id"] == served.run_id] == [SHOWN_AS]


def test_a_new_run_and_the_demo_name_their_file(served: Served, tmp_path: Path) -> None:
    dataset = served.runs.store.list_runs(limit=1, offset=0)[0][0].dataset_id
    created = served.client.post(f"{API}/runs", json={"dataset_id": dataset})
    assert created.status_code == 202
    assert created.json()["filename"] == SHOWN_AS
    demo = served.client.post(f"{API}/demo", json={"customers": 100})
    assert demo.status_code == 202
    assert demo.json()["filename"] == "demo-customers.csv"
    for run in (created.json(), demo.json()):
        served.client.app.state.jobs.wait(run["id"], timeout=60)  # type: ignore[attr-defined]
