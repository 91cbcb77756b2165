"""Channel preference mix per segment, from the purchase counts in the segment profiles."""

from __future__ import annotations

from dataclasses import dataclass

from sistack.domain.profiles import SegmentProfile

PREFIX = "purchases_"
# Keys follow the fields of ``ChannelMix`` (``channels.shares`` = the ``shares`` of ``channels``).
DEFINITIONS = {
    "channels.purchases": "Purchases counted over all channels: the base of the channel shares.",
    "channels.shares": "Share of the segment's purchases made in each channel.",
    "channels.index": "Channel share in the segment divided by the channel's share overall: "
    "above 1 the segment over-uses the channel.",
    "channels.dominant": "The channel with the largest share of the segment's purchases.",
    "web_visits_per_purchase": "Monthly website visits per purchase (a browsing-to-buying ratio).",
}


@dataclass(frozen=True)
class ChannelMix:
    segment: int
    purchases: float
    shares: dict[str, float]
    index: dict[str, float]
    dominant: str | None
    web_visits_per_purchase: float | None


def channel_names(profile: SegmentProfile) -> list[str]:
    return sorted(c.removeprefix(PREFIX) for c in profile.sums if c.startswith(PREFIX))


def channel_mix(profiles: tuple[SegmentProfile, ...]) -> tuple[ChannelMix, ...]:
    """Population (first) and per-segment channel shares, index and dominant channel."""
    names = channel_names(profiles[0])
    if not names:
        return ()
    overall = _shares(profiles[0], names)
    out = []
    for p in profiles:
        total = sum(p.sums[PREFIX + n] for n in names)
        shares = _shares(p, names)
        index = {n: (shares[n] / overall[n]) if overall[n] > 0 else float("nan") for n in names}
        dominant = max(names, key=lambda n: (shares[n], n)) if total > 0 else None
        visits = p.sums.get("web_visits")
        # web_visits is a monthly rate per customer; per purchase it is compared with purchases
        # per customer over the data's period, so this is a ratio, not a conversion rate.
        per_purchase = visits / total if visits is not None and total > 0 else None
        out.append(ChannelMix(p.segment, total, shares, index, dominant, per_purchase))
    return tuple(out)


def _shares(profile: SegmentProfile, names: list[str]) -> dict[str, float]:
    total = sum(profile.sums[PREFIX + n] for n in names)
    return {n: (profile.sums[PREFIX + n] / total if total > 0 else 0.0) for n in names}
