"""Simulation through HTTP: the same errors, tornado data and optimisers as the service.

Invalid scenarios are validated by the service, not by FastAPI's body parsing, so an unknown
lever, an empty lever list or a value out of range is the service's ``invalid_scenario`` error
(field and whole allowed range), not a generic ``invalid_request``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sistack.api.app import create_app
from sistack.errors import InputError
from sistack.service.runs import RunService
from sistack.service.simulation import SimulationService
from tests.api.test_api import error_of, start_run, upload
from tests.conftest import _write_customers, small_settings

API = "/api/v1"
SHIFT = {"levers": [{"lever": "budget_shift", "params": {"sources": [2], "targets": [1]}}]}


@dataclass(frozen=True)
class Served:
    client: TestClient
    run_id: str
    k: int
    simulation: SimulationService
    runs: RunService


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("simulation-api")
    csv = _write_customers(root / "customers.csv", customers=300, seed=7)
    with TestClient(create_app(small_settings(root / "home"))) as client:
        uploaded = upload(client, csv)
        assert uploaded.status_code == 201, uploaded.text
        run = start_run(client, uploaded.json()["id"])
        assert run["status"] == "succeeded", run
        state = client.app.state  # type: ignore[attr-defined]
        yield Served(client, run["id"], run["k"], state.simulation, state.service)


def one(lever: str, params: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"levers": [{"lever": lever, "params": params}], **extra}


INVALID = [
    # body, field, words of the message
    (one("teleport", {}), "levers.0.lever", "unknown lever 'teleport'; known levers: budget_shift"),
    ({"levers": []}, "levers", "at least 1 item"),
    ({}, "levers", "Field required"),
    (
        one("budget_shift", {"sources": [2], "targets": [1], "shift": 1.5}),
        "levers.0.params.shift",
        "between 0.0 and 1.0, got 1.5",
    ),
    (
        one("campaign", {}, economics={"margin_rate": 1.5}),
        "economics.margin_rate",
        "between 0.0 and 1.0, got 1.5",
    ),
    (
        one("campaign", {}, monte_carlo={"draws": 20_001}),
        "monte_carlo.draws",
        "between 100 and 20000, got 20001",
    ),
    (
        one("campaign", {"which": "list", "segments": [0]}),
        "levers.0.params.segments.0",
        "unknown segment id 0; allowed ids: 1, 2",
    ),
]


@pytest.mark.parametrize(("body", "field", "words"), INVALID)
def test_invalid_scenarios_are_the_services_error(
    served: Served, body: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(InputError) as info:
        served.simulation.simulate(served.run_id, body)
    for path, sent in (
        (f"{API}/runs/{served.run_id}/simulate", body),
        (f"{API}/runs/{served.run_id}/scenarios", {"name": "bad", "scenario": body}),
    ):
        response = served.client.post(path, json=sent)
        assert response.status_code == 422, response.text
        error = error_of(response)
        assert error["code"] == "invalid_scenario"
        assert error["message"] == info.value.message
        assert words in error["message"]
        assert field in [p["field"] for p in error["details"]["problems"]]


def test_a_body_that_is_not_an_object_is_still_a_request_error(served: Served) -> None:
    response = served.client.post(f"{API}/runs/{served.run_id}/simulate", json=[1, 2])
    assert response.status_code == 422
    assert error_of(response)["code"] == "invalid_request"


def test_the_documented_bodies_are_the_domain_models(served: Served) -> None:
    schema = served.client.get("/openapi.json").json()
    components = schema["components"]["schemas"]
    paths = schema["paths"]

    def body_of(path: str) -> dict[str, Any]:
        """The schema the body of ``path`` is documented with (refs followed)."""
        node = paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        while "$ref" in node:
            node = components[node["$ref"].rsplit("/", 1)[-1]]
        return node  # type: ignore[no-any-return]

    scenario = body_of("/api/v1/runs/{run_id}/simulate")
    assert scenario["title"] == "Scenario"
    assert scenario["properties"]["levers"]["minItems"] == 1
    optimize = body_of("/api/v1/runs/{run_id}/optimize")
    assert optimize["title"] == "OptimizationRequest"
    assert optimize["properties"]["draws"]["maximum"] == 20_000
    assert optimize["properties"]["campaign"]["default"] is False


def test_sensitivity_query_adds_the_services_tornado(served: Served) -> None:
    response = served.client.post(
        f"{API}/runs/{served.run_id}/simulate", params={"sensitivity": "true"}, json=SHIFT
    )
    assert response.status_code == 200, response.text
    bars = response.json()["sensitivity"]
    assert bars == served.simulation.simulate(served.run_id, SHIFT, sensitivity=True)["sensitivity"]
    # the shift's bar by hand: impact = 0.35 x shift x (R_1 p_1 - R_2 p_2), shift 0.1 +/- 20%
    profiles = {p["segment"]: p for p in served.runs.profiles(served.run_id)["profiles"]}
    insights = {s["segment"]: s for s in served.runs.insights(served.run_id)["segments"]}
    rate = {s: insights[s]["response"]["expected_rate"] for s in (1, 2)}
    net = profiles[1]["revenue"] * rate[1] - profiles[2]["revenue"] * rate[2]
    shift = next(b for b in bars if b["parameter"] == "0.budget_shift.shift")
    assert (shift["low_value"], shift["high_value"]) == (pytest.approx(0.08), pytest.approx(0.12))
    assert shift["profit_low"] == pytest.approx(0.35 * 0.08 * net)
    assert shift["profit_high"] == pytest.approx(0.35 * 0.12 * net)
    plain = served.client.post(f"{API}/runs/{served.run_id}/simulate", json=SHIFT).json()
    assert "sensitivity" not in plain


def test_risk_averse_optimiser(served: Served) -> None:
    request = {"total_budget": 600, "objective": "quantile", "quantile": 0.1, "seed": 3}
    response = served.client.post(f"{API}/runs/{served.run_id}/optimize", json=request)
    assert response.status_code == 200, response.text
    cautious = response.json()
    assert cautious == served.simulation.optimize(served.run_id, request) | {
        "run_id": served.run_id
    }
    assert (cautious["objective"], cautious["quantile"]) == ("quantile", 0.1)
    assert cautious["objective_value"] == pytest.approx(cautious["profit_interval"]["p10"])
    assert sum(s["budget"] for s in cautious["segments"]) == pytest.approx(600, rel=1e-6)
    expected = served.client.post(
        f"{API}/runs/{served.run_id}/optimize", json={"total_budget": 600, "seed": 3}
    ).json()
    assert expected["objective"] == "expected" and expected["quantile"] is None
    assert cautious["objective_value"] >= expected["profit_interval"]["p10"] - 1e-6


def test_campaign_optimiser(served: Served) -> None:
    profiles = {p["segment"]: p for p in served.runs.profiles(served.run_id)["profiles"]}
    insights = {s["segment"]: s for s in served.runs.insights(served.run_id)["segments"]}
    value = {
        s: profiles[s]["customers"] * (40 * insights[s]["response"]["expected_rate"] - 3)
        for s in insights
    }
    body = {"campaign": True, "economics": {"revenue_per_response": 40}}
    response = served.client.post(f"{API}/runs/{served.run_id}/optimize", json=body)
    assert response.status_code == 200, response.text
    plan = response.json()
    assert plan["mode"] == "campaign"
    assert plan["contacted"] == sorted(s for s, v in value.items() if v > 0)
    assert plan["expected_profit"] == pytest.approx(sum(v for v in value.values() if v > 0))
    # Contact rules: the most valuable segment never, the least valuable always.
    best, worst = max(value, key=value.__getitem__), min(value, key=value.__getitem__)
    ruled = {**body, "always": [worst], "never": [best]}
    answer = served.client.post(f"{API}/runs/{served.run_id}/optimize", json=ruled).json()
    expected = sorted({s for s, v in value.items() if v > 0} - {best} | {worst})
    assert answer["contacted"] == expected
    assert {r["segment"]: r["rule"] for r in answer["segments"]} == {
        s: "always" if s == worst else "never" if s == best else None for s in value
    }


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"total_budget": 100, "draws": 20_001}, "draws", "between 100 and 20000, got 20001"),
        ({"total_budget": 0}, "total_budget", "between 0.0 (excluded) and"),
        ({"total_budget": 100, "quantile": 1}, "quantile", "and 1.0 (excluded), got 1"),
        ({"total_budget": 100, "bounds": {"99": [0, 1]}}, "bounds.99.[key]", "allowed ids: 1"),
        ({"total_budget": 100, "always": [1]}, "", "add campaign: true"),
        ({"campaign": True, "always": [1], "never": [1]}, "", "in both always and never"),
        ({"campaign": True, "never": [99]}, "never.0", "allowed ids: 1"),
    ],
)
def test_invalid_optimisation_requests(
    served: Served, body: dict[str, Any], field: str, words: str
) -> None:
    response = served.client.post(f"{API}/runs/{served.run_id}/optimize", json=body)
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert error["code"] == "invalid_optimization"
    assert [p["field"] for p in error["details"]["problems"]] == [field]
    assert words in error["message"]
