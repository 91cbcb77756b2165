"""Simulation use cases: what-if scenarios, saved scenarios, comparison, budget and campaign
optimisation.

Everything reads a run's two small per-segment documents (profiles.json, insights.json), never
a customer-level artifact, and never refits: the baseline of a run is built once and cached
(runs are immutable), so an answer costs the same for 2,000 customers as for 10 million.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from sistack.domain.simulation import (
    Baseline,
    Scenario,
    baseline_result,
    lever_catalogue,
    simulate,
    tornado,
    validate_scenario,
)
from sistack.domain.simulation.planning import plan, validate_request
from sistack.domain.simulation.remap import remap_segments
from sistack.errors import InputError
from sistack.io.store.metadata import ScenarioRecord
from sistack.service.runs import RunService, compare_stored, new_id, now

CACHE_RUNS = 64
MAX_COMPARED = 4


def invalid_scenario(
    exc: ValidationError, *, what: str = "scenario", code: str = "invalid_scenario"
) -> InputError:
    """A pydantic error as our 422: every problem with its field path and the allowed values."""
    problems = [
        {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()
    ]
    summary = "; ".join(f"{p['field'] or what}: {p['message']}" for p in problems[:5])
    return InputError(
        f"The {what} is not valid: {summary}",
        code=code,
        details={"problems": problems},
    )


class SimulationService:
    """Scenarios on the runs of a :class:`RunService`."""

    def __init__(self, runs: RunService) -> None:
        self.runs = runs
        self._cache: OrderedDict[str, Baseline] = OrderedDict()
        self._lock = threading.Lock()

    def scoped(self, workspace: str) -> SimulationService:
        """This service limited to one workspace (see :meth:`RunService.scoped`); the baseline
        cache is shared, and checked only after the run is found in the workspace."""
        view = copy.copy(self)
        view.runs = self.runs.scoped(workspace)
        return view

    @staticmethod
    def levers() -> list[dict[str, Any]]:
        return lever_catalogue()

    def baseline(self, run_id: str) -> Baseline:
        """The run's per-segment baseline (built from its documents once, then cached)."""
        if self.runs.workspace is not None:
            self.runs.get_run(run_id)  # not found unless the run is in this workspace
        with self._lock:
            cached = self._cache.get(run_id)
            if cached is not None:
                self._cache.move_to_end(run_id)
                return cached
        built = Baseline.from_documents(self.runs.profiles(run_id), self.runs.insights(run_id))
        with self._lock:
            self._cache[run_id] = built
            while len(self._cache) > CACHE_RUNS:
                self._cache.popitem(last=False)
        return built

    def forget(self, run_id: str) -> None:
        with self._lock:
            self._cache.pop(run_id, None)

    def current(self, run_id: str) -> dict[str, Any]:
        """The run's persisted baseline, before any lever: revenue, margin, marketing cost,
        profit and ROI per segment and overall (``GET /api/v1/runs/{id}/baseline``)."""
        result = baseline_result(self.baseline(run_id)).to_dict()
        result["run_id"] = run_id
        return result

    def _scenario(self, baseline: Baseline, body: Mapping[str, Any]) -> Scenario:
        try:
            return validate_scenario(body, baseline)
        except ValidationError as exc:
            raise invalid_scenario(exc) from exc

    def simulate(
        self, run_id: str, body: Mapping[str, Any], *, sensitivity: bool = False
    ) -> dict[str, Any]:
        """Run a scenario (nothing is saved); optionally with tornado data."""
        baseline = self.baseline(run_id)
        scenario = self._scenario(baseline, body)
        result = simulate(baseline, scenario).to_dict()
        result["run_id"] = run_id
        if sensitivity:
            result["sensitivity"] = [bar.to_dict() for bar in tornado(baseline, scenario)]
        return result

    # Saved scenarios --------------------------------------------------------------------------
    def save(self, run_id: str, name: str, body: Mapping[str, Any]) -> ScenarioRecord:
        baseline = self.baseline(run_id)
        scenario = self._scenario(baseline, body)
        record = ScenarioRecord(
            id=new_id(),
            run_id=run_id,
            name=name,
            body=scenario.model_dump(mode="json", exclude_none=True),
            created_at=now(),
            workspace=self.runs.get_run(run_id).workspace,
        )
        self.runs.store.add_scenario(record)
        return record

    def saved(self, run_id: str) -> list[ScenarioRecord]:
        self.runs.finished(run_id)
        return self.runs.store.list_scenarios(run_id, workspace=self.runs.workspace)

    def get(self, run_id: str, scenario_id: str) -> ScenarioRecord:
        self.runs.finished(run_id)
        return self.runs.store.get_scenario(run_id, scenario_id, workspace=self.runs.workspace)

    def delete(self, run_id: str, scenario_id: str) -> None:
        self.runs.finished(run_id)
        self.runs.store.delete_scenario(run_id, scenario_id, workspace=self.runs.workspace)

    def compare(self, run_id: str, scenario_ids: list[str]) -> dict[str, Any]:
        """Up to four saved scenarios side by side (each simulated on this run)."""
        if not 1 <= len(scenario_ids) <= MAX_COMPARED:
            raise InputError(
                f"Compare between 1 and {MAX_COMPARED} scenarios (got {len(scenario_ids)}).",
                code="invalid_scenario_selection",
                details={"allowed": [1, MAX_COMPARED]},
            )
        out = []
        for sid in scenario_ids:
            record = self.get(run_id, sid)
            result = self.simulate(run_id, record.body)
            out.append({"id": record.id, "name": record.name, "result": result})
        return {"run_id": run_id, "scenarios": out}

    def import_scenario(self, run_id: str, source_run: str, scenario_id: str) -> ScenarioRecord:
        """Re-apply a scenario saved on another run: its segments are translated by matching."""
        record = self.get(source_run, scenario_id)
        matching = compare_stored(self.runs, source_run, run_id)
        mapping = {m["segment_a"]: m["segment_b"] for m in matching["matches"]}
        try:
            body = remap_segments(record.body, mapping)
        except KeyError as exc:
            raise InputError(
                f"Segment {exc.args[0]} of run '{source_run}' has no match in run '{run_id}'; "
                "edit the scenario before applying it.",
                code="unmatched_segment",
                details={"matches": mapping},
            ) from exc
        return self.save(run_id, record.name, body)

    # Optimiser ----------------------------------------------------------------------------------
    def optimize(self, run_id: str, request: Mapping[str, Any]) -> dict[str, Any]:
        """Best split of a budget across segments, or (``campaign``) the best contact set.

        ``request`` is validated like a scenario (see
        :class:`~sistack.domain.simulation.planning.OptimizationRequest`): an invalid one is an
        ``invalid_optimization`` error naming each field and its whole allowed range.
        """
        baseline = self.baseline(run_id)
        try:
            options = validate_request(request, baseline)
        except ValidationError as exc:
            raise invalid_scenario(
                exc, what="optimisation request", code="invalid_optimization"
            ) from exc
        try:
            result = plan(baseline, options)
        except InputError as exc:  # bounds the optimiser cannot honour (they are valid apart)
            raise InputError(exc.message, code="invalid_optimization", details=exc.details) from exc
        return {"run_id": run_id, **result.to_dict()}
