"""A run's insights assembled from a six-customer table: behaviour, category mix, overall KPIs and
the decision banner, each checked against numbers worked out by hand."""

import datetime as dt

import numpy as np
import polars as pl
import pytest

from sistack.domain.features import build_features
from sistack.domain.insights import personas
from sistack.domain.insights.actions import Action
from sistack.domain.insights.discount import DiscountRisk
from sistack.domain.insights.kpis import Contribution
from sistack.domain.insights.report import build_insights, decision_banner
from sistack.domain.profiles import SegmentProfile, build_profiles
from tests.domain.insights.definitions import undefined

REFERENCE = dt.date(2024, 1, 31)
# The valuable customers c1, c2 are segment 2, so the banner must find the best segment by its
# numbers, not take the first one.
TABLE = pl.DataFrame(
    {
        "customer_id": ["c1", "c2", "c3", "c4", "c5", "c6"],
        "recency_days": [10.0, 20.0, 100.0, 200.0, 50.0, 300.0],
        "purchases_web": [4.0, 2.0, 1.0, 3.0, 0.0, 1.0],
        "purchases_store": [6.0, 8.0, 1.0, 1.0, 2.0, 0.0],
        "deal_purchases": [1.0, 0.0, 1.0, 3.0, 0.0, 1.0],
        "spend_wine": [300.0, 200.0, 0.0, 30.0, 10.0, 0.0],
        "spend_meat": [100.0, 0.0, 40.0, 30.0, 30.0, 0.0],
        "signup_date": [
            dt.date(2023, 1, 31),  # 365 days before the reference date
            dt.date(2023, 7, 31),  # 184
            dt.date(2023, 10, 31),  # 92
            dt.date(2023, 12, 31),  # 31
            dt.date(2023, 11, 30),  # 62
            dt.date(2023, 1, 1),  # 395
        ],
    }
)
SEGMENT = np.array([2, 2, 1, 1, 1, 1])
# Per customer, by hand:
#      frequency monetary avg_order tenure variety mix_wine mix_meat deal_share
# c1   10        400      40        365    1       0.75     0.25     0.1
# c2   10        200      20        184    0.5     1        0        0
# c3   2         40       20        92     0.5     0        1        0.5
# c4   4         60       15        31     1       0.5      0.5      0.75
# c5   2         40       20        62     1       0.25     0.75     0
# c6   1         0        0         395    0       0        0        1   (no spend: shares 0)
BEHAVIOUR = {
    2: {
        "recency_days": 15.0,
        "frequency": 10.0,
        "monetary": 300.0,
        "avg_order_value": 30.0,
        "tenure_days": 274.5,
        "variety": 0.75,
    },
    1: {
        "recency_days": 162.5,
        "frequency": 2.25,
        "monetary": 35.0,
        "avg_order_value": 13.75,
        "tenure_days": 145.0,
        "variety": 0.625,
    },
}
CATEGORY_MIX = {2: {"wine": 0.875, "meat": 0.125}, 1: {"wine": 0.1875, "meat": 0.5625}}


@pytest.fixture(scope="module")
def insights():
    matrix = build_features(TABLE, reference_date=REFERENCE)
    names = [s.name for s in matrix.specs]
    profiles = build_profiles(
        matrix.frame,
        TABLE,
        pl.Series("segment", SEGMENT, dtype=pl.Int32),
        feature_names=names,
        model_features=matrix.model_features,
        stability=(0.9, 0.6),
    )
    return build_insights(
        matrix.frame,
        TABLE,
        SEGMENT,
        profiles,
        shape="customers",
        reference_date=REFERENCE,
        seed=0,
    )


def by_segment(insights):
    return {s["segment"]: s for s in insights.segments}


@pytest.mark.parametrize("seg", [1, 2])
def test_behaviour_per_segment(insights, seg):
    behaviour = by_segment(insights)[seg]["behaviour"]
    assert behaviour == pytest.approx(BEHAVIOUR[seg])


@pytest.mark.parametrize("seg", [1, 2])
def test_category_mix_per_segment(insights, seg):
    # The mean of the customers' shares: segment 1's shares add up to 0.75, not 1, because c6
    # spent nothing (and counts as 0 in both).
    assert by_segment(insights)[seg]["category_mix"] == pytest.approx(CATEGORY_MIX[seg])


def test_stability_is_reported_per_segment(insights):
    assert by_segment(insights)[1]["stability"] == 0.9
    assert by_segment(insights)[2]["stability"] == 0.6


