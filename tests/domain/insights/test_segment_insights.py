"""Contribution, discount risk, channels, personas, actions and comparison: hand-worked numbers."""

from dataclasses import asdict

import numpy as np
import pytest
from numpy.testing import assert_allclose

from sistack.domain.insights import actions, channels, compare, discount, kpis, personas
from sistack.domain.profiles import SegmentProfile
from tests.domain.insights.definitions import undefined


def profile(segment, customers, revenue, total_customers, total_revenue, means, sums=None):
    return SegmentProfile(
        segment=segment,
        customers=customers,
        customer_share=customers / total_customers,
        revenue=revenue,
        revenue_share=revenue / total_revenue,
        means=means,
        medians=dict(means),
        sums=sums or {},
        non_null={},
    )


# Six customers: segment 1 = customers 0-1, segment 2 = customers 2-5.
MONETARY = np.array([500.0, 300.0, 50.0, 40.0, 60.0, 50.0])
SEGMENT = np.array([1, 1, 2, 2, 2, 2])
DEAL = np.array([0.0, 0.1, 0.6, 0.5, 0.3, 0.9])
PROFILES = (
    profile(
        0,
        6,
        1000.0,
        6,
        1000.0,
        {"monetary": 1000 / 6, "deal_share": 2.4 / 6},
        {"purchases_web": 10.0, "purchases_store": 30.0, "web_visits": 20.0},
    ),
    profile(
        1,
        2,
        800.0,
        6,
        1000.0,
        {"monetary": 400.0, "deal_share": 0.05},
        {"purchases_web": 2.0, "purchases_store": 18.0, "web_visits": 4.0},
    ),
    profile(
        2,
        4,
        200.0,
        6,
        1000.0,
        {"monetary": 50.0, "deal_share": 0.575},
        {"purchases_web": 8.0, "purchases_store": 12.0, "web_visits": 16.0},
    ),
)


def test_contribution_and_revenue_index():
    result = {c.segment: c for c in kpis.contributions(PROFILES, MONETARY, SEGMENT)}
    # Segment 1: 1/3 of customers, 80% of revenue -> index 2.4; avg 400.
    assert result[1].revenue_index == pytest.approx(0.8 / (2 / 6))
    assert result[1].avg_revenue == pytest.approx(400.0)
    assert result[2].revenue_index == pytest.approx(0.2 / (4 / 6))
    # Top 20% of 6 customers = ceil(1.2) = 2 customers: 500 + 300 of 1000.
    assert result[0].top20_revenue_share == pytest.approx(0.8)
    # Within segment 2 (4 customers): top ceil(0.8) = 1 customer, 60 of 200.
    assert result[2].top20_revenue_share == pytest.approx(0.3)


def test_discount_tiers_and_exposure():
    risk = {r.segment: r for r in discount.discount_risk(DEAL, MONETARY, SEGMENT, [1, 2])}
    # Tiers: 0.0 low, 0.1 low, 0.6 high, 0.5 high, 0.3 medium, 0.9 high.
    assert risk[0].tier_counts == {"low": 2, "medium": 1, "high": 3}
    assert risk[2].tier_counts == {"low": 0, "medium": 1, "high": 3}
    assert risk[2].revenue_exposed == pytest.approx(50 + 40 + 50)
    assert risk[2].revenue_exposed_share == pytest.approx(140 / 200)
    assert risk[0].deal_dependent_share == pytest.approx(0.5)
    assert risk[1].mean_deal_share == pytest.approx(0.05)
    assert sum(risk[0].histogram) == 6


def test_channel_mix_and_index():
    mix = {m.segment: m for m in channels.channel_mix(PROFILES)}
    assert mix[0].shares == {"store": 0.75, "web": 0.25}
    assert mix[1].shares == {"store": 0.9, "web": 0.1}
    assert mix[1].dominant == "store"
    assert mix[1].index["store"] == pytest.approx(0.9 / 0.75)
    assert mix[2].index["web"] == pytest.approx(0.4 / 0.25)
    assert mix[2].web_visits_per_purchase == pytest.approx(16 / 20)


def test_persona_names_from_statistics():
    stds = {"monetary": 100.0, "deal_share": 0.3}
    result = {p.segment: p for p in personas.build_personas(PROFILES, stds)}
    # Segment 1: index 2.4 -> Premium; deal share z = (0.05 - 0.4) / 0.3 = -1.17 -> Full-price.
    assert result[1].tier == "Premium"
    assert result[1].name.startswith("Premium: ")
    assert "Full-price" in result[1].name
    # Segment 2: index 0.3 -> Low-value, deal share z = +0.58 -> Deal-seeking.
    assert result[2].name.startswith("Low-value: ")
    assert "Deal-seeking" in result[2].name
    assert "33% of customers bring 80% of revenue" in result[1].narrative
    assert len({p.name for p in result.values()}) == 2


