"""Every lever's arithmetic against numbers worked out by hand on the three-segment fixture.

Fixture (see conftest): revenue R = 100,000 / 60,000 / 40,000; response rates 0.2 / 0.1 / 0.05;
customers 200 / 300 / 500; budgets 600 / 900 / 1,500; margin rate 0.35; cost per contact 3;
revenue per response 11; discount depth 0.15; deal shares 0.1 / 0.5 / 0.2 (population 0.25).
"""

from __future__ import annotations

import copy

import pytest
from numpy.testing import assert_allclose

from sistack.domain.simulation import Baseline, Scenario, simulate


def run(baseline, lever, params, **extra):
    scenario = Scenario.model_validate({"levers": [{"lever": lever, "params": params}], **extra})
    return simulate(baseline, scenario)


def deltas(result, metric):
    return [getattr(s.delta, metric) for s in result.segments]


@pytest.mark.parametrize(
    ("params", "revenue", "cost"),
    [
        # reference, one source one target: loss = R3 x loss x shift = 40,000 x 0.05 x 0.5;
        # gain = R1 x uplift x shift = 100,000 x 0.2 x 0.5; budget moved = 1,500 x 0.5
        ({"sources": [3], "targets": [1], "shift": 0.5}, [10_000, 0, -1_000], [750, 0, -750]),
        # explicit rates
        (
            {
                "sources": [1],
                "targets": [3],
                "shift": 0.25,
                "uplift": {3: 0.3},
                "loss_rate": {1: 0.01},
            },
            [-100_000 * 0.01 * 0.25, 0, 40_000 * 0.3 * 0.25],
            [-150, 0, 150],
        ),
        # two targets: moved budget (600) and gain split equally:
        # gain_1 = 100,000 x 0.1 x 0.4 / 2, gain_2 = 60,000 x 0.05 x 0.4 / 2
        (
            {
                "sources": [3],
                "targets": [1, 2],
                "shift": 0.4,
                "uplift": {1: 0.1, 2: 0.05},
                "loss_rate": {3: 0.02},
            },
            [2_000, 600, -320],
            [300, 300, -600],
        ),
        # two sources, one target: each source loses at its own rate, budgets 600 + 900 move
        (
            {"sources": [1, 2], "targets": [3], "shift": 0.1},
            [-100_000 * 0.2 * 0.1, -60_000 * 0.1 * 0.1, 40_000 * 0.05 * 0.1],
            [-60, -90, 150],
        ),
    ],
)
def test_budget_shift(baseline, params, revenue, cost):
    result = run(baseline, "budget_shift", params)
    assert_allclose(deltas(result, "revenue"), revenue)
    assert_allclose(deltas(result, "margin"), [0.35 * r for r in revenue])
    assert_allclose(deltas(result, "cost"), cost, atol=1e-9)
    assert result.overall.delta.cost == pytest.approx(0.0, abs=1e-9)  # budget only moves
    assert result.levers[0].details["budget_moved"] == pytest.approx(sum(c for c in cost if c > 0))


def test_budget_shift_reference_overall(baseline):
    result = run(baseline, "budget_shift", {"sources": [3], "targets": [1], "shift": 0.5})
    # profit delta = 0.35 x (10,000 - 1,000), the cost moves but does not change in total
    assert result.overall.delta.profit == pytest.approx(3_150.0)
    assert result.levers[0].params["uplift"] == {1: 0.2}
    assert result.levers[0].params["loss_rate"] == {3: 0.05}
    assert result.levers[0].filled == {
        "uplift.1": "response rate of segment 1",
        "loss_rate.3": "response rate of segment 3",
    }


@pytest.mark.parametrize(
    ("params", "segments", "responders", "revenue", "cost"),
    [
        # all: 200 x 0.2 + 300 x 0.1 + 500 x 0.05 = 95 responders x 11; 1,000 contacts x 3
        ({"which": "all"}, [1, 2, 3], 95.0, 1_045.0, 3_000.0),
        # top 2 by response rate: segments 1 and 2
        ({"which": "top_n", "n": 2}, [1, 2], 70.0, 770.0, 1_500.0),
        # a list with its own economics
        (
            {
                "which": "list",
                "segments": [3],
                "cost_per_contact": 1.0,
                "revenue_per_response": 50.0,
            },
            [3],
            25.0,
            1_250.0,
            500.0,
        ),
    ],
)
def test_campaign(baseline, params, segments, responders, revenue, cost):
    result = run(baseline, "campaign", params)
    details = result.levers[0].details
    assert result.levers[0].params["segments"] == segments
    assert details["responders"] == pytest.approx(responders)
    assert details["revenue"] == pytest.approx(revenue)
    assert details["cost"] == pytest.approx(cost)
    assert details["profit"] == pytest.approx(revenue - cost)
    assert details["roi"] == pytest.approx((revenue - cost) / cost)
    # a response is a contribution: margin delta = revenue delta
    assert result.overall.delta.margin == pytest.approx(revenue)
    assert result.overall.delta.profit == pytest.approx(revenue - cost)


