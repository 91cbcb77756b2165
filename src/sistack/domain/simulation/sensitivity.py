"""Which assumption matters most? One-at-a-time sensitivity (a tornado chart).

Each numeric assumption of a scenario is moved down and up by ``swing`` (20% by default) while
everything else stays at its value, and the scenario is simulated deterministically again. The
assumptions are the economics (margin rate, contact cost, value of a response, contacts per
customer, discount depth, cost to serve per channel) and, per lever, the parameters it lists in
``Lever.swing`` (rates, elasticities, shifts), with every default filled in first (so a default
uplift swings around the response rate it came from). A dict parameter (e.g. an uplift per
segment, or the cost to serve of every channel) moves as a whole.

The measure is the scenario's **profit impact**: overall profit delta against the baseline
computed with the same assumptions. Swinging the margin rate changes the baseline too; what a
decision needs to know is how much its own effect moves. Bars are sorted by the range of that
impact, largest first. A swung value is clipped to the parameter's allowed range; a swing the
scenario cannot accept (e.g. a discount depth below zero) keeps the unswung value on that side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from sistack.domain.simulation.baseline import Baseline
from sistack.domain.simulation.economics import EconomicSettings
from sistack.domain.simulation.result import plain
from sistack.domain.simulation.scenario import Scenario, simulate, validate_scenario
from sistack.domain.simulation.validation import parameter_bounds

ECONOMICS = (
    "margin_rate",
    "cost_per_contact",
    "revenue_per_response",
    "contacts_per_customer",
    "current_discount_depth",
    "cost_to_serve",  # a dict: every channel's cost moves together
)


@dataclass(frozen=True)
class TornadoBar:
    """Profit impact of one assumption at its low and high value.

    Attributes:
        parameter: ``"economics.<name>"`` or ``"<lever position>.<lever>.<param>"``.
        lever: position of the lever in the scenario; ``None`` for economics.
        base_value / low_value / high_value: the assumption (a number or {segment: number}).
        profit_base / profit_low / profit_high: overall profit delta of the scenario.
        range: |profit_high - profit_low|.
    """

    parameter: str
    lever: int | None
    base_value: Any
    low_value: Any
    high_value: Any
    profit_base: float
    profit_low: float
    profit_high: float
    range: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "parameter": self.parameter,
            "lever": self.lever,
            "base_value": plain(self.base_value),
            "low_value": plain(self.low_value),
            "high_value": plain(self.high_value),
            "profit_base": plain(self.profit_base),
            "profit_low": plain(self.profit_low),
            "profit_high": plain(self.profit_high),
            "range": plain(self.range),
        }


def _scaled(model: type[BaseModel], name: str, value: Any, factor: float) -> Any:
    """``value`` x ``factor`` clipped to the parameter's range; dicts scale entry by entry."""
    if isinstance(value, dict):
        bounds = parameter_bounds(model, (name, "x"))
        return {k: _clip(float(v) * factor, bounds) for k, v in value.items()}
    return _clip(float(value) * factor, parameter_bounds(model, (name,)))


def _clip(value: float, bounds: tuple[Any, Any] | None) -> float:
    if bounds is None:
        return value
    return min(max(value, float(bounds[0])), float(bounds[1]))


def _impact(baseline: Baseline, data: dict[str, Any]) -> float | None:
    try:
        scenario = validate_scenario(data, baseline)
    except ValidationError:
        return None
    return simulate(baseline, scenario).overall.delta.profit


def tornado(baseline: Baseline, scenario: Scenario, *, swing: float = 0.2) -> list[TornadoBar]:
    """One-at-a-time +/- ``swing`` sensitivity of the scenario's profit impact.

    Args:
        baseline: per-segment inputs.
        scenario: the what-if; its Monte Carlo settings are ignored (point estimates).
        swing: relative change of each assumption, in (0, 1).

    Returns:
        One bar per assumption, largest profit range first (ties: parameter name).
    """
    if not 0.0 < swing < 1.0:
        raise ValueError(f"swing must be between 0 and 1 (exclusive), got {swing}")
    scenario = validate_scenario(scenario, baseline)
    data = scenario.model_dump(exclude_unset=True)
    data.pop("monte_carlo", None)
    result = simulate(baseline, Scenario.model_validate(data))
    base = result.overall.delta.profit
    bars = []

    def bar(
        param: str, lever: int | None, value: Any, variants: list[tuple[dict[str, Any], Any]]
    ) -> None:
        values, profits = [], []
        for variant, swung in variants:
            impact = _impact(baseline, variant)
            values.append(swung if impact is not None else value)
            profits.append(impact if impact is not None else base)
        bars.append(
            TornadoBar(
                param,
                lever,
                value,
                values[0],
                values[1],
                base,
                profits[0],
                profits[1],
                abs(profits[1] - profits[0]),
            )
        )

    economics = data.get("economics") or {}
    for name in ECONOMICS:
        value = getattr(result.economics, name)
        variants = []
        for factor in (1.0 - swing, 1.0 + swing):
            swung = _scaled(EconomicSettings, name, value, factor)
            variants.append(({**data, "economics": {**economics, name: swung}}, swung))
        bar(f"economics.{name}", None, value, variants)

    for i, (spec, used) in enumerate(zip(scenario.levers, result.levers, strict=True)):
        lever = type(spec.params)
        for name in lever.swing:
            value = used.params.get(name)
            if value is None or isinstance(value, bool | str | list):
                continue
            variants = []
            for factor in (1.0 - swing, 1.0 + swing):
                swung = _scaled(lever, name, value, factor)
                levers = [dict(x) for x in data["levers"]]
                levers[i] = {**levers[i], "params": {**levers[i].get("params", {}), name: swung}}
                variants.append(({**data, "levers": levers}, swung))
            bar(f"{i}.{lever.name}.{name}", i, value, variants)
    return sorted(bars, key=lambda b: (-b.range, b.parameter))
