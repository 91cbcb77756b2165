"""The answer to a what-if: baseline vs scenario per segment and overall, with its assumptions.

Plain values only (frozen dataclasses of floats); :meth:`ScenarioResult.to_dict` gives the JSON
form. Numbers are never rounded here; an undefined number (an ROI without cost, an unknown
rate) is NaN in the dataclasses and ``None`` in JSON.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sistack.domain.simulation.economics import Economics
from sistack.domain.simulation.registry import Guardrail

METRICS = ("revenue", "margin", "cost", "serving_cost_change", "profit", "roi")
DELTA_METRICS = METRICS[:5]


def plain(value: Any) -> Any:
    """JSON-ready copy: floats (NaN/inf -> None), str keys, lists for tuples."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class Interval:
    """P10, P50 and P90 of a Monte Carlo output."""

    p10: float
    p50: float
    p90: float

    def to_dict(self) -> dict[str, float | None]:
        return {"p10": plain(self.p10), "p50": plain(self.p50), "p90": plain(self.p90)}


@dataclass(frozen=True)
class Outcome:
    """Revenue, margin, marketing cost, change in cost to serve, profit and ROI.

    ``cost`` is the marketing cost (the baseline budget, plus what the levers add or move).
    ``serving_cost_change`` is the cost to serve the scenario adds against today's: today's cost
    to serve is inside the margin, so it is 0 for the baseline and a channel shift makes it
    negative when purchases move to a cheaper channel. profit = margin - cost -
    serving_cost_change; ROI = profit / cost, the return on the marketing spend, NaN (``None``
    in JSON) where the marketing cost is 0 (a segment whose whole budget moved away).
    """

    revenue: float
    margin: float
    cost: float
    serving_cost_change: float
    profit: float
    roi: float

    def to_dict(self) -> dict[str, float | None]:
        return {m: plain(getattr(self, m)) for m in METRICS}


@dataclass(frozen=True)
class SegmentOutcome:
    """Baseline, scenario and delta (scenario - baseline) of one segment, or overall (0).

    ``scenario_interval`` and ``delta_interval`` map each metric to its P10/P50/P90 when the
    scenario ran Monte Carlo, else they are ``None``.
    """

    segment: int
    name: str
    baseline: Outcome
    scenario: Outcome
    delta: Outcome
    scenario_interval: dict[str, Interval] | None = None
    delta_interval: dict[str, Interval] | None = None

    def to_dict(self) -> dict[str, Any]:
        uncertainty = None
        if self.scenario_interval is not None and self.delta_interval is not None:
            uncertainty = {
                "scenario": {m: q.to_dict() for m, q in self.scenario_interval.items()},
                "delta": {m: q.to_dict() for m, q in self.delta_interval.items()},
            }
        return {
            "segment": self.segment,
            "name": self.name,
            "baseline": self.baseline.to_dict(),
            "scenario": self.scenario.to_dict(),
            "delta": self.delta.to_dict(),
            "uncertainty": uncertainty,
        }


@dataclass(frozen=True)
class LeverResult:
    """One lever's parameters (defaults filled in), total deltas and details.

    ``details`` values are a number or a {segment id: number} mapping; with Monte Carlo,
    ``delta_interval`` and ``details_interval`` hold the same keys with P10/P50/P90.
    """

    lever: str
    params: dict[str, Any]
    filled: dict[str, str]
    delta: dict[str, float]
    details: dict[str, Any]
    delta_interval: dict[str, Interval] | None = None
    details_interval: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        uncertainty = None
        if self.delta_interval is not None:
            uncertainty = {
                "delta": {m: q.to_dict() for m, q in self.delta_interval.items()},
                "details": _intervals(self.details_interval or {}),
            }
        return {
            "lever": self.lever,
            "delta": plain(self.delta),
            "details": plain(self.details),
            "uncertainty": uncertainty,
        }


def _intervals(values: dict[Any, Any]) -> dict[str, Any]:
    return {
        str(k): v.to_dict() if isinstance(v, Interval) else _intervals(v) for k, v in values.items()
    }


@dataclass(frozen=True)
class ScenarioResult:
    """Everything a what-if answers: see :meth:`to_dict` for the JSON shape."""

    overall: SegmentOutcome
    segments: tuple[SegmentOutcome, ...]
    levers: tuple[LeverResult, ...]
    economics: Economics
    warnings: tuple[Guardrail, ...]
    monte_carlo: dict[str, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: plain floats, ``None`` for undefined numbers, string keys."""
        return {
            "overall": self.overall.to_dict(),
            "segments": [s.to_dict() for s in self.segments],
            "levers": [lever.to_dict() for lever in self.levers],
            "assumptions": {
                "economics": plain(self.economics.to_dict()),
                "levers": [
                    {"lever": r.lever, "params": plain(r.params), "filled": dict(r.filled)}
                    for r in self.levers
                ],
            },
            "monte_carlo": None
            if self.monte_carlo is None
            else {**self.monte_carlo, "quantiles": [0.1, 0.5, 0.9]},
            "warnings": [w.to_dict() for w in self.warnings],
        }


@dataclass(frozen=True)
class BaselineSegment:
    """One segment's (or, as segment 0, every segment's) numbers before any lever moves."""

    segment: int
    name: str
    customers: float
    outcome: Outcome

    def to_dict(self) -> dict[str, Any]:
        return {
            "segment": self.segment,
            "name": self.name,
            "customers": plain(self.customers),
            **self.outcome.to_dict(),
        }


@dataclass(frozen=True)
class BaselineResult:
    """The run as it stands: revenue, margin, marketing cost, profit and ROI per segment and
    overall (``serving_cost_change`` is 0: nothing has moved yet), under the economics a
    scenario without overrides uses (the ``baseline`` side of every :class:`ScenarioResult`)."""

    overall: BaselineSegment
    segments: tuple[BaselineSegment, ...]
    economics: Economics

    def to_dict(self) -> dict[str, Any]:
        return {
            "overall": self.overall.to_dict(),
            "segments": [s.to_dict() for s in self.segments],
            "assumptions": {"economics": plain(self.economics.to_dict())},
        }