def test_overall_kpis(insights):
    overall = insights.overall
    assert overall["customers"] == 6
    assert overall["revenue"] == pytest.approx(740.0)
    assert overall["avg_revenue"] == pytest.approx(740 / 6)
    # Deal share >= 50% over everyone: c3 (0.5), c4 (0.75), c6 (1.0) -> 3 of 6 customers, whose
    # revenue 40 + 60 + 0 = 100 is exposed.
    assert overall["deal_dependent_share"] == pytest.approx(0.5)
    assert overall["revenue_exposed"] == pytest.approx(100.0)
    assert overall["discount"]["revenue_exposed_share"] == pytest.approx(100 / 740)
    # Top 20% of 6 customers = 2 customers (c1, c2): 600 of 740.
    assert overall["top20_revenue_share"] == pytest.approx(600 / 740)
    assert overall["response_rate"] is None  # no label: no number invented


def test_banner_names_the_best_segment_and_the_top_three_actions(insights):
    best = by_segment(insights)[2]
    # Segment 2: 2 of 6 customers (33%), 600 of 740 revenue (81%); revenue index 2.43 against
    # segment 1's 0.28.
    assert best["contribution"]["revenue_index"] == pytest.approx((600 / 740) / (2 / 6))
    lead = (
        f"{best['persona']['name']} (segment 2) is 33% of customers and brings 81% of revenue; "
        "14% of revenue depends on discounts; top 3 moves by revenue at stake: "
    )
    assert insights.banner.startswith(lead)
    top = insights.top_actions
    assert len(top) == 3
    stakes = [a.revenue_at_stake for a in top]
    assert stakes == sorted(stakes, reverse=True)
    for i, action in enumerate(top, start=1):
        title = action.title[0].lower() + action.title[1:]
        assert f"({i}) {title} (segment {action.segment})" in insights.banner
    assert insights.banner.endswith(".")


# --- the banner on its own -------------------------------------------------------------------


def profile(segment, customers, revenue):
    return SegmentProfile(segment, customers, customers / 10, revenue, revenue / 1000.0,
                          {}, {}, {}, {})  # fmt: skip


def contribution(p):
    index = p.revenue_share / p.customer_share
    return Contribution(p.segment, p.customers, p.customer_share, p.revenue, p.revenue_share,
                        index, p.revenue / p.customers, 0.5)  # fmt: skip


def action(segment, title, stake):
    return Action("rule", segment, title, "why", "increase revenue", stake, (), False)


PROFILES = (profile(0, 10, 1000.0), profile(1, 5, 300.0), profile(2, 2, 400.0),
            profile(3, 3, 300.0))  # fmt: skip
PEOPLE = {
    s: personas.Persona(s, name, "tier", (), "") for s, name in [(1, "Mid"), (2, "Top"), (3, "Low")]
}


@pytest.mark.parametrize(
    ("actions", "moves"),
    [
        ([], ""),
        (
            [action(3, "Run a win-back", 90.0)],
            "; top move by revenue at stake: (1) run a win-back (segment 3)",
        ),
        (
            [
                action(3, "Run a win-back", 90.0),
                action(2, "Reward loyalty, not discounts", 80.0),
                action(1, "Test first", 10.0),
                action(1, "Never shown", 5.0),
            ],
            "; top 3 moves by revenue at stake: (1) run a win-back (segment 3); (2) reward "
            "loyalty, not discounts (segment 2); (3) test first (segment 1)",
        ),
    ],
)
def test_decision_banner_by_hand(actions, moves):
    contrib = {p.segment: contribution(p) for p in PROFILES}
    risk = {0: DiscountRisk(0, 10, 0.2, 0.1, 0.3, {}, 0.1, 250.0, 0.25, ())}
    banner = decision_banner(PROFILES, PEOPLE, contrib, risk, tuple(actions))
    # Revenue index: segment 2 = 0.4 / 0.2 = 2.0, the highest (segments 1 and 3: 0.6, 1.0).
    assert banner == (
        "Top (segment 2) is 20% of customers and brings 40% of revenue; 25% of revenue depends "
        f"on discounts{moves}."
    )


def test_decision_banner_breaks_a_tie_by_the_lower_segment():
    tied = (profile(0, 10, 1000.0), profile(1, 5, 500.0), profile(2, 5, 500.0))
    contrib = {p.segment: contribution(p) for p in tied}
    banner = decision_banner(tied, PEOPLE, contrib, {}, ())
    assert banner == "Mid (segment 1) is 50% of customers and brings 50% of revenue."


def test_every_number_has_a_definition(insights):
    doc = insights.to_dict()
    definitions = doc.pop("definitions")
    assert undefined(doc, definitions) == []
    # The check itself: a number without a definition is found, structure is not reported.
    assert undefined({"overall": {"new_metric": 1.0, "segment": 3}}, definitions) == [
        "overall/new_metric"
    ]
