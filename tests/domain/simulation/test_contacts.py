"""Campaign contact set: which segments to contact, against sets worked out by hand.

Fixture (see conftest): customers 200 / 300 / 500, response rates 0.2 / 0.1 / 0.05, cost per
contact 3. Contacting segment s is worth v_s = n_s (p_s rpr - 3) and costs c_s = 3 n_s =
600 / 900 / 1,500. With a revenue per response of 40: v = 200 x 5 = 1,000, 300 x 1 = 300,
500 x (-1) = -500.
"""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
from numpy.testing import assert_allclose

from sistack.domain.simulation import (
    Baseline,
    EconomicSettings,
    optimize_contacts,
    simulate,
    validate_scenario,
)
from sistack.domain.simulation.subsets import best_knapsack
from sistack.errors import InputError

RPR40 = EconomicSettings(revenue_per_response=40.0)


@pytest.mark.parametrize(
    ("rpr", "budget", "contacted", "profit"),
    [
        # the classic data: 0.2 x 11 = 2.2 < 3 per contact, no segment pays back
        (None, None, [], 0.0),
        # rpr 20: v = 200 x 1, 300 x (-1), 500 x (-2): only segment 1
        (20.0, None, [1], 200.0),
        # rpr 40: segments 1 and 2 (1,000 + 300) cost 600 + 900
        (40.0, None, [1, 2], 1_300.0),
        (40.0, 1_500.0, [1, 2], 1_300.0),  # exactly affordable
        (40.0, 1_499.0, [1], 1_000.0),  # one of them: the better one
        (40.0, 800.0, [1], 1_000.0),
        (40.0, 599.0, [], 0.0),  # nothing fits
    ],
)
def test_expected_profit_contact_set(baseline, rpr, budget, contacted, profit):
    economics = None if rpr is None else EconomicSettings(revenue_per_response=rpr)
    plan = optimize_contacts(baseline, total_budget=budget, economics=economics)
    assert plan.chosen == contacted
    assert plan.method == "exact"
    assert plan.expected_profit == pytest.approx(profit)
    assert plan.objective_value == pytest.approx(profit)
    assert plan.spent == pytest.approx(sum(600.0 if s == 1 else 900.0 for s in contacted))
    assert_allclose(plan.cost, [600, 900, 1_500])


def test_rows_comparison_and_json(baseline):
    plan = optimize_contacts(baseline, economics=RPR40)
    # if contacted: responders 40 / 30 / 25, revenue x 40, profit as in the module docstring
    assert_allclose(plan.responders, [40, 30, 25])
    assert_allclose(plan.revenue, [1_600, 1_200, 1_000])
    assert_allclose(plan.profit, [1_000, 300, -500])
    # contacting everyone, the campaign lever's default: 1,000 + 300 - 500
    assert plan.all_expected_profit == pytest.approx(800.0)
    assert plan.all_cost == pytest.approx(3_000.0)
    q = plan.profit_interval
    assert q.p10 <= q.p50 <= q.p90
    out = plan.to_dict()
    assert out["mode"] == "campaign" and out["contacted"] == [1, 2]
    # the chosen set's totals: 200 + 300 customers, 40 + 30 responders, 1,600 + 1,200 revenue
    assert out["customers_contacted"] == pytest.approx(500.0)
    assert out["expected_responders"] == pytest.approx(70.0)
    assert out["expected_revenue"] == pytest.approx(2_800.0)
    assert [row["contact"] for row in out["segments"]] == [True, True, False]
    assert out["improvement"] == pytest.approx(500.0)
    assert out["contact_all"]["expected_profit"] == pytest.approx(800.0)


def test_the_plan_is_a_scenario_that_simulates_to_the_same_profit(baseline):
    plan = optimize_contacts(baseline, total_budget=1_499.0, economics=RPR40)
    result = simulate(baseline, validate_scenario(plan.scenario, baseline))
    details = result.levers[0].details
    assert result.levers[0].params["segments"] == [1]
    assert details["profit"] == pytest.approx(plan.expected_profit)
    assert details["cost"] == pytest.approx(plan.spent)
    assert optimize_contacts(baseline).scenario is None  # nothing to contact