def test_persona_names_are_unique_even_when_statistics_tie():
    twin = profile(2, 2, 400.0, 6, 1200.0, {"monetary": 200.0, "deal_share": 0.05})
    profiles = (PROFILES[0], PROFILES[1], twin)
    names = [p.name for p in personas.build_personas(profiles, {"deal_share": 0.3})]
    assert len(set(names)) == 2


def context(**overrides):
    base = dict(
        segment=1,
        persona="x",
        customers=100,
        revenue=10_000.0,
        revenue_index=1.0,
        avg_revenue=100.0,
        population_avg_revenue=100.0,
        deal_share=0.2,
        population_deal_share=0.2,
        revenue_exposed=1000.0,
        deal_dependent_share=0.1,
        response_probability=0.1,
        population_response_probability=0.1,
        revenue_per_response=11.0,
        recency_z=0.0,
        tenure_z=0.0,
        variety_z=0.0,
        dominant_channel="store",
        dominant_channel_index=1.0,
    )
    base.update(overrides)
    return actions.SegmentContext(**base)


@pytest.mark.parametrize(
    ("overrides", "expected_rule"),
    [
        ({"revenue_index": 2.0, "deal_share": 0.05}, "loyalty_perks"),
        ({"revenue_index": 0.5, "deal_share": 0.6}, "targeted_coupons"),
        ({"recency_z": 1.2}, "win_back"),
        ({"response_probability": 0.3}, "prioritise_campaign"),
        ({"tenure_z": -1.0}, "nurture_new"),
        ({"dominant_channel_index": 1.8}, "channel_focus"),
        ({"variety_z": -0.9}, "cross_sell"),
        ({"revenue_index": 0.4, "response_probability": 0.05}, "reduce_contact"),
    ],
)
def test_rules_fire_on_their_condition(overrides, expected_rule):
    rules = [a.rule for a in actions.recommend(context(**overrides))]
    assert expected_rule in rules
    assert 2 <= len(rules) <= 4


def test_guardrail_warns_on_discount_into_dependent_segment():
    (coupon,) = [
        a
        for a in actions.recommend(context(revenue_index=0.5, deal_share=0.6))
        if a.rule == "targeted_coupons"
    ]
    assert coupon.involves_discount
    assert any("60%" in g for g in coupon.guardrails)
    assert coupon.revenue_at_stake == pytest.approx(1000.0)


def test_ranking_by_revenue_at_stake():
    a = actions.recommend(context(segment=1, revenue=1000.0, revenue_index=2.0, deal_share=0.0))
    b = actions.recommend(context(segment=2, revenue=50_000.0, recency_z=2.0))
    top = actions.rank([*a, *b], top=3)
    assert top[0].segment == 2 and top[0].rule == "win_back"
    assert top[0].revenue_at_stake == pytest.approx(0.25 * 50_000)
    assert [t.revenue_at_stake for t in top] == sorted(
        (t.revenue_at_stake for t in top), reverse=True
    )


def test_compare_identical_runs():
    stds = {"monetary": 100.0, "deal_share": 0.3}
    result = compare.compare_runs(PROFILES, PROFILES, stds=stds, shared=(SEGMENT, SEGMENT.copy()))
    assert [(m.segment_a, m.segment_b) for m in result.matches] == [(1, 1), (2, 2)]
    assert all(m.quality == pytest.approx(1.0) for m in result.matches)
    assert result.migration == ((2, 0), (0, 4))
    assert result.ari == pytest.approx(1.0)
    assert result.vanished == () and result.new == ()


def test_compare_swapped_labels_and_migration():
    stds = {"monetary": 100.0, "deal_share": 0.3}
    swapped = (
        PROFILES[0],
        profile(1, 4, 200.0, 6, 1000.0, PROFILES[2].means),
        profile(2, 2, 800.0, 6, 1000.0, PROFILES[1].means),
    )
    moved = np.array([2, 2, 1, 1, 1, 2])  # customer 5 moved to the other group
    result = compare.compare_runs(PROFILES, swapped, stds=stds, shared=(SEGMENT, moved))
    assert [(m.segment_a, m.segment_b) for m in result.matches] == [(1, 2), (2, 1)]
    assert result.migration == ((0, 2), (3, 1))
    deltas = {m.segment_a: m.deltas for m in result.matches}
    assert_allclose(deltas[1]["customer_share"], 0.0, atol=1e-12)
    assert result.ari < 1.0


def relabel(p, segment):
    return SegmentProfile(**{**p.to_dict(), "segment": segment})


