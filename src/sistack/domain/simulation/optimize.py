"""Allocate a marketing budget across segments to maximise profit (or a pessimistic quantile).

Response curve of segment s (saturating, diminishing returns), with n_s customers, response rate
p_s, cost per contact cpc and revenue per response rpr:

    responders_s(b) = n_s p_s (1 - exp(-b / (n_s cpc)))

Spending the cost of one contact per customer (b = n_s cpc) reaches 1 - 1/e = 63% of the
responders the segment can give; revenue = responders x rpr and profit = revenue - b. With
a_s = n_s p_s rpr and c_s = n_s cpc the optimum under sum(b) = B is b_s = c_s ln(a_s / (c_s l))
for the l that makes the budgets add up (clipped by the bounds), which the tests check.

``objective="expected"`` maximises profit at the expected response rates (profit is linear in
p, so this is the expected profit); ``objective="quantile"`` maximises the chosen quantile of
profit over draws of the response rates from their Beta posteriors: a risk-averse allocation
that prefers segments whose response is well measured. SciPy's SLSQP solves it with the sum
constraint and the bounds, from a feasible start, with analytic gradients; it is deterministic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize

from sistack.domain.simulation.baseline import Baseline, FloatArray
from sistack.domain.simulation.economics import Economics, EconomicSettings
from sistack.domain.simulation.registry import Guardrail
from sistack.domain.simulation.result import Interval, plain
from sistack.domain.simulation.uncertainty import (
    QUANTILES,
    harrell_davis,
    quantile_weights,
    response_draws,
)
from sistack.domain.simulation.validation import resolve_bounds
from sistack.errors import InputError

Objective = Literal["expected", "quantile"]


@dataclass(frozen=True)
class OptimizationResult:
    """A budget allocation and how it compares with today's allocation scaled to the same total.

    Attributes:
        segments: segment ids, the order of every per-segment tuple.
        allocation: optimal budget per segment.
        current: baseline budgets scaled to ``total_budget``.
        responders / revenue: expected responders and revenue per segment at the optimum.
        expected_profit / current_expected_profit: profit at the expected response rates.
        profit_interval / current_profit_interval: P10/P50/P90 of profit over the draws
            (Harrell-Davis estimates, the same estimator the quantile objective maximises).
        objective_value: the maximised objective (expected profit or the profit quantile).
        converged / message / iterations: the solver's report.
    """

    segments: tuple[int, ...]
    allocation: tuple[float, ...]
    current: tuple[float, ...]
    bounds: tuple[tuple[float, float], ...]
    responders: tuple[float, ...]
    revenue: tuple[float, ...]
    total_budget: float
    objective: str
    quantile: float | None
    objective_value: float
    expected_profit: float
    profit_interval: Interval
    current_expected_profit: float
    current_profit_interval: Interval
    converged: bool
    message: str
    iterations: int
    economics: Economics
    warnings: tuple[Guardrail, ...] = ()

    @property
    def improvement(self) -> float:
        """Expected profit of the optimum minus that of the current allocation."""
        return self.expected_profit - self.current_expected_profit

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: per-segment rows, totals, intervals and the solver's report."""
        rows = [
            {
                "segment": s,
                "budget": self.allocation[i],
                "current_budget": self.current[i],
                "low": self.bounds[i][0],
                "high": self.bounds[i][1],
                "responders": self.responders[i],
                "revenue": self.revenue[i],
            }
            for i, s in enumerate(self.segments)
        ]
        return {
            "mode": "allocation",
            "segments": plain(rows),
            "total_budget": plain(self.total_budget),
            "objective": self.objective,
            "quantile": self.quantile,
            "objective_value": plain(self.objective_value),
            "expected_profit": plain(self.expected_profit),
            "profit_interval": self.profit_interval.to_dict(),
            "current_expected_profit": plain(self.current_expected_profit),
            "current_profit_interval": self.current_profit_interval.to_dict(),
            "improvement": plain(self.improvement),
            "converged": self.converged,
            "message": self.message,
            "iterations": self.iterations,
            "economics": plain(self.economics.to_dict()),
            "warnings": [w.to_dict() for w in self.warnings],
        }


