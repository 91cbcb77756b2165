"""The optimiser's request: validated once with whole ranges, and sent to the right optimiser."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sistack.domain.simulation import ContactPlan, OptimizationResult, plan, validate_request


@pytest.mark.parametrize(
    ("data", "location", "words"),
    [
        ({"total_budget": 100, "draws": 20_001}, "draws", ["between 100 and 20000", "got 20001"]),
        ({"total_budget": 0}, "total_budget", ["between 0.0 (excluded) and", "got 0"]),
        (
            {"total_budget": 100, "quantile": 1.0},
            "quantile",
            ["between 0.0 (excluded) and 1.0 (excluded)", "got 1.0"],
        ),
        (
            {"total_budget": 100, "economics": {"margin_rate": 1.5}},
            "economics.margin_rate",
            ["between 0.0 and 1.0", "got 1.5"],
        ),
        (
            {"total_budget": 100, "bounds": {"0": [0, 10]}},
            "bounds.0.[key]",
            ["unknown segment id 0", "allowed ids: 1, 2, 3"],
        ),
        (
            {"total_budget": 100, "bounds": {"1": [-1, 10]}},
            "bounds.1.0",
            ["between 0.0 and 1000000000000.0", "got -1"],
        ),
        ({"total_budget": 100, "bounds": {"1": [5, 1]}}, "", ["low (5.0) is above high (1.0)"]),
        ({}, "", ["total_budget is required to allocate a budget"]),
        ({"total_budget": 100, "objective": "median"}, "objective", ["'expected' or 'quantile'"]),
    ],
)
def test_invalid_requests_name_the_field_and_the_whole_range(baseline, data, location, words):
    with pytest.raises(ValidationError) as info:
        validate_request(data, baseline)
    (error,) = info.value.errors()
    assert ".".join(str(p) for p in error["loc"]) == location
    for word in words:
        assert word in error["msg"]


def test_a_campaign_needs_no_budget_and_gets_a_contact_plan(baseline):
    request = validate_request({"campaign": True}, baseline)
    assert request.total_budget is None
    assert isinstance(plan(baseline, request), ContactPlan)


def test_an_allocation_gets_the_budget_optimiser(baseline):
    request = validate_request({"total_budget": 3_000, "bounds": {"1": [0, 500]}}, baseline)
    result = plan(baseline, request)
    assert isinstance(result, OptimizationResult)
    assert result.bounds[0] == (0.0, 500.0)
    assert result.to_dict()["mode"] == "allocation"