def test_persona_names_follow_the_statistics_not_the_labels():
    stds = {"monetary": 100.0, "deal_share": 0.3}
    names = {p.segment: p.name for p in personas.build_personas(PROFILES, stds)}
    # Swap the labels: the same statistics get the same names under their new numbers.
    swapped = (PROFILES[0], relabel(PROFILES[2], 1), relabel(PROFILES[1], 2))
    again = {p.segment: p.name for p in personas.build_personas(swapped, stds)}
    assert again == {1: names[2], 2: names[1]}
    # Scale segment 2's deal share by 0.1: 0.0575, z = (0.0575 - 0.4) / 0.3 = -1.14, so it is no
    # longer deal-seeking but full-price; segment 1's name does not move.
    cheaper = profile(2, 4, 200.0, 6, 1000.0, {"monetary": 50.0, "deal_share": 0.0575})
    changed = {
        p.segment: p.name
        for p in personas.build_personas((PROFILES[0], PROFILES[1], cheaper), stds)
    }
    assert names == {1: "Premium: Full-price", 2: "Low-value: Deal-seeking"}
    assert changed == {1: "Premium: Full-price", 2: "Low-value: Full-price"}


def test_compare_with_a_new_segment():
    stds = {"monetary": 100.0, "deal_share": 0.3}
    b = (
        profile(0, 6, 1200.0, 6, 1200.0, {"monetary": 200.0, "deal_share": 0.4}),
        profile(1, 2, 800.0, 6, 1200.0, {"monetary": 400.0, "deal_share": 0.05}),
        profile(2, 3, 150.0, 6, 1200.0, {"monetary": 60.0, "deal_share": 0.545}),
        profile(3, 1, 250.0, 6, 1200.0, {"monetary": 250.0, "deal_share": 0.9}),
    )
    moved = np.array([1, 1, 2, 2, 3, 2])  # customer 4 went to the new segment 3
    result = compare.compare_runs(PROFILES, b, stds=stds, shared=(SEGMENT, moved))
    assert [(m.segment_a, m.segment_b) for m in result.matches] == [(1, 1), (2, 2)]
    assert result.new == (3,) and result.vanished == ()
    # A2 -> B2: differences 10 / 100 = 0.1 and 0.03 / 0.3 = 0.1 standard deviations, so
    # d = sqrt((0.01 + 0.01) / 2) = 0.1 and quality exp(-0.1).
    quality = {m.segment_a: m.quality for m in result.matches}
    assert quality[1] == pytest.approx(1.0)
    assert quality[2] == pytest.approx(np.exp(-0.1))
    assert not any(m.weak for m in result.matches)
    # KPI deltas B2 - A2: customer share 3/6 - 4/6, revenue share 150/1200 - 200/1000, revenue
    # index 0.125/0.5 - 0.2/(4/6) = 0.25 - 0.3, revenue per customer 50 - 50.
    deltas = {m.segment_a: m.deltas for m in result.matches}[2]
    assert deltas["customer_share"] == pytest.approx(-1 / 6)
    assert deltas["revenue_share"] == pytest.approx(-0.075)
    assert deltas["revenue_index"] == pytest.approx(-0.05)
    assert deltas["avg_revenue"] == pytest.approx(0.0)
    # Two rows (segments of A) by three columns (segments of B).
    assert result.migration == ((2, 0, 0), (0, 3, 1))
    assert result.shared_customers == 6

    reverse = compare.compare_runs(b, PROFILES, stds=stds, shared=(moved, SEGMENT))
    assert reverse.vanished == (3,) and reverse.new == ()
    assert reverse.migration == ((2, 0), (0, 3), (0, 1))


def test_compare_flags_a_weak_match():
    stds = {"monetary": 100.0, "deal_share": 0.3}
    b = (
        PROFILES[0],
        profile(1, 2, 800.0, 6, 1000.0, {"monetary": 400.0, "deal_share": 0.05}),
        profile(2, 4, 200.0, 6, 1000.0, {"monetary": 250.0, "deal_share": 0.9}),
    )
    result = compare.compare_runs(PROFILES, b, stds=stds)
    # A2 (50, 0.575) -> B2 (250, 0.9): 2 and 0.325 / 0.3 = 1.083 standard deviations, so
    # d = sqrt((4 + 1.1736) / 2) = 1.6084 and quality exp(-1.6084) = 0.200 < exp(-1).
    match = {m.segment_a: m for m in result.matches}
    assert match[2].segment_b == 2
    assert match[2].quality == pytest.approx(np.exp(-np.sqrt((4 + (0.325 / 0.3) ** 2) / 2)))
    assert match[2].weak and not match[1].weak
    assert result.migration is None and result.ari is None and result.shared_customers == 0


def test_every_number_of_a_comparison_has_a_definition():
    stds = {"monetary": 100.0, "deal_share": 0.3}
    result = compare.compare_runs(PROFILES, PROFILES, stds=stds, shared=(SEGMENT, SEGMENT))
    assert undefined(asdict(result), compare.DEFINITIONS) == []