def test_campaign_top_n_ties_by_segment_id(documents):
    profiles, insights = copy.deepcopy(documents)
    for s in insights["segments"]:
        s["response"]["expected_rate"] = 0.1
    b = Baseline.from_documents(profiles, insights)
    result = run(b, "campaign", {"which": "top_n", "n": 2})
    assert result.levers[0].params["segments"] == [1, 2]


def test_discount_depth(baseline):
    result = run(baseline, "discount_depth", {"change": {2: 0.05, 1: -0.1}})
    # segment 2: e = 2 x clip(0.5 / 0.25) = 4; D = 30,000; v = 0.2;
    #   new = 30,000 / 0.85 x 1.2 x 0.8; revenue delta = 30,000 x 0.11 / 0.85;
    #   margin delta = revenue delta - 30,000 x 0.65 x 0.2
    # segment 1: e = 2 x 0.4 = 0.8; D = 10,000; v = -0.08;
    #   new = 10,000 / 0.85 x 0.92 x 0.95; revenue delta = 10,000 x 0.024 / 0.85;
    #   margin delta = revenue delta + 6,500 x 0.08
    rev = [10_000 * 0.024 / 0.85, 30_000 * 0.11 / 0.85, 0.0]
    assert_allclose(deltas(result, "revenue"), rev, atol=1e-9)
    assert_allclose(deltas(result, "margin"), [rev[0] + 520, rev[1] - 3_900, 0.0], atol=1e-9)
    assert_allclose(deltas(result, "cost"), [0, 0, 0])
    details = result.levers[0].details
    assert_allclose(list(details["elasticity"].values()), [0.8, 4.0, 1.6])
    # deal-driven volume: segment 1 -8%, segment 2 +20%, segment 3 unchanged (no change given)
    assert_allclose(list(details["volume_change"].values()), [-0.08, 0.2, 0.0], atol=1e-12)
    assert list(details["volume_change"]) == [1, 2, 3]


@pytest.mark.parametrize(
    ("population", "elasticity_2"),
    [(0.1, 2 * 4.0), (0.25, 2 * 2.0), (4.0, 2 * 0.25)],  # ratio 5 -> 4, 2, 0.125 -> 0.25
)
def test_discount_elasticity_ratio_is_clipped(documents, population, elasticity_2):
    profiles, insights = copy.deepcopy(documents)
    insights["overall"]["discount"]["mean_deal_share"] = population
    b = Baseline.from_documents(profiles, insights)
    result = run(b, "discount_depth", {"change": {2: -0.1}})
    assert result.levers[0].details["elasticity"][2] == pytest.approx(elasticity_2)
    v = -0.1 * elasticity_2
    assert result.segments[1].delta.revenue == pytest.approx(
        30_000 / 0.85 * (1 + v) * 0.95 - 30_000
    )


@pytest.mark.parametrize(
    ("params", "moved", "serving"),
    [
        # store -> web, half: moved 500 / 300 / 600 purchases x (1.5 - 4)
        (
            {"from_channel": "store", "to_channel": "web", "share": 0.5},
            [500, 300, 600],
            [-1_250, -750, -1_500],
        ),
        # own cost to serve (web 2), two segments only: x (2 - 4)
        (
            {
                "segments": [1, 3],
                "from_channel": "store",
                "to_channel": "web",
                "share": 0.5,
                "cost_to_serve": {"web": 2.0},
            },
            [500, 0, 600],
            [-1_000, 0, -1_200],
        ),
        # catalog -> store, all of it: 600 / 100 / 0 x (4 - 6)
        (
            {"from_channel": "catalog", "to_channel": "store", "share": 1.0},
            [600, 100, 0],
            [-1_200, -200, 0],
        ),
    ],
)
def test_channel_shift(baseline, params, moved, serving):
    result = run(baseline, "channel_shift", params)
    assert_allclose(list(result.levers[0].details["purchases_moved"].values()), moved)
    # the cost to serve changes, the marketing cost (600 / 900 / 1,500) does not
    assert_allclose(deltas(result, "serving_cost_change"), serving)
    assert_allclose(deltas(result, "cost"), [0, 0, 0])
    assert_allclose([s.scenario.cost for s in result.segments], [600, 900, 1_500])
    assert_allclose(deltas(result, "revenue"), [0, 0, 0])
    assert_allclose(deltas(result, "profit"), [-c for c in serving])
    # ROI stays the return on marketing: (margin - cost - serving change) / marketing cost
    assert_allclose(
        [s.scenario.roi for s in result.segments],
        [
            (m - b - c) / b
            for m, b, c in zip([35_000, 21_000, 14_000], [600, 900, 1_500], serving, strict=True)
        ],
    )
    assert result.levers[0].delta["serving_cost_change"] == pytest.approx(sum(serving))
    assert result.levers[0].delta["profit"] == pytest.approx(-sum(serving))


