"""What-if simulation on a run's segment statistics: levers, scenarios, sensitivity, budgets and
campaign contact sets.

Pure and fast: everything works on k-length per-segment arrays (:class:`Baseline`), never on
customer rows, so an answer takes milliseconds whatever the number of customers.
"""

from sistack.domain.simulation.baseline import Baseline
from sistack.domain.simulation.contacts import ContactPlan, optimize_contacts
from sistack.domain.simulation.economics import Economics, EconomicSettings
from sistack.domain.simulation.levers import lever_catalogue
from sistack.domain.simulation.optimize import OptimizationResult, optimize_budget
from sistack.domain.simulation.planning import OptimizationRequest, plan, validate_request
from sistack.domain.simulation.registry import (
    Guardrail,
    Lever,
    LeverContext,
    LeverEffect,
    get_lever,
    known_levers,
    register,
)
from sistack.domain.simulation.result import (
    BaselineResult,
    BaselineSegment,
    Interval,
    LeverResult,
    Outcome,
    ScenarioResult,
    SegmentOutcome,
)
from sistack.domain.simulation.scenario import (
    LeverSpec,
    MonteCarlo,
    Scenario,
    baseline_result,
    simulate,
    validate_scenario,
)
from sistack.domain.simulation.sensitivity import TornadoBar, tornado

__all__ = [
    "Baseline",
    "BaselineResult",
    "BaselineSegment",
    "ContactPlan",
    "EconomicSettings",
    "Economics",
    "Guardrail",
    "Interval",
    "Lever",
    "LeverContext",
    "LeverEffect",
    "LeverResult",
    "LeverSpec",
    "MonteCarlo",
    "OptimizationRequest",
    "OptimizationResult",
    "Outcome",
    "Scenario",
    "ScenarioResult",
    "SegmentOutcome",
    "TornadoBar",
    "baseline_result",
    "get_lever",
    "known_levers",
    "lever_catalogue",
    "optimize_budget",
    "optimize_contacts",
    "plan",
    "register",
    "simulate",
    "tornado",
    "validate_request",
    "validate_scenario",
]