def _bounds(
    baseline: Baseline, total: float, bounds: dict[int, tuple[float, float]] | None
) -> tuple[FloatArray, FloatArray]:
    low, high = resolve_bounds(baseline, bounds, default_high=total)
    if low.sum() > total * (1 + 1e-12) or high.sum() < total * (1 - 1e-12):
        raise InputError(
            f"no allocation of {total} fits the bounds: their lows add up to {low.sum()} and "
            f"their highs to {high.sum()}",
            details={"field": "bounds"},
        )
    return low, high


def check_options(
    total_budget: float | None, *, objective: str, quantile: float, draws: int
) -> None:
    """Check the options both optimisers take (:func:`optimize_budget`, and
    :func:`~.contacts.optimize_contacts`, for which ``None`` is no budget cap).

    Raises:
        InputError: the first option out of its range.
    """
    if total_budget is not None and not (math.isfinite(total_budget) and total_budget >= 0):
        raise InputError(f"total_budget must be a finite number >= 0, got {total_budget}")
    if objective not in ("expected", "quantile"):
        raise InputError(f"objective must be 'expected' or 'quantile', got {objective!r}")
    if not 0.0 < quantile < 1.0:
        raise InputError(f"quantile must be between 0 and 1 (exclusive), got {quantile}")
    if not 100 <= draws <= 20_000:
        raise InputError(f"draws must be between 100 and 20000, got {draws}")


def unknown_responses(baseline: Baseline, known: NDArray[np.bool_]) -> tuple[Guardrail, ...]:
    """One warning per segment without a response rate (``known`` False): an optimiser
    expects no responders from it."""
    return tuple(
        Guardrail(
            "unknown_response",
            f"Segment {s} has no response rate in the data; the optimiser expects no "
            "responders from it.",
            segment=s,
        )
        for s, ok in zip(baseline.ids, known, strict=True)
        if not ok
    )


def _curve(
    p: FloatArray, b: FloatArray, n: FloatArray, cpc: float, rpr: float
) -> tuple[FloatArray, FloatArray]:
    """Profit per draw, shape (draws,), and its gradient, shape (draws, k)."""
    c = n * cpc
    saturation = np.exp(-b / c)
    a = p * n * rpr  # (draws, k)
    profit = (a * (1.0 - saturation)).sum(axis=-1) - b.sum()
    return profit, a * saturation / c - 1.0


