"""Which segments to contact in a campaign: the contact set that maximises profit.

The campaign lever (:class:`~sistack.domain.simulation.levers.Campaign`) contacts every customer
of a chosen segment once. Contacting segment s (n_s customers, response rate p_s, cost per
contact cpc, revenue per response rpr) costs c_s = n_s cpc and is worth

    v_s = n_s p_s rpr - c_s

so the profit of a contact set x (x_s = 1: contact s) is sum(x_s v_s), linear in x and in p.

* ``objective="expected"``: without a budget cap the best set contacts exactly the segments
  with v_s > 0 at the expected rates. With a cap B (sum(x_s c_s) <= B) it is a 0/1 knapsack,
  solved exactly by meet in the middle: every subset of each half of the candidates (at most
  2^15 for the 30 segments a run can have), the halves joined by a search on cost.
* ``objective="quantile"``: the chosen quantile of profit over draws of the response rates
  (Beta posteriors; Harrell-Davis estimate, as for the budget optimiser). Not linear in x:
  every feasible set is tried while that costs at most ``ENUMERATION_WORK`` draws in all,
  otherwise a local search (flip one segment at a time while the quantile rises) from the
  expected-profit optimum and from the empty set keeps the better answer. ``method`` says
  which was used.

Per-segment bounds (low, high) on the budget keep their meaning: a segment's campaign budget is
0 or c_s, and must lie within its bounds, so low > 0 forces a contact and high < c_s rules it out;
high = 0 rules it out even when contacting costs nothing (a segment given no campaign budget
gets no campaign).
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from sistack.domain.simulation.baseline import Baseline, FloatArray
from sistack.domain.simulation.economics import Economics, EconomicSettings
from sistack.domain.simulation.optimize import Objective, check_options, unknown_responses
from sistack.domain.simulation.registry import Guardrail
from sistack.domain.simulation.result import Interval, plain
from sistack.domain.simulation.subsets import (
    EXACT_HALF,
    TOLERANCE,
    best_knapsack,
    best_subset,
)
from sistack.domain.simulation.uncertainty import QUANTILES, harrell_davis, response_draws
from sistack.domain.simulation.validation import resolve_bounds
from sistack.errors import InputError


@dataclass(frozen=True)
class ContactPlan:
    """The contact set and what it is expected to bring, against contacting every segment.

    Per-segment tuples are in ``segments`` order and hold the numbers *if the segment is
    contacted*: contacts (= customers), cost, expected responders, revenue and profit.

    Attributes:
        contact: whether each segment is contacted.
        spent: campaign cost of the chosen set (<= ``total_budget`` when there is one).
        customers_contacted / expected_responders / expected_revenue: totals of the chosen set.
        expected_profit / profit_interval: profit of the chosen set at the expected rates, and
            its P10/P50/P90 over the draws.
        all_expected_profit / all_profit_interval / all_cost: the same for contacting every
            segment (the campaign lever's default), the comparison.
        method: ``"exact"`` (expected profit, closed form or meet in the middle),
            ``"enumeration"`` (every feasible set), ``"local_search"``, or ``"greedy"`` (an
            expected-profit knapsack beyond 30 segments, more than a run can have).
        scenario: a scenario with one campaign lever that reproduces the plan (``None`` when
            no segment is contacted).
    """

    segments: tuple[int, ...]
    contact: tuple[bool, ...]
    contacts: tuple[float, ...]
    cost: tuple[float, ...]
    responders: tuple[float, ...]
    revenue: tuple[float, ...]
    profit: tuple[float, ...]
    bounds: tuple[tuple[float, float], ...]
    total_budget: float | None
    spent: float
    objective: str
    quantile: float | None
    objective_value: float
    expected_profit: float
    profit_interval: Interval
    all_expected_profit: float
    all_profit_interval: Interval
    all_cost: float
    method: str
    economics: Economics
    warnings: tuple[Guardrail, ...] = ()
    rules: tuple[str | None, ...] = ()  # per segment: "always", "never" or None

    @property
    def chosen(self) -> list[int]:
        """Ids of the contacted segments."""
        return [s for s, c in zip(self.segments, self.contact, strict=True) if c]

    def _total(self, values: tuple[float, ...]) -> float:
        return float(sum(v for v, c in zip(values, self.contact, strict=True) if c))

    @property
    def customers_contacted(self) -> float:
        return self._total(self.contacts)

    @property
    def expected_responders(self) -> float:
        return self._total(self.responders)

    @property
    def expected_revenue(self) -> float:
        return self._total(self.revenue)

    @property
    def scenario(self) -> dict[str, Any] | None:
        if not self.chosen:
            return None
        params = {
            "which": "list",
            "segments": self.chosen,
            "cost_per_contact": self.economics.cost_per_contact,
            "revenue_per_response": self.economics.revenue_per_response,
        }
        return {"levers": [{"lever": "campaign", "params": params}]}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: per-segment rows, the plan's totals, the comparison and the scenario."""
        rows = [
            {
                "segment": s,
                "contact": self.contact[i],
                "contacts": self.contacts[i],
                "cost": self.cost[i],
                "responders": self.responders[i],
                "revenue": self.revenue[i],
                "profit": self.profit[i],
                "low": self.bounds[i][0],
                "high": self.bounds[i][1],
                "rule": self.rules[i] if self.rules else None,
            }
            for i, s in enumerate(self.segments)
        ]
        return {
            "mode": "campaign",
            "segments": plain(rows),
            "contacted": self.chosen,
            "total_budget": plain(self.total_budget),
            "spent": plain(self.spent),
            "customers_contacted": plain(self.customers_contacted),
            "expected_responders": plain(self.expected_responders),
            "expected_revenue": plain(self.expected_revenue),
            "objective": self.objective,
            "quantile": self.quantile,
            "objective_value": plain(self.objective_value),
            "expected_profit": plain(self.expected_profit),
            "profit_interval": self.profit_interval.to_dict(),
            "contact_all": {
                "cost": plain(self.all_cost),
                "expected_profit": plain(self.all_expected_profit),
                "profit_interval": self.all_profit_interval.to_dict(),
            },
            "improvement": plain(self.expected_profit - self.all_expected_profit),
            "method": self.method,
            "scenario": self.scenario,
            "economics": plain(self.economics.to_dict()),
            "warnings": [w.to_dict() for w in self.warnings],
        }


def optimize_contacts(
    baseline: Baseline,
    *,
    total_budget: float | None = None,
    bounds: dict[int, tuple[float, float]] | None = None,
    always: Collection[int] = (),
    never: Collection[int] = (),
    objective: Objective = "expected",
    quantile: float = 0.1,
    draws: int = 2000,
    seed: int = 0,
    economics: EconomicSettings | None = None,
) -> ContactPlan:
    """The best set of segments to contact once (see the module docstring).

    Args:
        baseline: per-segment inputs.
        total_budget: cap on the campaign's cost; ``None``: no cap.
        bounds: optional (low, high) campaign budget per segment id.
        always: ids of segments contacted whatever they return (still within the cap).
        never: ids of segments not contacted.
        objective: ``"expected"`` profit, or a profit ``"quantile"`` (risk-averse).
        quantile: the quantile for ``objective="quantile"``, in (0, 1).
        draws: draws of the response rates for intervals and the quantile objective.
        seed: seed of those draws.
        economics: overrides of the baseline's economic assumptions.

    Raises:
        InputError: unknown segment, bounds no contact set satisfies, out-of-range options.
    """
    check_options(total_budget, objective=objective, quantile=quantile, draws=draws)
    econ = baseline.economics_for(economics)
    cap = math.inf if total_budget is None else float(total_budget)
    low, high = resolve_bounds(baseline, bounds, default_high=cap)
    n, cpc, rpr = baseline.customers, econ.cost_per_contact, econ.revenue_per_response
    known = np.isfinite(baseline.response_rate)
    point = np.where(known, baseline.response_rate, 0.0)
    cost = n * cpc
    value = n * point * rpr - cost
    sampled = np.where(known, response_draws(baseline, draws=draws, seed=seed), 0.0)
    values_drawn = n * sampled * rpr - cost  # (draws, k)
    rules = _rules(baseline, always, never)
    forced, free = _allowed(baseline, cost, low, high, cap, rules)
    # Forced segments may exceed the cap by the tolerance: the free ones then get no room, never
    # a negative one (with which no subset, not even the empty one, would fit).
    room = max(0.0, cap - float(cost[forced].sum()))

    def quantile_of(x: NDArray[np.bool_], q: float = quantile) -> float:
        return float(harrell_davis(values_drawn @ x.astype(np.float64), q))

    best, method = _expected_best(value, cost, forced, free, room)
    if objective == "quantile":
        best, method = best_subset(
            quantile_of, cost=cost, forced=forced, free=free, room=room, start=best, draws=draws
        )
    everyone = np.ones(baseline.k, dtype=bool)

    def interval(x: NDArray[np.bool_]) -> Interval:
        q = [quantile_of(x, p) for p in QUANTILES]
        return Interval(q[0], q[1], q[2])

    expected = float(value @ best)
    warnings = list(unknown_responses(baseline, known))
    if expected < 0:
        warnings.append(
            Guardrail(
                "negative_profit",
                f"The contact set loses {-expected:,.2f} in expectation: the responses of the "
                "segments it contacts (the bounds force some in) do not pay for the contacts.",
                values={"expected_profit": expected},
            )
        )
    return ContactPlan(
        segments=baseline.ids,
        contact=tuple(bool(x) for x in best),
        contacts=tuple(float(v) for v in n),
        cost=tuple(float(v) for v in cost),
        responders=tuple(float(v) for v in n * point),
        revenue=tuple(float(v) for v in n * point * rpr),
        profit=tuple(float(v) for v in value),
        bounds=tuple((float(lo), float(hi)) for lo, hi in zip(low, high, strict=True)),
        total_budget=None if total_budget is None else float(total_budget),
        spent=float(cost @ best),
        objective=objective,
        quantile=quantile if objective == "quantile" else None,
        objective_value=quantile_of(best) if objective == "quantile" else expected,
        expected_profit=expected,
        profit_interval=interval(best),
        all_expected_profit=float(value.sum()),
        all_profit_interval=interval(everyone),
        all_cost=float(cost.sum()),
        method=method,
        economics=econ,
        warnings=tuple(warnings),
        rules=tuple(rules),
    )


def _rules(baseline: Baseline, always: Collection[int], never: Collection[int]) -> list[str | None]:
    """Per segment: ``"always"``, ``"never"`` or None (the optimiser decides)."""
    for field, ids in (("always", always), ("never", never)):
        if unknown := sorted(set(ids) - set(baseline.ids)):
            raise InputError(
                f"{field}: there is no segment {unknown[0]}; the segments are "
                f"{', '.join(map(str, baseline.ids))}",
                details={"field": field},
            )
    if both := sorted(set(always) & set(never)):
        raise InputError(
            f"segment {both[0]} is in both always and never", details={"field": "always"}
        )
    return ["always" if s in always else "never" if s in never else None for s in baseline.ids]


def _allowed(
    baseline: Baseline,
    cost: FloatArray,
    low: FloatArray,
    high: FloatArray,
    cap: float,
    rules: list[str | None],
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Segments that must be contacted, and those the optimiser may choose."""
    slack = TOLERANCE * np.maximum(cost, 1.0)
    always = np.array([r == "always" for r in rules], dtype=bool)
    never = np.array([r == "never" for r in rules], dtype=bool)
    can_skip = (low <= 0.0) & ~always
    can_contact = (low <= cost + slack) & (cost <= high + slack) & (high > 0.0) & ~never
    if stuck := [
        i for i, (a, b) in enumerate(zip(can_skip, can_contact, strict=True)) if not a | b
    ]:
        i, s = stuck[0], baseline.ids[stuck[0]]
        if rules[i] == "always":
            raise InputError(
                f"always: contacting segment {s} costs {cost[i]:,.2f}, more than its bounds or "
                f"the cap on the campaign's cost allow ({min(high[i], cap):,.2f})",
                details={"field": "always"},
            )
        raise InputError(
            f"bounds: the campaign budget of segment {s} is 0 or the cost of contacting it "
            f"({cost[i]:,.2f}); its bounds allow neither",
            details={"field": f"bounds.{s}"},
        )
    forced = can_contact & ~can_skip
    if cost[forced].sum() > cap * (1 + TOLERANCE):
        raise InputError(
            f"the segments the bounds force into the campaign cost {cost[forced].sum():,.2f}, "
            f"more than the budget of {cap:,.2f}",
            details={"field": "bounds"},
        )
    return forced, can_contact & can_skip


def _expected_best(
    value: FloatArray,
    cost: FloatArray,
    forced: NDArray[np.bool_],
    free: NDArray[np.bool_],
    room: float,
) -> tuple[NDArray[np.bool_], str]:
    """The maximiser of the expected profit (forced segments plus the best free ones), and
    ``"exact"``, or ``"greedy"`` beyond the knapsack's size (more segments than a run has)."""
    best = forced.copy()
    gain = free & (value > 0)  # a segment that does not pay back never helps
    if cost[gain].sum() <= room * (1 + TOLERANCE) or not gain.any():
        return best | gain, "exact"
    candidates = np.flatnonzero(gain)
    if len(candidates) > 2 * EXACT_HALF:  # best value per unit of cost first
        ratio = value[candidates] / np.maximum(cost[candidates], np.finfo(float).tiny)
        spent = 0.0
        for i in candidates[np.argsort(-ratio, kind="stable")]:
            if spent + cost[i] <= room * (1 + TOLERANCE):
                best[i], spent = True, spent + cost[i]
        return best, "greedy"
    best[candidates] = best_knapsack(value[candidates], cost[candidates], room)
    return best, "exact"
