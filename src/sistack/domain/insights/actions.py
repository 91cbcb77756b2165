"""Recommended actions: a registry of rules over segment statistics.

A rule has a condition on a segment's context, an action with its rationale, the expected
direction of impact, an estimate of the revenue at stake (used to rank actions across segments)
and guardrails. Built-in rules register through :func:`register`, the same way a new one would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

MAX_ACTIONS = 4
MIN_ACTIONS = 2

DEFINITIONS = {
    "revenue_at_stake": "A rough size of the revenue an action could move, used to rank actions "
    "across segments: the revenue exposed to discounts (coupons), a rule's share of the "
    "segment's revenue (e.g. 25% for a win-back, 10% for loyalty perks), or the expected "
    "responders x revenue per response (campaign priority). For ranking, not a forecast.",
}


@dataclass(frozen=True)
class SegmentContext:
    """What rules may look at for one segment (population values for comparison)."""

    segment: int
    persona: str
    customers: int
    revenue: float
    revenue_index: float
    avg_revenue: float
    population_avg_revenue: float
    deal_share: float | None
    population_deal_share: float | None
    revenue_exposed: float | None
    deal_dependent_share: float | None
    response_probability: float | None
    population_response_probability: float | None
    revenue_per_response: float | None
    recency_z: float | None
    tenure_z: float | None
    variety_z: float | None
    dominant_channel: str | None
    dominant_channel_index: float | None


@dataclass(frozen=True)
class Action:
    rule: str
    segment: int
    title: str
    rationale: str
    direction: str  # "increase revenue", "protect revenue", "reduce cost", "protect margin"
    revenue_at_stake: float
    guardrails: tuple[str, ...]
    involves_discount: bool


@dataclass(frozen=True)
class Rule:
    id: str
    applies: Callable[[SegmentContext], bool]
    build: Callable[[SegmentContext], Action]
    priority: int = 0  # tie-breaker, higher first


RULES: dict[str, Rule] = {}


def register(rule: Rule) -> Rule:
    if rule.id in RULES:
        raise ValueError(f"rule {rule.id} is already registered")
    RULES[rule.id] = rule
    return rule


def _deal_dependent(c: SegmentContext) -> bool:
    return (
        c.deal_share is not None
        and c.population_deal_share is not None
        and c.deal_share >= max(0.3, 1.25 * c.population_deal_share)
    )


def _discount_guardrail(c: SegmentContext) -> tuple[str, ...]:
    if _deal_dependent(c):
        return (
            f"Segment {c.segment} already buys {c.deal_share:.0%} of the time on a deal: more "
            "discount here trains customers to wait for it. Cap depth and measure incrementality.",
        )
    return ()


def _action(
    c: SegmentContext,
    rule: str,
    title: str,
    why: str,
    direction: str,
    stake: float,
    *,
    discount: bool = False,
    guardrails: tuple[str, ...] = (),
) -> Action:
    extra = _discount_guardrail(c) if discount else ()
    return Action(
        rule, c.segment, title, why, direction, float(stake), guardrails + extra, discount
    )


register(
    Rule(
        "loyalty_perks",
        lambda c: (
            c.revenue_index >= 1.3
            and (
                c.deal_share is None
                or c.population_deal_share is None
                or c.deal_share <= c.population_deal_share
            )
        ),
        lambda c: _action(
            c,
            "loyalty_perks",
            "Reward loyalty with perks and service, not blanket discounts",
            f"They bring {c.revenue_index:.1f}x their share of revenue and rarely need a deal; "
            "discounts would give away margin they already pay.",
            "protect revenue",
            0.10 * c.revenue,
            guardrails=("Avoid blanket discounts for this segment.",),
        ),
        priority=5,
    )
)

register(
    Rule(
        "targeted_coupons",
        lambda c: _deal_dependent(c) and c.revenue_index < 1.0,
        lambda c: _action(
            c,
            "targeted_coupons",
            "Move to targeted coupons and cap discount depth",
            f"{c.deal_share:.0%} of their purchases use a deal and they bring less revenue than "
            "their headcount; targeted, capped offers protect margin.",
            "protect margin",
            c.revenue_exposed or 0.0,
            discount=True,
        ),
        priority=4,
    )
)

register(
    Rule(
        "win_back",
        lambda c: (
            c.recency_z is not None
            and c.recency_z >= 0.5
            and c.avg_revenue >= 0.5 * c.population_avg_revenue
        ),
        lambda c: _action(
            c,
            "win_back",
            "Run a win-back programme before they are gone",
            "They have not bought for much longer than average but used to spend; a personal "
            "reactivation offer costs less than acquiring their replacement.",
            "protect revenue",
            0.25 * c.revenue,
        ),
        priority=3,
    )
)

register(
    Rule(
        "prioritise_campaign",
        lambda c: (
            c.response_probability is not None
            and c.population_response_probability is not None
            and c.response_probability >= 1.25 * c.population_response_probability
        ),
        lambda c: _action(
            c,
            "prioritise_campaign",
            "Prioritise them in the next campaign",
            f"Their expected response ({c.response_probability:.0%}) is well above average "
            f"({c.population_response_probability:.0%}).",
            "increase revenue",
            c.customers
            * (c.response_probability or 0.0)
            * (c.revenue_per_response or c.avg_revenue),
        ),
        priority=4,
    )
)

register(
    Rule(
        "nurture_new",
        lambda c: c.tenure_z is not None and c.tenure_z <= -0.5,
        lambda c: _action(
            c,
            "nurture_new",
            "Onboard and nurture: turn first purchases into habits",
            "They joined recently; the next few purchases decide whether they stay.",
            "increase revenue",
            0.15 * c.revenue,
        ),
        priority=2,
    )
)

register(
    Rule(
        "channel_focus",
        lambda c: c.dominant_channel is not None and (c.dominant_channel_index or 0.0) >= 1.3,
        lambda c: _action(
            c,
            "channel_focus",
            f"Meet them in the {c.dominant_channel} channel first",
            f"They use {c.dominant_channel} {c.dominant_channel_index:.1f}x as much as the average "
            "customer; concentrate contact and assortment there.",
            "reduce cost",
            0.05 * c.revenue,
        ),
        priority=1,
    )
)

register(
    Rule(
        "cross_sell",
        lambda c: c.variety_z is not None and c.variety_z <= -0.5,
        lambda c: _action(
            c,
            "cross_sell",
            "Cross-sell the categories they do not buy yet",
            "They buy from fewer categories than average; bundles and recommendations widen the "
            "basket.",
            "increase revenue",
            0.08 * c.revenue,
        ),
        priority=1,
    )
)

register(
    Rule(
        "reduce_contact",
        lambda c: (
            c.revenue_index < 0.6
            and (
                c.response_probability is None
                or c.population_response_probability is None
                or c.response_probability < 0.75 * c.population_response_probability
            )
        ),
        lambda c: _action(
            c,
            "reduce_contact",
            "Reduce contact frequency and cost to serve",
            "Low value and low expected response: spend less on reaching them and move budget to "
            "segments that respond.",
            "reduce cost",
            0.05 * c.revenue,
        ),
        priority=0,
    )
)

register(
    Rule(
        "test_and_learn",
        lambda c: True,
        lambda c: _action(
            c,
            "test_and_learn",
            "Run a small controlled test before scaling any offer",
            "No rule singles this segment out strongly; a test with a hold-out group tells what "
            "moves it.",
            "increase revenue",
            0.02 * c.revenue,
        ),
        priority=-10,
    )
)


def recommend(context: SegmentContext) -> tuple[Action, ...]:
    """Two to four actions for a segment, highest revenue at stake first."""
    matched = [(rule, rule.build(context)) for rule in RULES.values() if rule.applies(context)]
    specific = [m for m in matched if m[0].id != "test_and_learn"]
    chosen = specific if len(specific) >= MIN_ACTIONS else matched
    chosen.sort(key=lambda m: (-m[1].revenue_at_stake, -m[0].priority, m[0].id))
    return tuple(a for _, a in chosen[:MAX_ACTIONS])


def rank(actions: list[Action], *, top: int = 3) -> list[Action]:
    """Actions across segments, largest revenue at stake first (stable for ties)."""
    return sorted(actions, key=lambda a: (-a.revenue_at_stake, a.segment, a.rule))[:top]
