"""Scenario validation, guardrails, the result's shape, the lever registry and cost."""

from __future__ import annotations

import copy
import json
import math
from typing import ClassVar

import numpy as np
import pytest
from numpy.testing import assert_allclose
from pydantic import Field, ValidationError

from sistack.domain.simulation import (
    Baseline,
    Lever,
    LeverContext,
    LeverEffect,
    Scenario,
    lever_catalogue,
    registry,
    simulate,
    validate_scenario,
)
from sistack.domain.simulation.levers import BudgetShift


def one(lever, params, **extra):
    return {"levers": [{"lever": lever, "params": params}], **extra}


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "location", "words"),
    [
        (
            one("budget_shift", {"sources": [7], "targets": [1]}),
            "levers.0.params.sources.0",
            ["unknown segment id 7", "allowed ids: 1, 2, 3"],
        ),
        (
            one("budget_shift", {"sources": [3], "targets": [1], "uplift": {9: 0.1}}),
            "levers.0.params.uplift.9.[key]",
            ["unknown segment id 9", "allowed ids: 1, 2, 3"],
        ),
        (
            one("campaign", {"which": "list", "segments": [0]}),
            "levers.0.params.segments.0",
            ["unknown segment id 0", "allowed ids: 1, 2, 3"],
        ),
        (
            one("budget_shift", {"sources": [3], "targets": [1], "shift": 1.5}),
            "levers.0.params.shift",
            ["between 0.0 and 1.0", "got 1.5"],
        ),
        (
            one("budget_shift", {"sources": [3], "targets": [1], "uplift": {1: -0.1}}),
            "levers.0.params.uplift.1",
            ["between 0.0 and 1.0", "got -0.1"],
        ),
        (
            one("price", {"change": {1: 0.1}, "elasticity": {1: 0.5}}),
            "levers.0.params.elasticity.1",
            ["between -5.0 and 0.0"],
        ),
        (
            one("retention", {"change": {1: 0.1}, "horizon_months": 61}),
            "levers.0.params.horizon_months",
            ["between 1 and 60"],
        ),
        (
            one("discount_depth", {"change": {1: 0.6}}),
            "levers.0.params.change.1",
            ["between -0.5 and 0.5"],
        ),
        # a new discount depth below zero (current depth 0.15)
        (
            one("discount_depth", {"change": {1: -0.2}}),
            "levers.0.params",
            ["discount depth", "between -0.15 and 0.5"],
        ),
        (
            one("channel_shift", {"from_channel": "fax", "to_channel": "web"}),
            "levers.0.params.from_channel",
            ["unknown channel 'fax'", "catalog, store, web"],
        ),
        (one("budget_shift", {"sources": [1], "targets": [1]}), "levers.0.params", ["disjoint"]),
        (one("campaign", {"which": "top_n", "n": 4}), "levers.0.params", ["between 1 and 3"]),
        (
            one("teleport", {}),
            "levers.0.lever",
            ["unknown lever 'teleport'", "budget_shift, campaign, channel_shift"],
        ),
        ({"levers": []}, "levers", ["at least 1"]),
        (
            one("campaign", {}, economics={"margin_rate": 1.5}),
            "economics.margin_rate",
            ["between 0.0 and 1.0", "got 1.5"],
        ),
        (
            one("campaign", {}, economics={"cost_to_serve": {"web": -1}}),
            "economics.cost_to_serve.web",
            ["between 0.0 and 1000000.0", "got -1"],
        ),
        (
            one("campaign", {}, monte_carlo={"draws": 50}),
            "monte_carlo.draws",
            ["between 100 and 20000", "got 50"],
        ),
        (
            one("campaign", {}, monte_carlo={"draws": 20_001}),
            "monte_carlo.draws",
            ["between 100 and 20000", "got 20001"],
        ),
        (
            one("retention", {"change": {0: 0.1}}),
            "levers.0.params.change.0.[key]",
            ["unknown segment id 0", "allowed ids: 1, 2, 3"],
        ),
    ],
)
def test_validation_names_field_and_allowed_values(baseline, data, location, words):
    with pytest.raises(ValidationError) as info:
        validate_scenario(data, baseline)
    message = str(info.value)
    assert f"\n{location}\n" in message, message
    for word in words:
        assert word in message


def test_segment_zero_without_a_baseline_names_the_id_range():
    with pytest.raises(ValidationError, match=r"segment ids are 1, 2, \.\.\., k .*got 0"):
        Scenario.model_validate(one("campaign", {"which": "list", "segments": [0]}))


def test_segment_ids_keep_their_lower_bound_in_the_catalogue():
    campaign = next(e for e in lever_catalogue() if e["name"] == "campaign")
    segments = campaign["parameters"]["properties"]["segments"]["anyOf"][0]["items"]
    assert segments == {"type": "integer", "minimum": 1}