@pytest.mark.parametrize(
    ("bounds", "contacted"),
    [
        ({3: (1.0, 10_000.0)}, [1, 2, 3]),  # low > 0: segment 3 must be contacted
        ({1: (0.0, 599.0)}, [2]),  # high below its cost of 600: segment 1 cannot be
        ({2: (0.0, 900.0)}, [1, 2]),  # its cost is within the bounds: free choice
    ],
)
def test_bounds_force_or_rule_out_a_contact(baseline, bounds, contacted):
    plan = optimize_contacts(baseline, bounds=bounds, economics=RPR40)
    assert plan.chosen == contacted


def test_always_and_never(baseline):
    # rpr 40: v = 1,000 / 300 / -500; alone the optimiser contacts 1 and 2.
    plan = optimize_contacts(baseline, always=[3], never=[1], economics=RPR40)
    assert plan.chosen == [2, 3]
    assert plan.expected_profit == pytest.approx(300.0 - 500.0)
    assert [r["rule"] for r in plan.to_dict()["segments"]] == ["never", None, "always"]
    # within the cap: segment 3 (1,500) always leaves no room for segment 2 (900) under 2,000
    capped = optimize_contacts(baseline, total_budget=2_000.0, always=[3], economics=RPR40)
    assert capped.chosen == [3]
    with pytest.raises(InputError, match="no segment 9"):
        optimize_contacts(baseline, never=[9])
    with pytest.raises(InputError, match="in both always and never"):
        optimize_contacts(baseline, always=[2], never=[2])
    with pytest.raises(InputError, match=r"always: contacting segment 3 costs 1,500.00, more"):
        optimize_contacts(baseline, total_budget=1_000.0, always=[3])


def test_no_budget_rules_a_contact_out_even_when_contacts_are_free(baseline):
    # At 0 per contact every segment pays (v = n p 40 > 0) and costs nothing: all three,
    # except the one given no campaign budget.
    free = EconomicSettings(revenue_per_response=40.0, cost_per_contact=0.0)
    assert optimize_contacts(baseline, economics=free).chosen == [1, 2, 3]
    plan = optimize_contacts(baseline, bounds={1: (0.0, 0.0)}, economics=free)
    assert plan.chosen == [2, 3]
    assert optimize_contacts(baseline, never=[1], economics=free).chosen == [2, 3]
    # ... while a positive lower bound still forces one in at no cost.
    forced = optimize_contacts(baseline, bounds={3: (1e-12, 1e12)}, economics=free)
    assert 3 in forced.chosen


def test_a_forced_segment_just_over_the_cap_leaves_no_room_for_others(baseline):
    # Segment 3 (cost 1,500) is forced and the cap sits within the tolerance below its cost:
    # allowed, but nothing else may be added (segment 2 alone would add 900 more).
    for objective in ("expected", "quantile"):
        plan = optimize_contacts(
            baseline,
            total_budget=1_500.0 * (1 - 5e-10),
            bounds={3: (1_500.0, 1_500.0)},
            economics=RPR40,
            objective=objective,
        )
        assert plan.chosen == [3]
        assert plan.spent == pytest.approx(1_500.0)


def test_knapsack_with_no_room_contacts_none():
    chosen = best_knapsack(np.array([5.0, 3.0]), np.array([1.0, 2.0]), cap=-1.0)
    assert not chosen.any()