def optimize_budget(
    baseline: Baseline,
    *,
    total_budget: float,
    bounds: dict[int, tuple[float, float]] | None = None,
    objective: Objective = "expected",
    quantile: float = 0.1,
    draws: int = 2000,
    seed: int = 0,
    economics: EconomicSettings | None = None,
) -> OptimizationResult:
    """Best split of ``total_budget`` across segments (see the module docstring).

    Args:
        baseline: per-segment inputs.
        total_budget: the budget to allocate (>= 0); the allocation spends all of it.
        bounds: optional (low, high) budget per segment id; others get (0, total_budget).
        objective: ``"expected"`` profit, or a profit ``"quantile"`` (risk-averse).
        quantile: the quantile for ``objective="quantile"``, in (0, 1).
        draws: draws of the response rates for intervals and the quantile objective.
        seed: seed of those draws.
        economics: overrides of the baseline's economic assumptions.

    Raises:
        InputError: unknown segment, infeasible bounds or out-of-range options.
    """
    check_options(total_budget, objective=objective, quantile=quantile, draws=draws)
    econ = baseline.economics_for(economics)
    if econ.cost_per_contact <= 0:
        raise InputError("the budget optimiser needs a cost per contact above 0")
    low, high = _bounds(baseline, total_budget, bounds)
    n, cpc, rpr = baseline.customers, econ.cost_per_contact, econ.revenue_per_response
    known = np.isfinite(baseline.response_rate)
    point = np.where(known, baseline.response_rate, 0.0)
    sampled = np.where(known, response_draws(baseline, draws=draws, seed=seed), 0.0)
    warnings = unknown_responses(baseline, known)
    scale = total_budget if total_budget > 0 else 1.0
    weights = quantile_weights(draws, quantile)

    def expected_loss(x: FloatArray) -> tuple[float, FloatArray]:
        profit, grad = _curve(point, x * scale, n, cpc, rpr)
        return -float(profit) / scale, -grad

    def quantile_loss(x: FloatArray) -> tuple[float, FloatArray]:
        profit, grad = _curve(sampled, x * scale, n, cpc, rpr)
        order = np.argsort(profit, kind="stable")
        return -float(weights @ profit[order]) / scale, -(weights @ grad[order])

    def solve(loss: Any, start: FloatArray) -> Any:
        return minimize(
            loss,
            start / scale,
            jac=True,
            method="SLSQP",
            bounds=list(zip(low / scale, high / scale, strict=True)),
            constraints=[
                {
                    "type": "eq",
                    "fun": lambda x: x.sum() - total_budget / scale,
                    "jac": lambda x: np.ones_like(x),
                }
            ],
            options={"ftol": 1e-12, "maxiter": 500},
        )

    def smooth_quantile(b: FloatArray, q: float = quantile) -> float:
        return harrell_davis(_curve(sampled, b, n, cpc, rpr)[0], q)

    room = high - low
    start = low + (total_budget - low.sum()) * (
        room / room.sum() if room.sum() > 0 else np.zeros_like(room)
    )
    solution = solve(expected_loss, start)
    if objective == "quantile":
        # from the expected-profit optimum and from the neutral start; keep whichever (the
        # expected optimum included) has the best quantile, so risk aversion never loses
        candidates = [
            solution,
            solve(quantile_loss, solution.x * scale),
            solve(quantile_loss, start),
        ]
        solution = max(candidates, key=lambda r: smooth_quantile(np.clip(r.x * scale, low, high)))
    best = np.clip(solution.x * scale, low, high)
    current = baseline.budget(econ)
    current = current * (total_budget / current.sum()) if current.sum() > 0 else current
    if objective == "quantile":
        value = smooth_quantile(best)
    else:
        value = -expected_loss(best / scale)[0] * scale

    def profits(b: FloatArray) -> tuple[float, Interval]:
        expected = float(_curve(point, b, n, cpc, rpr)[0])
        q = [smooth_quantile(b, p) for p in QUANTILES]
        return expected, Interval(q[0], q[1], q[2])

    expected, interval = profits(best)
    current_expected, current_interval = profits(current)
    responders = n * point * (1.0 - np.exp(-best / (n * cpc)))
    if expected < 0:
        warnings += (_negative_profit(total_budget, expected, point * n * rpr, n * cpc),)
    return OptimizationResult(
        segments=baseline.ids,
        allocation=tuple(float(v) for v in best),
        current=tuple(float(v) for v in current),
        bounds=tuple((float(lo), float(hi)) for lo, hi in zip(low, high, strict=True)),
        responders=tuple(float(v) for v in responders),
        revenue=tuple(float(v) for v in responders * rpr),
        total_budget=float(total_budget),
        objective=objective,
        quantile=quantile if objective == "quantile" else None,
        objective_value=float(value),
        expected_profit=expected,
        profit_interval=interval,
        current_expected_profit=current_expected,
        current_profit_interval=current_interval,
        converged=bool(solution.success),
        message=str(solution.message),
        iterations=int(solution.nit),
        economics=econ,
        warnings=warnings,
    )


def _negative_profit(total: float, expected: float, a: FloatArray, c: FloatArray) -> Guardrail:
    """The warning for an allocation whose expected profit is negative.

    Without bounds, profit is highest at b_s = c_s ln(a_s / c_s) where a_s > c_s (the
    optimum of the module docstring with lambda = 1), else 0; the warning quotes that total.
    """
    best = float(np.where(a > c, c * np.log(np.where(a > c, a / c, 1.0)), 0.0).sum())
    return Guardrail(
        "negative_profit",
        f"Spending all of {total:,.2f} gives an expected profit of {expected:,.2f}: the "
        f"segments' responses do not pay it back. Without bounds, profit is highest at a "
        f"budget of {best:,.2f}.",
        values={"total_budget": total, "expected_profit": expected, "best_budget": best},
    )