def test_simulate_checks_segment_ids_of_an_unbound_scenario(baseline):
    scenario = Scenario.model_validate(one("retention", {"change": {8: 0.1}}))  # no baseline yet
    with pytest.raises(ValidationError, match="allowed ids: 1, 2, 3"):
        simulate(baseline, scenario)


# --- guardrails ---------------------------------------------------------------------------


def codes(result):
    return {(w.code, w.segment, w.lever) for w in result.warnings}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # deeper discount in segment 2 (deal share 0.5 >= 0.3) but not in segment 3 (0.2 < 0.3
        # and < 1.25 x 0.25) nor a shallower one in segment 2
        (
            one("discount_depth", {"change": {2: 0.05, 3: 0.05}}),
            {("discount_dependent", 2, "discount_depth")},
        ),
        (one("discount_depth", {"change": {2: -0.05}}), set()),
        (
            one("budget_shift", {"sources": [2, 3], "targets": [1], "shift": 1.0}),
            {("budget_emptied", 2, "budget_shift"), ("budget_emptied", 3, "budget_shift")},
        ),
        (one("budget_shift", {"sources": [3], "targets": [1], "shift": 0.99}), set()),
        # highest response rate seen is 0.2
        (
            one("budget_shift", {"sources": [3], "targets": [1], "uplift": {1: 0.25}}),
            {("outside_data_range", 1, "budget_shift")},
        ),
        (one("budget_shift", {"sources": [3], "targets": [1], "uplift": {1: 0.2}}), set()),
        (
            one("price", {"change": {1: 0.5}, "elasticity": {1: -3.0}}),
            {("volume_floor", 1, "price")},
        ),
    ],
)
def test_guardrails(baseline, data, expected):
    assert codes(simulate(baseline, validate_scenario(data, baseline))) == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (one("campaign", {"which": "all"}), {("unknown_response", 3, "campaign")}),
        (one("campaign", {"which": "list", "segments": [1]}), set()),
        (
            one("budget_shift", {"sources": [3], "targets": [1]}),
            {("unknown_response", 3, "budget_shift")},
        ),
        (one("budget_shift", {"sources": [3], "targets": [1], "loss_rate": {3: 0.0}}), set()),
    ],
)
def test_unknown_response_is_flagged_and_counted_as_zero(unknown_baseline, data, expected):
    result = simulate(unknown_baseline, validate_scenario(data, unknown_baseline))
    assert codes(result) == expected
    if data["levers"][0]["lever"] == "campaign" and expected:
        # 95 - 25 responders: segment 3 brings none but is still contacted
        assert result.levers[0].details["responders"] == pytest.approx(70.0)
        assert result.levers[0].details["cost"] == pytest.approx(3_000.0)
    assert all(math.isfinite(s.delta.profit) for s in result.segments)


# --- result -------------------------------------------------------------------------------


def test_baseline_and_scenario_economics_per_segment_and_overall(baseline):
    result = simulate(
        baseline,
        validate_scenario(
            one("budget_shift", {"sources": [3], "targets": [1], "shift": 0.5}), baseline
        ),
    )
    # baseline: margin 0.35 R, cost = budget, profit = margin - cost, ROI = profit / cost
    assert_allclose([s.baseline.margin for s in result.segments], [35_000, 21_000, 14_000])
    assert_allclose([s.baseline.cost for s in result.segments], [600, 900, 1_500])
    assert_allclose(
        [s.baseline.roi for s in result.segments], [34_400 / 600, 20_100 / 900, 12_500 / 1_500]
    )
    seg1 = result.segments[0]
    assert (seg1.scenario.revenue, seg1.scenario.cost) == (110_000.0, 1_350.0)
    assert seg1.scenario.profit == pytest.approx(38_500 - 1_350)
    assert seg1.delta.roi == pytest.approx((38_500 - 1_350) / 1_350 - 34_400 / 600)
    overall = result.overall
    assert (overall.segment, overall.baseline.revenue, overall.baseline.cost) == (0, 200_000, 3_000)
    assert overall.scenario.roi == pytest.approx((70_000 + 3_150 - 3_000) / 3_000)
    assert result.monte_carlo is None and overall.scenario_interval is None


