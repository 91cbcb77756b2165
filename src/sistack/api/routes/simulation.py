"""What-if simulation: levers, ad hoc scenarios, saved scenarios, comparison, optimiser."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from fastapi import APIRouter, Depends, Query, Response
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    RootModel,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from sistack.api.deps import simulation
from sistack.api.schemas import error_responses
from sistack.domain.simulation import OptimizationRequest, Scenario
from sistack.io.store.metadata import ScenarioRecord
from sistack.service.simulation import MAX_COMPARED, SimulationService

router = APIRouter(tags=["simulation"])
ERRORS = error_responses(404, 409, 422)


class _DocumentedBody(RootModel[dict[str, Any]]):
    """A JSON object taken as it is, documented in the OpenAPI schema as ``documented_as``."""

    documented_as: ClassVar[type[BaseModel]]

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return handler(cls.documented_as.__pydantic_core_schema__)


class ScenarioBody(_DocumentedBody):
    """A scenario as sent: any JSON object here, documented as ``Scenario``.

    The service validates it against the run (segment ids, channels, ranges), so an unknown
    lever, an empty lever list or a rate out of range is the same ``invalid_scenario`` error,
    naming the field and its whole allowed range, through HTTP as through the CLI. (Parsed as
    ``Scenario`` here, FastAPI would answer first with its own message.)
    """

    documented_as = Scenario


class OptimizeBody(_DocumentedBody):
    """An optimisation request as sent, documented as ``OptimizationRequest`` and validated by
    the service (``invalid_optimization``), for the same reason as :class:`ScenarioBody`."""

    documented_as = OptimizationRequest


class ScenarioSave(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    scenario: ScenarioBody


class ScenarioOut(BaseModel):
    id: str
    run_id: str
    name: str
    scenario: dict[str, Any]
    created_at: dt.datetime

    @classmethod
    def of(cls, r: ScenarioRecord) -> ScenarioOut:
        return cls(id=r.id, run_id=r.run_id, name=r.name, scenario=r.body, created_at=r.created_at)


class ScenarioCompare(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scenario_ids: list[str] = Field(min_length=1, max_length=MAX_COMPARED)


class ScenarioImport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_id: str = Field(max_length=64, description="The run the scenario was saved on.")
    scenario_id: str = Field(max_length=64)


@router.get("/api/v1/levers")
def levers() -> list[dict[str, Any]]:
    """Every lever with its parameters, bounds and defaults (enough to render controls)."""
    return SimulationService.levers()


@router.post("/api/v1/runs/{run_id}/simulate", responses=ERRORS)
def simulate(
    run_id: str,
    body: ScenarioBody,
    sensitivity: bool = Query(default=False, description="Add tornado data."),
    sim: SimulationService = Depends(simulation),
) -> dict[str, Any]:
    """Baseline vs scenario, per segment and overall; nothing is saved."""
    return sim.simulate(run_id, body.root, sensitivity=sensitivity)


@router.get("/api/v1/runs/{run_id}/baseline", responses=error_responses(404, 409))
def baseline(run_id: str, sim: SimulationService = Depends(simulation)) -> dict[str, Any]:
    """The run as it stands, before any lever: revenue, margin, marketing cost, profit and ROI
    per segment and overall (``overall`` is segment 0), with the economics used. The same
    numbers every scenario reports as its baseline."""
    return sim.current(run_id)


@router.post(
    "/api/v1/runs/{run_id}/scenarios", status_code=201, response_model=ScenarioOut, responses=ERRORS
)
def save_scenario(
    run_id: str, body: ScenarioSave, sim: SimulationService = Depends(simulation)
) -> ScenarioOut:
    return ScenarioOut.of(sim.save(run_id, body.name, body.scenario.root))


@router.get("/api/v1/runs/{run_id}/scenarios", response_model=list[ScenarioOut], responses=ERRORS)
def list_scenarios(run_id: str, sim: SimulationService = Depends(simulation)) -> list[ScenarioOut]:
    return [ScenarioOut.of(r) for r in sim.saved(run_id)]


@router.post("/api/v1/runs/{run_id}/scenarios/compare", responses=ERRORS)
def compare_scenarios(
    run_id: str, body: ScenarioCompare, sim: SimulationService = Depends(simulation)
) -> dict[str, Any]:
    """Up to four saved scenarios side by side."""
    return sim.compare(run_id, body.scenario_ids)


@router.post(
    "/api/v1/runs/{run_id}/scenarios/import",
    status_code=201,
    response_model=ScenarioOut,
    responses=ERRORS,
)
def import_scenario(
    run_id: str, body: ScenarioImport, sim: SimulationService = Depends(simulation)
) -> ScenarioOut:
    """Re-apply a scenario saved on another run; segments are translated by matching."""
    return ScenarioOut.of(sim.import_scenario(run_id, body.run_id, body.scenario_id))


@router.get(
    "/api/v1/runs/{run_id}/scenarios/{scenario_id}", response_model=ScenarioOut, responses=ERRORS
)
def get_scenario(
    run_id: str, scenario_id: str, sim: SimulationService = Depends(simulation)
) -> ScenarioOut:
    return ScenarioOut.of(sim.get(run_id, scenario_id))


@router.delete("/api/v1/runs/{run_id}/scenarios/{scenario_id}", status_code=204, responses=ERRORS)
def delete_scenario(
    run_id: str, scenario_id: str, sim: SimulationService = Depends(simulation)
) -> Response:
    sim.delete(run_id, scenario_id)
    return Response(status_code=204)


@router.post("/api/v1/runs/{run_id}/optimize", responses=ERRORS)
def optimize(
    run_id: str, body: OptimizeBody, sim: SimulationService = Depends(simulation)
) -> dict[str, Any]:
    """Best split of a marketing budget across segments (expected or risk-averse profit), or
    with ``campaign`` the best set of segments to contact once."""
    return sim.optimize(run_id, body.root)
