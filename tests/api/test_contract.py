"""The OpenAPI contract, fuzzed in-process with schemathesis: no 5xx, every answer documented.

The app gets its own home with a succeeded run, a second run to delete, a saved scenario and a
second one to delete. Generated path ids are swapped for those real ids half of the time (and the
dataset id of ``POST /runs`` likewise), so the fuzzer reaches the code behind the 404s. Checks:
no server error, the status code is documented, the content type and body match the documented
schema. Examples are bounded so the module fits CI in well under a minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from sistack.api.app import create_app
from sistack.service.runs import RunService
from sistack.service.simulation import SimulationService
from tests.conftest import small_settings, three_groups

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# The coverage phase adds ~1,200 deterministic boundary cases (about 45 s); the bounded fuzzing
# phase (positive and negative cases) keeps the module at about 20 s.
CONFIG = schemathesis.Config.from_dict({"phases": {"coverage": {"enabled": False}}})
CHEAP_EXPORTS = ["manifest.json", "assignments.csv", "profiles.csv"]


def seed(home: Any) -> dict[str, str]:
    """A dataset, two succeeded runs (one to keep, one for DELETE) and two saved scenarios."""
    data = home.parent / "customers.csv"
    three_groups(60, seed=5).write_csv(data)
    svc = RunService(small_settings(home))
    try:
        dataset, _ = svc.add_dataset(data, keep=True)
        keep, victim = (svc.execute(svc.create_run(dataset.id).id) for _ in range(2))
        assert keep.status == victim.status == "succeeded"
        scenario = {
            "levers": [
                {"lever": "budget_shift", "params": {"sources": [2], "targets": [1], "shift": 0.5}}
            ]
        }
        sim = SimulationService(svc)
        scenarios = [sim.save(keep.id, name, scenario).id for name in ("keep", "victim")]
    finally:
        svc.close()
    return {
        "dataset": dataset.id,
        "run": keep.id,
        "victim_run": victim.id,
        "scenario": scenarios[0],
        "victim_scenario": scenarios[1],
    }


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    home = tmp_path_factory.mktemp("contract") / "home"
    ids = seed(home)
    app = create_app(small_settings(home))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG)

    def real(path: str, method: str, name: str) -> str:
        deleting = method == "DELETE"
        if name == "scenario_id":
            return ids["victim_scenario" if deleting else "scenario"]
        if name == "run_id" and deleting and path.endswith("{run_id}"):
            return ids["victim_run"]
        return ids["run"]

    @schema.hook("flatmap_path_parameters")
    def _real_ids(context: Any, parameters: dict[str, Any]) -> Any:
        operation = context.operation
        if not parameters:
            return st.just(parameters)
        swapped = {
            name: real(operation.path, operation.method.upper(), name)
            for name in parameters
            if name in ("run_id", "other_id", "scenario_id")
        }
        options = [parameters, {**parameters, **swapped}]
        if "name" in parameters:  # exports: the cheap ones, not the PDF or workbook builds
            options += [{**parameters, **swapped, "name": n} for n in CHEAP_EXPORTS]
        return st.sampled_from(options)

    @schema.hook("flatmap_body")
    def _real_dataset(context: Any, body: Any) -> Any:
        operation = context.operation
        if not isinstance(body, dict):
            return st.just(body)
        if operation.path == "/api/v1/demo":  # the pipeline behind it runs in the background
            return st.just({**body, "customers": 100})
        if operation.path == "/api/v1/runs" and operation.method.upper() == "POST":
            return st.sampled_from([body, {**body, "dataset_id": ids["dataset"]}])
        return st.just(body)

    yield schema
    asgi.shutdown_lifespans()  # wait for queued background runs, close the store


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_contract(case: schemathesis.Case) -> None:
    response = case.call()
    assert b"Traceback" not in response.content
    case.validate_response(response, checks=CHECKS)