def test_to_dict_is_plain_json(baseline):
    data = one("campaign", {"which": "top_n", "n": 1}, monte_carlo={"draws": 200, "seed": 3})
    data["levers"].append(
        {
            "lever": "channel_shift",
            "params": {"from_channel": "store", "to_channel": "web", "share": 0.2},
        }
    )
    out = simulate(baseline, validate_scenario(data, baseline)).to_dict()
    text = json.dumps(out, allow_nan=False)
    assert json.loads(text) == out
    assert set(out) == {"overall", "segments", "levers", "assumptions", "monte_carlo", "warnings"}
    assert out["assumptions"]["levers"][0] == {
        "lever": "campaign",
        "params": {
            "which": "top_n",
            "n": 1,
            "segments": [1],
            "cost_per_contact": 3.0,
            "revenue_per_response": 11.0,
        },
        "filled": {"cost_per_contact": "economics", "revenue_per_response": "economics"},
    }
    assert out["assumptions"]["economics"]["cost_to_serve"] == {
        "catalog": 6.0,
        "store": 4.0,
        "web": 1.5,
    }
    assert out["monte_carlo"] == {"draws": 200, "seed": 3, "quantiles": [0.1, 0.5, 0.9]}
    seg = out["segments"][0]
    assert set(seg) == {"segment", "name", "baseline", "scenario", "delta", "uncertainty"}
    assert set(seg["uncertainty"]["scenario"]["profit"]) == {"p10", "p50", "p90"}
    # campaign details: responders 200 x 0.2 = 40, cost 600
    assert out["levers"][0]["details"]["responders"] == pytest.approx(40.0)
    assert out["levers"][1]["details"]["purchases_moved"] == {"1": 200.0, "2": 120.0, "3": 240.0}


def test_scenario_economics_override_changes_baseline_and_levers(baseline):
    data = one("campaign", {"which": "all"}, economics={"cost_per_contact": 2.0})
    result = simulate(baseline, validate_scenario(data, baseline))
    assert result.overall.baseline.cost == pytest.approx(2_000.0)
    assert result.levers[0].details["cost"] == pytest.approx(2_000.0)
    assert result.economics.sources["cost_per_contact"] == "settings"


# --- registry ------------------------------------------------------------------------------


def test_catalogue_describes_every_lever_with_bounds_and_defaults():
    catalogue = {entry["name"]: entry for entry in lever_catalogue()}
    assert set(catalogue) == {
        "budget_shift",
        "campaign",
        "channel_shift",
        "discount_depth",
        "price",
        "retention",
    }
    shift = catalogue["budget_shift"]["parameters"]["properties"]["shift"]
    assert (shift["minimum"], shift["maximum"], shift["default"]) == (0.0, 1.0, 0.1)
    assert "description" in shift
    price = catalogue["price"]["parameters"]["properties"]["elasticity"]["anyOf"][0]
    assert (price["additionalProperties"]["minimum"], price["additionalProperties"]["maximum"]) == (
        -5.0,
        0.0,
    )
    horizon = catalogue["retention"]["parameters"]["properties"]["horizon_months"]
    assert (horizon["minimum"], horizon["maximum"], horizon["default"]) == (1, 60, 12)
    for entry in catalogue.values():
        assert entry["title"] and entry["description"]
    json.dumps(lever_catalogue())


