"""Budget optimiser against the closed-form optimum b_s = c_s ln(a_s / (c_s lambda)).

Fixture: a_s = n_s p_s rpr = 440 / 330 / 275 and c_s = n_s cpc = 600 / 900 / 1,500.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.optimize import brentq

from sistack.domain.simulation import Baseline, EconomicSettings, optimize_budget
from sistack.errors import InputError

A = np.array([440.0, 330.0, 275.0])
C = np.array([600.0, 900.0, 1_500.0])


def closed_form(total, fixed):
    """Optimum with the budgets in ``fixed`` (position -> budget) pinned at their bound."""
    free = np.array([i not in fixed for i in range(3)])
    rest = total - sum(fixed.values())

    def spent(lam):
        return (C[free] * np.log(A[free] / (C[free] * lam))).sum() - rest

    lam = brentq(spent, 1e-9, (A / C)[free].min())
    out = C * np.log(A / (C * lam))
    for i, b in fixed.items():
        out[i] = b
    return out


def profit(b):
    return float((A * (1 - np.exp(-b / C))).sum() - b.sum())


@pytest.mark.parametrize(
    ("total", "bounds", "fixed"),
    [
        (3_000.0, None, {}),  # interior: b ~ 1,140 / 1,087 / 772
        (6_000.0, None, {}),
        (3_000.0, {1: (0.0, 500.0)}, {0: 500.0}),  # high bound binds
        (3_000.0, {3: (1_200.0, 3_000.0)}, {2: 1_200.0}),  # low bound binds
    ],
)
def test_expected_profit_optimum_matches_closed_form(baseline, total, bounds, fixed):
    result = optimize_budget(baseline, total_budget=total, bounds=bounds)
    expected = closed_form(total, fixed)
    assert result.converged
    assert_allclose(result.allocation, expected, rtol=1e-4, atol=0.05)
    assert sum(result.allocation) == pytest.approx(total)
    for (low, high), b in zip(result.bounds, result.allocation, strict=True):
        assert low - 1e-9 <= b <= high + 1e-9
    assert result.expected_profit == pytest.approx(profit(expected), abs=1e-3)
    assert result.objective_value == pytest.approx(result.expected_profit)


def test_comparison_with_current_allocation(baseline):
    result = optimize_budget(baseline, total_budget=6_000.0)
    # current budgets 600 / 900 / 1,500 scaled to 6,000: one contact -> 1 - 1/e of responders
    assert_allclose(result.current, [1_200, 1_800, 3_000])
    current = profit(np.array([1_200.0, 1_800.0, 3_000.0]))
    assert result.current_expected_profit == pytest.approx(current)
    assert result.improvement == pytest.approx(result.expected_profit - current)
    assert result.improvement > 0
    q = result.profit_interval
    assert q.p10 <= q.p50 <= q.p90
    assert result.to_dict()["segments"][0]["budget"] == pytest.approx(result.allocation[0])


def test_quantile_objective_is_risk_averse_and_deterministic(baseline):
    expected = optimize_budget(baseline, total_budget=3_000.0, seed=4)
    cautious = optimize_budget(
        baseline, total_budget=3_000.0, objective="quantile", quantile=0.1, seed=4
    )
    again = optimize_budget(
        baseline, total_budget=3_000.0, objective="quantile", quantile=0.1, seed=4
    )
    assert cautious.allocation == again.allocation
    assert sum(cautious.allocation) == pytest.approx(3_000.0)
    # it maximises the P10 of profit (same draws), so it beats the expected-profit optimum there
    assert cautious.objective_value == pytest.approx(cautious.profit_interval.p10, rel=1e-9)
    assert cautious.objective_value >= expected.profit_interval.p10 - 1e-6
    assert cautious.expected_profit <= expected.expected_profit + 1e-6


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"bounds": {9: (0.0, 10.0)}}, "unknown segment id 9; allowed ids: 1, 2, 3"),
        ({"bounds": {1: (10.0, 5.0)}}, "low <= high"),
        ({"bounds": {1: (2_000.0, 3_000.0), 2: (2_000.0, 3_000.0)}}, "lows add up to 4000"),
        ({"total_budget": -1.0}, "total_budget"),
        ({"objective": "median"}, "objective"),
        ({"quantile": 1.0}, "quantile"),
        ({"draws": 10}, "draws"),
    ],
)
def test_invalid_requests(baseline, kwargs, match):
    with pytest.raises(InputError, match=match):
        optimize_budget(baseline, **{"total_budget": 3_000.0, **kwargs})


def test_unknown_response_gets_the_lower_bound(unknown_baseline):
    result = optimize_budget(unknown_baseline, total_budget=3_000.0, bounds={3: (100.0, 3_000.0)})
    assert result.allocation[2] == pytest.approx(100.0)
    # a_s < c_s in every segment: any budget loses money (see the next test)
    assert [w.code for w in result.warnings] == ["unknown_response", "negative_profit"]


@pytest.mark.parametrize(
    ("rpr", "total", "best_budget"),
    [
        # a = n p rpr = 440 / 330 / 275 < c = 600 / 900 / 1,500: the best budget is 0
        (None, 3_000.0, 0.0),
        # rpr 30: a = 1,200 / 900 / 750; only segment 1 has a > c: b = 600 ln(1,200 / 600)
        (30.0, 3_000.0, 600 * np.log(2.0)),
    ],
)
def test_spending_at_a_loss_warns_with_the_best_budget(baseline, rpr, total, best_budget):
    economics = None if rpr is None else EconomicSettings(revenue_per_response=rpr)
    result = optimize_budget(baseline, total_budget=total, economics=economics)
    assert result.expected_profit < 0
    (warning,) = result.warnings
    assert warning.code == "negative_profit"
    assert warning.values["best_budget"] == pytest.approx(best_budget)
    assert warning.values["expected_profit"] == pytest.approx(result.expected_profit)


def test_no_warning_when_the_budget_pays_back(baseline):
    # rpr 30, budget 400: nearly all to segment 1, 1,200 (1 - e^(-400/600)) - 400 = 184 > 0
    result = optimize_budget(
        baseline, total_budget=400.0, economics=EconomicSettings(revenue_per_response=30.0)
    )
    assert result.expected_profit == pytest.approx(1_200 * (1 - np.exp(-400 / 600)) - 400, rel=1e-3)
    assert result.warnings == ()


def test_quantile_objective_prefers_the_well_measured_segment(documents):
    # segments 1 and 2 alike (200 customers, rate 0.2) except for how well the rate is known:
    # 10 labelled customers in segment 1, 300 in segment 2
    profiles, insights = copy.deepcopy(documents)
    profiles["profiles"][2]["customers"] = 200
    insights["segments"][1]["response"]["expected_rate"] = 0.2
    insights["segments"][0]["response"]["observed"] = {"successes": 2, "trials": 10}
    insights["segments"][1]["response"]["observed"] = {"successes": 60, "trials": 300}
    b = Baseline.from_documents(profiles, insights)
    expected = optimize_budget(b, total_budget=3_000.0)
    cautious = optimize_budget(b, total_budget=3_000.0, objective="quantile", quantile=0.1)
    assert expected.allocation[0] == pytest.approx(expected.allocation[1], rel=1e-6)
    assert cautious.allocation[0] < 0.9 * cautious.allocation[1]
    assert cautious.objective_value > expected.profit_interval.p10