def test_forced_loss_warns(baseline):
    plan = optimize_contacts(baseline, bounds={3: (1.0, 1_500.0)})
    # rpr 11: every segment loses; segment 3 is forced: 500 x (0.55 - 3) = -1,225
    assert plan.chosen == [3]
    assert plan.expected_profit == pytest.approx(-1_225.0)
    assert [w.code for w in plan.warnings] == ["negative_profit"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"bounds": {9: (0.0, 10.0)}}, "unknown segment id 9; allowed ids: 1, 2, 3"),
        # low above the cost of 600 and above 0: neither 0 nor 600 fits
        ({"bounds": {1: (700.0, 800.0)}}, "segment 1 is 0 or the cost of contacting it"),
        ({"bounds": {3: (1.0, 2_000.0)}, "total_budget": 1_000.0}, "force into the campaign"),
        ({"objective": "median"}, "objective"),
        ({"draws": 50}, "draws"),
    ],
)
def test_invalid_requests(baseline, kwargs, match):
    with pytest.raises(InputError, match=match):
        optimize_contacts(baseline, **kwargs)


def well_and_poorly_measured(documents):
    """Segments 1 and 2 alike (200 customers, rate 0.2) but for the labels behind the rate:
    10 in segment 1 (Beta(3, 9)), 300 in segment 2 (Beta(61, 241))."""
    profiles, insights = copy.deepcopy(documents)
    profiles["profiles"][2]["customers"] = 200
    insights["segments"][1]["response"]["expected_rate"] = 0.2
    insights["segments"][0]["response"]["observed"] = {"successes": 2, "trials": 10}
    insights["segments"][1]["response"]["observed"] = {"successes": 60, "trials": 300}
    return Baseline.from_documents(profiles, insights)


def test_quantile_objective_leaves_out_the_poorly_measured_segment(documents):
    b = well_and_poorly_measured(documents)
    economics = EconomicSettings(revenue_per_response=20.0)
    # expected: both are worth 200 x (0.2 x 20 - 3) = 200
    expected = optimize_contacts(b, economics=economics)
    assert expected.chosen == [1, 2]
    assert expected.expected_profit == pytest.approx(400.0)
    # P10: segment 1's rate spreads widely (sd 0.12, a loss of ~200 at its P10), segment 2's
    # narrowly (sd 0.023, P10 ~0.17: a gain of ~85)
    cautious = optimize_contacts(b, economics=economics, objective="quantile", quantile=0.1)
    assert cautious.chosen == [2]
    assert cautious.method == "enumeration"
    assert cautious.objective_value == pytest.approx(cautious.profit_interval.p10)
    assert cautious.objective_value > expected.profit_interval.p10
    assert 50 < cautious.objective_value < 120
    again = optimize_contacts(b, economics=economics, objective="quantile", quantile=0.1)
    assert again == cautious


def test_quantile_local_search_when_enumeration_is_too_costly(documents, monkeypatch):
    from sistack.domain.simulation import subsets

    b = well_and_poorly_measured(documents)
    economics = EconomicSettings(revenue_per_response=20.0)
    monkeypatch.setattr(subsets, "ENUMERATION_WORK", 0)
    plan = optimize_contacts(b, economics=economics, objective="quantile", quantile=0.1)
    assert plan.method == "local_search"
    assert plan.chosen == [2]


def test_knapsack_beats_greedy_by_ratio():
    # ratios 6, 5, 4: greedy takes items 0 and 1 (160); the best is items 1 and 2 (220)
    chosen = best_knapsack(np.array([60.0, 100.0, 120.0]), np.array([10.0, 20.0, 30.0]), 50.0)
    assert chosen.tolist() == [False, True, True]


@pytest.mark.parametrize("seed", range(5))
def test_knapsack_is_exact_against_every_subset(seed):
    rng = np.random.default_rng(seed)
    values, costs = rng.uniform(1, 100, 11), rng.uniform(1, 100, 11)
    cap = float(costs.sum() / 3)
    chosen = best_knapsack(values, costs, cap)
    best = max(
        (
            values[list(s)].sum()
            for r in range(12)
            for s in itertools.combinations(range(11), r)
            if costs[list(s)].sum() <= cap
        ),
    )
    assert costs[chosen].sum() <= cap
    assert values[chosen].sum() == pytest.approx(best)
