"""Tornado: one-at-a-time +/-20% swings of every numeric assumption, largest impact first."""

from __future__ import annotations

import pytest

from sistack.domain.simulation import Scenario, tornado


def scenario(lever, params):
    return Scenario.model_validate({"levers": [{"lever": lever, "params": params}]})


def test_budget_shift_tornado(baseline):
    # profit impact = m x shift x (R1 x uplift - R3 x loss) = 0.35 x 0.5 x (100,000 u - 40,000 l)
    bars = tornado(
        baseline, scenario("budget_shift", {"sources": [3], "targets": [1], "shift": 0.5})
    )
    expected = [
        # parameter, low value, high value, profit low, profit high
        ("0.budget_shift.uplift", {1: 0.16}, {1: 0.24}, 0.175 * 14_000, 0.175 * 22_000),
        ("0.budget_shift.shift", 0.4, 0.6, 0.35 * 0.4 * 18_000, 0.35 * 0.6 * 18_000),
        ("economics.margin_rate", 0.28, 0.42, 0.28 * 9_000, 0.42 * 9_000),
        ("0.budget_shift.loss_rate", {3: 0.04}, {3: 0.06}, 0.175 * 18_400, 0.175 * 17_600),
    ]
    for bar, (name, low, high, p_low, p_high) in zip(bars, expected, strict=False):
        assert bar.parameter == name
        assert bar.low_value == pytest.approx(low) and bar.high_value == pytest.approx(high)
        assert (bar.profit_low, bar.profit_high) == (pytest.approx(p_low), pytest.approx(p_high))
        assert bar.range == pytest.approx(abs(p_high - p_low))
        assert bar.profit_base == pytest.approx(3_150.0)
    # the cost moves between segments: contact cost, contacts, value of a response, discount
    # depth and cost to serve do not change the impact
    assert [b.range for b in bars[4:]] == pytest.approx([0, 0, 0, 0, 0])
    assert {b.parameter for b in bars[4:]} == {
        "economics.contacts_per_customer",
        "economics.cost_per_contact",
        "economics.cost_to_serve",
        "economics.current_discount_depth",
        "economics.revenue_per_response",
    }
    assert bars[0].to_dict()["low_value"] == {"1": pytest.approx(0.16)}


def test_channel_shift_tornado_swings_the_cost_to_serve(baseline):
    # half of 2,800 store purchases go online: impact = 1,400 x (store - web cost to serve)
    # = 1,400 x (4 - 1.5) = 3,500; costs x 0.8: 1,400 x 2 = 2,800; x 1.2: 1,400 x 3 = 4,200;
    # share 0.4 / 0.6: 1,120 x 2.5 = 2,800 / 1,680 x 2.5 = 4,200
    bars = tornado(
        baseline,
        scenario("channel_shift", {"from_channel": "store", "to_channel": "web", "share": 0.5}),
    )
    top = {b.parameter: b for b in bars[:2]}
    assert list(top) == ["0.channel_shift.share", "economics.cost_to_serve"]
    costs = top["economics.cost_to_serve"]
    assert costs.base_value == {"catalog": 6.0, "store": 4.0, "web": 1.5}
    assert costs.low_value == pytest.approx({"catalog": 4.8, "store": 3.2, "web": 1.2})
    assert costs.high_value == pytest.approx({"catalog": 7.2, "store": 4.8, "web": 1.8})
    for bar in top.values():
        assert (bar.profit_low, bar.profit_base, bar.profit_high) == (
            pytest.approx(2_800.0),
            pytest.approx(3_500.0),
            pytest.approx(4_200.0),
        )
    assert all(b.range == pytest.approx(0.0) for b in bars[2:])  # no margin, no contacts


def test_swings_are_clipped_to_the_allowed_range(baseline):
    bars = tornado(
        baseline, scenario("budget_shift", {"sources": [3], "targets": [1], "shift": 0.9})
    )
    shift = next(b for b in bars if b.parameter == "0.budget_shift.shift")
    assert (shift.low_value, shift.high_value) == (pytest.approx(0.72), 1.0)


def test_a_swing_the_scenario_cannot_take_keeps_the_base_value(baseline):
    # depth 0.15 - 0.15 = 0 is allowed, 0.15 - 0.18 is not
    bars = tornado(baseline, scenario("discount_depth", {"change": {2: -0.15}}))
    change = next(b for b in bars if b.parameter == "0.discount_depth.change")
    assert change.low_value == {2: pytest.approx(-0.12)}
    assert change.high_value == {2: -0.15}
    assert change.profit_high == change.profit_base
    assert change.profit_low != change.profit_base


def test_swing_must_be_a_fraction(baseline):
    with pytest.raises(ValueError, match="swing"):
        tornado(baseline, scenario("campaign", {}), swing=1.5)
