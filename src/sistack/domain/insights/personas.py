"""Personas: a name and a story for each segment, generated from its statistics.

The name is a value tier (from the revenue index) plus the one or two most distinguishing traits:
the features whose segment mean differs most from the population mean, in population standard
deviations. Nothing depends on cluster numbers, so permuting rows or labels gives the same
personas, and names change only when the statistics do.
"""

from __future__ import annotations

from dataclasses import dataclass

from sistack.domain.profiles import SegmentProfile

MIN_TRAIT_Z = 0.35  # below this a difference is not called a trait

# feature -> (label when higher than average, label when lower), None = not named that way.
TRAITS: dict[str, tuple[str | None, str | None]] = {
    "deal_share": ("Deal-seeking", "Full-price"),
    "promo_rate": ("Promo-responsive", None),
    "recency_days": ("Lapsed", "Recently active"),
    "frequency": ("Frequent", "Occasional"),
    "avg_order_value": ("Big-basket", "Small-basket"),
    "tenure_days": ("Long-standing", "New"),
    "household_children": ("Families", "No kids at home"),
    "income": ("Affluent", "Budget"),
    "age": ("Older", "Young"),
    "variety": ("Broad-basket", "Narrow-basket"),
    "web_visits": ("Web browsers", None),
    "inter_purchase_days": ("Infrequent", None),
}
CHANNEL_TRAIT = "{channel}-first"
CHANNEL_TRAITS = {"store": "Store loyal", "catalog": "Catalog loyal", "web": "Web-first"}

TIERS = ((1.5, "Premium"), (1.1, "High-value"), (0.8, "Mid-value"), (0.0, "Low-value"))

DEFINITIONS = {
    "value_tier": "From the revenue index: Premium >= 1.5, High-value >= 1.1, Mid-value >= 0.8, "
    "Low-value below.",
    "traits.z": "Difference between the segment's mean and the population mean, in population "
    "standard deviations.",
    "traits.segment_mean": "The segment's mean of the trait's feature.",
    "traits.population_mean": "The mean of the trait's feature over all customers.",
    "traits.ratio": "Segment mean divided by the population mean: 2 = twice the average.",
}


@dataclass(frozen=True)
class Trait:
    feature: str
    label: str
    segment_mean: float
    population_mean: float
    z: float
    ratio: float | None


@dataclass(frozen=True)
class Persona:
    segment: int
    name: str
    tier: str
    traits: tuple[Trait, ...]
    narrative: str


def value_tier(revenue_index: float) -> str:
    for threshold, name in TIERS:
        if revenue_index >= threshold:
            return name
    return TIERS[-1][1]


def trait_label(feature: str, z: float) -> str | None:
    if feature.startswith("share_"):
        channel = feature.removeprefix("share_")
        if z <= 0:
            return None
        return CHANNEL_TRAITS.get(channel, CHANNEL_TRAIT.format(channel=channel.capitalize()))
    high, low = TRAITS.get(feature, (None, None))
    return high if z > 0 else low


def distinguishing_traits(
    profile: SegmentProfile, population: SegmentProfile, stds: dict[str, float]
) -> tuple[Trait, ...]:
    """All nameable traits of a segment, strongest first (ties broken by feature name)."""
    traits = []
    for feature, mean in profile.means.items():
        std = stds.get(feature, 0.0)
        pop = population.means.get(feature)
        if pop is None or not std > 0 or mean != mean:
            continue
        z = (mean - pop) / std
        label = trait_label(feature, z)
        if label is None or abs(z) < MIN_TRAIT_Z:
            continue
        ratio = mean / pop if pop else None
        traits.append(Trait(feature, label, mean, pop, z, ratio))
    return tuple(sorted(traits, key=lambda t: (-abs(t.z), t.feature)))


def _narrative(profile: SegmentProfile, index: float, traits: tuple[Trait, ...]) -> str:
    lead = (
        f"{profile.customer_share:.0%} of customers bring {profile.revenue_share:.0%} of revenue "
        f"(revenue index {index:.2f})."
    )
    parts = []
    for t in traits[:3]:
        if t.ratio is not None and t.ratio > 0 and t.feature not in ("age",):
            how = f"{t.ratio:.1f}x the average" if t.ratio >= 1 else f"{t.ratio:.0%} of the average"
        else:
            how = f"{t.segment_mean:.3g} against {t.population_mean:.3g} overall"
        parts.append(f"{t.label.lower()} ({_feature_words(t.feature)} {how})")
    if not parts:
        return lead + " Their behaviour is close to the average customer's."
    return lead + " They are " + "; ".join(parts) + "."


def _feature_words(feature: str) -> str:
    if feature.startswith("share_"):
        return f"{feature.removeprefix('share_')} share of purchases"
    return feature.replace("_", " ")


def build_personas(
    profiles: tuple[SegmentProfile, ...], stds: dict[str, float]
) -> tuple[Persona, ...]:
    """One persona per segment (profiles[0] is the population), names unique within the run."""
    population, segments = profiles[0], profiles[1:]
    drafts = []
    for p in segments:
        index = p.revenue_share / p.customer_share if p.customer_share > 0 else 0.0
        traits = distinguishing_traits(p, population, stds)
        drafts.append((p, index, value_tier(index), traits))
    names: dict[int, str] = {}
    depth = {p.segment: min(2, len(traits)) for p, _, _, traits in drafts}
    # Add traits to clashing names until they differ; as a last resort number them.
    for _ in range(4):
        for p, _, tier, traits in drafts:
            labels = [t.label for t in traits[: depth[p.segment]]]
            names[p.segment] = f"{tier}: {' & '.join(labels)}" if labels else f"{tier}: Average"
        clashes = [s for s, n in names.items() if list(names.values()).count(n) > 1]
        if not clashes:
            break
        for seg in clashes:
            depth[seg] += 1
    seen: dict[int, str] = {}
    for seg in sorted(names):
        name = names[seg]
        if name in seen.values():
            names[seg] = f"{name} ({seg})"
        seen[seg] = names[seg]
    return tuple(
        Persona(p.segment, names[p.segment], tier, traits[:3], _narrative(p, index, traits))
        for p, index, tier, traits in drafts
    )