def test_channel_shift_larger_than_the_budget_keeps_cost_and_roi_meaningful(baseline):
    # half of every store purchase goes online: 2,800 x 0.5 x (1.5 - 4) = -3,500 of cost to
    # serve against a marketing cost of 3,000 (before the fix: cost -500, ROI undefined)
    result = run(
        baseline, "channel_shift", {"from_channel": "store", "to_channel": "web", "share": 0.5}
    )
    overall = result.overall
    assert overall.scenario.cost == pytest.approx(3_000.0)
    assert overall.scenario.serving_cost_change == pytest.approx(-3_500.0)
    assert overall.scenario.profit == pytest.approx(70_000 - 3_000 + 3_500)
    assert overall.scenario.roi == pytest.approx(70_500 / 3_000)
    assert overall.baseline.serving_cost_change == 0.0
    assert overall.delta.roi == pytest.approx(3_500 / 3_000)


@pytest.mark.parametrize(
    ("params", "revenue"),
    [
        # change x value_12m x horizon / 12
        ({"change": {1: 0.1, 3: -0.05}, "horizon_months": 6}, [4_000, 0, -500]),
        ({"change": {2: 0.02}}, [0, 1_000, 0]),
        ({"change": {2: 0.02}, "horizon_months": 24}, [0, 2_000, 0]),
    ],
)
def test_retention(baseline, params, revenue):
    result = run(baseline, "retention", params)
    assert_allclose(deltas(result, "revenue"), revenue)
    assert_allclose(deltas(result, "margin"), [0.35 * r for r in revenue])


@pytest.mark.parametrize(
    ("params", "revenue", "margin"),
    [
        # +10%, e = -1.2: volume 0.88; revenue 100,000 x (1.1 x 0.88 - 1);
        # margin = revenue delta - 65,000 x (-0.12)
        ({"change": {1: 0.1}}, -3_200.0, 4_600.0),
        # +10%, e = -0.5: volume 0.95; 100,000 x 0.045; + 65,000 x 0.05
        ({"change": {1: 0.1}, "elasticity": {1: -0.5}}, 4_500.0, 7_750.0),
        # -20%, e = -2: volume 1.4; 100,000 x (0.8 x 1.4 - 1); - 65,000 x 0.4
        ({"change": {1: -0.2}, "elasticity": {1: -2.0}}, 12_000.0, -14_000.0),
    ],
)
def test_price(baseline, params, revenue, margin):
    result = run(baseline, "price", params)
    assert result.segments[0].delta.revenue == pytest.approx(revenue)
    assert result.segments[0].delta.margin == pytest.approx(margin)
    assert_allclose([s.delta.revenue for s in result.segments[1:]], [0, 0])


def test_deltas_of_levers_add_up(baseline):
    levers = [
        {"lever": "budget_shift", "params": {"sources": [3], "targets": [1], "shift": 0.5}},
        {"lever": "price", "params": {"change": {1: 0.1}}},
        {
            "lever": "channel_shift",
            "params": {"from_channel": "store", "to_channel": "web", "share": 0.5},
        },
    ]
    together = simulate(baseline, Scenario.model_validate({"levers": levers}))
    alone = [simulate(baseline, Scenario.model_validate({"levers": [lv]})) for lv in levers]
    for metric in ("revenue", "margin", "cost", "profit"):
        assert getattr(together.overall.delta, metric) == pytest.approx(
            sum(getattr(r.overall.delta, metric) for r in alone)
        )
    # 3,150 (budget shift) + 4,600 (price) + 3,500 (channel shift)
    assert together.overall.delta.profit == pytest.approx(11_250.0)