def test_a_new_lever_is_one_class_and_register(baseline, monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    class FixedCost(Lever):
        name: ClassVar[str] = "fixed_cost"
        title: ClassVar[str] = "Add a fixed cost"
        description: ClassVar[str] = "A cost per segment."
        amount: float = Field(100.0, ge=0, le=1_000)

        def apply(self, ctx: LeverContext) -> LeverEffect:
            cost = ctx.zeros() + self.amount
            return LeverEffect(ctx.zeros(), ctx.zeros(), cost, params={"amount": self.amount})

    registry.register(FixedCost)
    assert "fixed_cost" in [e["name"] for e in lever_catalogue()]
    result = simulate(baseline, validate_scenario(one("fixed_cost", {"amount": 50}), baseline))
    assert result.overall.delta.profit == pytest.approx(-150.0)
    with pytest.raises(ValidationError, match="between 0 and 1000, got 5000"):
        validate_scenario(one("fixed_cost", {"amount": 5_000}), baseline)
    with pytest.raises(ValueError, match="already registered"):
        registry.register(type("Other", (BudgetShift,), {"__module__": __name__}))


# --- cost does not depend on the number of customers ---------------------------------------


def test_baseline_holds_only_k_rows(baseline):
    for value in vars(baseline).values():
        if isinstance(value, np.ndarray):
            assert value.shape[0] == baseline.k


@pytest.mark.parametrize("factor", [1, 10_000])
def test_simulation_sees_k_by_draws_arrays_only(documents, factor, monkeypatch):
    profiles, insights = copy.deepcopy(documents)
    for p in profiles["profiles"]:
        p["customers"] *= factor  # ten million customers: the same arrays
    b = Baseline.from_documents(profiles, insights)
    shapes = []
    original = BudgetShift.apply

    def spy(self, ctx):
        shapes.append(ctx.response.shape)
        effect = original(self, ctx)
        shapes.extend(x.shape for x in (effect.revenue, effect.margin, effect.cost))
        return effect

    monkeypatch.setattr(BudgetShift, "apply", spy)
    data = one("budget_shift", {"sources": [3], "targets": [1]}, monte_carlo={"draws": 300})
    simulate(b, validate_scenario(data, b))
    assert set(shapes) == {(1, 3), (300, 3)}


def test_scenario_round_trips_through_json(baseline):
    data = one("price", {"change": {1: 0.1}, "elasticity": {1: -0.5}}, monte_carlo={"seed": 2})
    scenario = validate_scenario(data, baseline)
    again = Scenario.model_validate_json(scenario.model_dump_json())
    assert again == scenario
    assert simulate(baseline, again).to_dict() == simulate(baseline, scenario).to_dict()
    schema = Scenario.model_json_schema()
    assert schema["properties"]["levers"]["minItems"] == 1
    assert schema["$defs"]["MonteCarlo"]["properties"]["draws"]["maximum"] == 20_000


def test_roi_without_marketing_cost_is_undefined_not_an_error(baseline):
    # all of segment 3's budget (1,500) moves to segment 1: its cost is 0, its ROI undefined;
    # revenue lost 40,000 x 0.05 x 1 = 2,000, so its profit is 14,000 - 0.35 x 2,000 = 13,300
    data = one(
        "budget_shift", {"sources": [3], "targets": [1], "shift": 1.0}, monte_carlo={"draws": 200}
    )
    out = simulate(baseline, validate_scenario(data, baseline)).to_dict()
    seg3 = out["segments"][2]
    assert seg3["scenario"]["cost"] == 0.0
    assert seg3["scenario"]["profit"] == pytest.approx(13_300.0)
    assert seg3["scenario"]["roi"] is None and seg3["delta"]["roi"] is None
    assert seg3["uncertainty"]["scenario"]["roi"] == {"p10": None, "p50": None, "p90": None}
    assert (
        seg3["uncertainty"]["scenario"]["profit"]["p10"]
        < seg3["uncertainty"]["scenario"]["profit"]["p90"]
    )


def shift(source, target, amount):
    return {
        "lever": "budget_shift",
        "params": {"sources": [source], "targets": [target], "shift": amount},
    }


@pytest.mark.parametrize(
    ("levers", "emptied"),
    [
        # 0.7 + 0.7 of segment 3's 1,500: net budget 1,500 - 2 x 1,050 = -600
        ([shift(3, 1, 0.7), shift(3, 2, 0.7)], {3: -600.0}),
        # 0.5 + 0.5: exactly 0 left
        ([shift(3, 1, 0.5), shift(3, 2, 0.5)], {3: 0.0}),
        # one lever of 0.7 leaves 450
        ([shift(3, 1, 0.7)], {}),
        # a campaign on segment 3 adds its 500 x 3 = 1,500: net 900
        (
            [
                shift(3, 1, 0.7),
                shift(3, 2, 0.7),
                {"lever": "campaign", "params": {"which": "list", "segments": [3]}},
            ],
            {},
        ),
    ],
)
def test_budget_emptied_is_checked_on_the_net_budget_of_the_scenario(baseline, levers, emptied):
    result = simulate(baseline, validate_scenario({"levers": levers}, baseline))
    warned = {w.segment: w for w in result.warnings if w.code == "budget_emptied"}
    assert set(warned) == set(emptied)
    for seg, net in emptied.items():
        assert warned[seg].lever == "budget_shift"
        assert warned[seg].values == {"budget": 1_500.0, "net_budget": pytest.approx(net)}
        assert result.segments[seg - 1].scenario.cost == 0.0  # held at 0, never negative
    assert all(s.scenario.cost >= 0 for s in result.segments)


def test_an_overdrawn_budget_is_held_at_zero(baseline):
    # 0.7 + 0.7 from segment 3: segments 1 and 2 each receive 1,050 (600 + 1,050 and
    # 900 + 1,050), segment 3 is held at 0, so the total is 3,600: 600 of new money, which the
    # warning says. Revenue: +100,000 x 0.2 x 0.7, +60,000 x 0.1 x 0.7, -40,000 x 0.05 x 1.4
    result = simulate(
        baseline, validate_scenario({"levers": [shift(3, 1, 0.7), shift(3, 2, 0.7)]}, baseline)
    )
    assert_allclose([s.scenario.cost for s in result.segments], [1_650, 1_950, 0])
    assert result.overall.scenario.cost == pytest.approx(3_600.0)
    assert_allclose([s.delta.revenue for s in result.segments], [14_000, 4_200, -2_800])
    assert result.overall.delta.profit == pytest.approx(0.35 * 15_400 - 600)
    assert math.isnan(result.segments[2].scenario.roi)
    (warning,) = [w for w in result.warnings if w.code == "budget_emptied"]
    assert "600.00 moved beyond its budget" in warning.message
