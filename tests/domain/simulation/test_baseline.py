"""Baseline: per-segment arrays read from the profile and insight documents."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from sistack.domain.simulation import Baseline, EconomicSettings
from sistack.errors import InputError


def test_arrays_in_segment_order(baseline):
    assert baseline.ids == (1, 2, 3)
    assert baseline.names == ("Premium", "Deal seekers", "Lapsed")
    assert_allclose(baseline.customers, [200, 300, 500])
    assert_allclose(baseline.revenue, [100_000, 60_000, 40_000])
    assert_allclose(baseline.response_rate, [0.2, 0.1, 0.05])
    assert_allclose(baseline.response_observed, [0.19, 0.11, 0.048])
    assert_allclose(baseline.deal_share, [0.1, 0.5, 0.2])
    assert baseline.population_deal_share == 0.25
    assert baseline.channels == ("catalog", "store", "web")
    assert_allclose(baseline.purchases, [[600, 1000, 400], [100, 600, 900], [0, 1200, 300]])
    assert_allclose(baseline.value_12m, [80_000, 50_000, 20_000])
    # highest of expected (0.2) and observed (0.19, 0.11, 0.048) rates
    assert baseline.response_ceiling == 0.2


def test_model_basis_centres_beta_on_expected_rate_with_labelled_count(baseline):
    # alpha = p n + 1, beta = (1 - p) n + 1 with n = labelled customers
    assert_allclose(baseline.response_alpha, [0.2 * 200 + 1, 0.1 * 300 + 1, 0.05 * 500 + 1])
    assert_allclose(baseline.response_beta, [0.8 * 200 + 1, 0.9 * 300 + 1, 0.95 * 500 + 1])


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        # observed label counts: alpha = successes + 1, beta = trials - successes + 1
        (
            {
                "basis": "observed_response",
                "expected_rate": 0.19,
                "observed": {"successes": 38, "trials": 200, "rate": 0.19},
            },
            (0.19, 39.0, 163.0),
        ),
        # campaign acceptance: the any-campaign count
        (
            {
                "basis": "campaign_acceptance",
                "expected_rate": 0.25,
                "campaigns": [
                    {"campaign": "cmp1", "interval": {"successes": 10, "trials": 200}},
                    {"campaign": "any_campaign", "interval": {"successes": 50, "trials": 200}},
                ],
            },
            (0.25, 51.0, 151.0),
        ),
        # a rate without any count: fixed, no posterior
        ({"basis": "model", "expected_rate": 0.3}, (0.3, 200 * 0.3 + 1, 200 * 0.7 + 1)),
        ({"basis": None, "expected_rate": 0.3}, (0.3, math.nan, math.nan)),
        # nothing known
        ({"basis": None, "campaigns": []}, (math.nan, math.nan, math.nan)),
        (None, (math.nan, math.nan, math.nan)),
    ],
)
def test_response_posterior_rules(documents, response, expected):
    profiles, insights = copy.deepcopy(documents)
    insights["segments"][0]["response"] = response
    b = Baseline.from_documents(profiles, insights)
    got = (b.response_rate[0], b.response_alpha[0], b.response_beta[0])
    assert_allclose(got, expected, equal_nan=True)


def test_economics_defaults_and_data_values(documents):
    profiles, insights = copy.deepcopy(documents)
    b = Baseline.from_documents(profiles, insights)
    assert (b.economics.cost_per_contact, b.economics.revenue_per_response) == (3.0, 11.0)
    assert b.economics.cost_to_serve == {"catalog": 6.0, "store": 4.0, "web": 1.5}
    assert b.economics.sources["cost_per_contact"] == "default"
    profiles["profiles"][0]["means"]["cost_contact"] = 2.5
    profiles["profiles"][0]["sums"]["revenue_per_response"] = 12_000.0
    profiles["profiles"][0]["non_null"]["revenue_per_response"] = 1000
    b = Baseline.from_documents(profiles, insights)
    assert (b.economics.cost_per_contact, b.economics.revenue_per_response) == (2.5, 12.0)
    assert b.economics.sources["cost_per_contact"] == "data"
    b = Baseline.from_documents(
        profiles, insights, settings=EconomicSettings(cost_per_contact=4.0, margin_rate=0.5)
    )
    assert (b.economics.cost_per_contact, b.economics.margin_rate) == (4.0, 0.5)
    assert_allclose(b.budget(b.economics), [800, 1200, 2000])


def test_scenario_override_keeps_fields_it_does_not_set(documents):
    b = Baseline.from_documents(*documents, settings=EconomicSettings(margin_rate=0.5))
    econ = b.economics_for(EconomicSettings(cost_per_contact=5.0, cost_to_serve={"web": 2.0}))
    assert (econ.margin_rate, econ.cost_per_contact) == (0.5, 5.0)
    assert econ.cost_to_serve == {"catalog": 6.0, "store": 4.0, "web": 2.0}


def test_baseline_is_frozen_and_k_long(baseline):
    for name in ("customers", "revenue", "response_rate", "deal_share", "purchases"):
        array = getattr(baseline, name)
        assert array.shape[0] == baseline.k
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 1.0


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda p, i: p["profiles"].pop(0), "population"),
        (lambda p, i: p["profiles"].pop(2), "segments 1..k"),
        (lambda p, i: i["segments"].pop(), "insights describe segments"),
    ],
)
def test_inconsistent_documents_are_rejected(documents, edit, match):
    profiles, insights = copy.deepcopy(documents)
    edit(profiles, insights)
    with pytest.raises(InputError, match=match):
        Baseline.from_documents(profiles, insights)


def test_channels_from_insight_shares_when_profiles_lack_purchase_sums(documents):
    profiles, insights = copy.deepcopy(documents)
    for p in profiles["profiles"]:
        p["sums"] = {}
    for s in insights["segments"]:
        s["channels"] = {"shares": {"web": 0.25, "store": 0.75}, "purchases": 100.0}
    b = Baseline.from_documents(profiles, insights)
    assert b.channels == ("store", "web")
    assert_allclose(b.purchases, np.tile([75.0, 25.0], (3, 1)))
