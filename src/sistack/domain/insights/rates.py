"""Observed promotion response: acceptance rates with Wilson score intervals.

Counts of customers who accepted, per segment and per campaign, with a Wilson interval. These
need no model and exist for any data with 0/1 acceptance columns; the modelled likelihood lives
in ``response`` and is never mixed with them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import norm

ANY_CAMPAIGN = "any_campaign"


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class RateInterval:
    """A rate ``successes / trials`` with its Wilson score interval; all nan when trials == 0."""

    successes: int
    trials: int
    rate: float
    low: float
    high: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: an undefined rate (no trials) becomes ``None``, never a made-up number."""
        return {
            "successes": self.successes,
            "trials": self.trials,
            "rate": _finite_or_none(self.rate),
            "low": _finite_or_none(self.low),
            "high": _finite_or_none(self.high),
        }


def wilson_interval(successes: int, trials: int, *, confidence: float = 0.95) -> RateInterval:
    """Wilson score interval for a binomial proportion.

    Chosen over the normal approximation because it stays inside [0, 1] and behaves at 0 and
    at ``trials`` successes, which are common for small segments and rare campaigns.

    Args:
        successes: number of successes (0..trials).
        trials: number of trials; 0 gives rate, low and high = nan.
        confidence: two-sided confidence level in (0, 1).

    Raises:
        ValueError: counts out of range or confidence outside (0, 1).
    """
    if trials < 0 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials, got {successes}/{trials}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if trials == 0:
        return RateInterval(int(successes), 0, math.nan, math.nan, math.nan)
    z = float(norm.ppf(0.5 + confidence / 2.0))
    p = successes / trials
    z2n = z * z / trials
    denom = 1.0 + z2n
    center = (p + z2n / 2.0) / denom
    half = z * math.sqrt(p * (1.0 - p) / trials + z2n / (4.0 * trials)) / denom
    # At 0 and at ``trials`` successes the exact bound is 0 or 1; skip the rounding residue.
    low = 0.0 if successes == 0 else max(0.0, center - half)
    high = 1.0 if successes == trials else min(1.0, center + half)
    return RateInterval(int(successes), int(trials), p, low, high)


def _as_labels(values: np.ndarray, what: str) -> np.ndarray:
    """Float array of 0, 1 or nan (unknown)."""
    arr = np.asarray(values, dtype=np.float64).ravel()
    if not ((arr == 0.0) | (arr == 1.0) | np.isnan(arr)).all():
        raise ValueError(f"{what} must be 0, 1 or missing")
    return arr


def group_index(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(labels, return_inverse=True)``; for small non-negative integers (segment
    ids) by counting instead of sorting (10M customers: a fifth of the time)."""
    if labels.dtype.kind in "iu" and labels.size and labels.min() >= 0 and labels.max() < 2**20:
        present = np.flatnonzero(np.bincount(labels))
        position = np.zeros(int(present[-1]) + 1, dtype=np.intp)
        position[present] = np.arange(len(present))
        return present.astype(labels.dtype), position[labels]
    ids, inverse = np.unique(labels, return_inverse=True)
    return ids, inverse


@dataclass(frozen=True)
class SegmentResponse:
    """Expected (model) and observed (label) response of one segment.

    ``observed`` counts responders among customers with a known label (``successes`` /
    ``trials``); it is ``None`` when no label was given.
    """

    segment: int
    customers: int
    expected_rate: float
    expected_responders: float
    observed: RateInterval | None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["observed"] = None if self.observed is None else self.observed.to_dict()
        return data


def segment_response(
    prob: np.ndarray, segment: np.ndarray, y: np.ndarray | None
) -> tuple[SegmentResponse, ...]:
    """Per segment id (ascending): mean and sum of response probability, observed rate.

    Args:
        prob: calibrated response probability per customer.
        segment: segment id per customer.
        y: observed 0/1 response per customer (nan = unknown, ignored), or ``None``.
    """
    p = np.asarray(prob, dtype=np.float64).ravel()
    seg = np.asarray(segment).ravel()
    labels = None if y is None else _as_labels(y, "response labels")
    if len(seg) != len(p) or (labels is not None and len(labels) != len(p)):
        raise ValueError("prob, segment and y must have one value per customer")
    out = []
    for s in np.unique(seg):
        mask = seg == s
        observed = None
        if labels is not None:
            known = labels[mask]
            known = known[~np.isnan(known)]
            observed = wilson_interval(int(known.sum()), len(known))
        out.append(
            SegmentResponse(
                segment=int(s),
                customers=int(mask.sum()),
                expected_rate=float(p[mask].mean()),
                expected_responders=float(p[mask].sum()),
                observed=observed,
            )
        )
    return tuple(out)


@dataclass(frozen=True)
class CampaignRate:
    """Acceptance of one campaign in one segment.

    ``interval.successes`` is the number of acceptances and ``interval.trials`` the number of
    customers whose value is known; ``customers`` counts every customer of the segment.
    """

    segment: int
    campaign: str
    customers: int
    interval: RateInterval

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["interval"] = self.interval.to_dict()
        return data


def campaign_rates(
    accepted: Mapping[str, np.ndarray], segment: np.ndarray
) -> tuple[CampaignRate, ...]:
    """Acceptance rate with Wilson interval per segment (ascending) and campaign.

    Campaigns come in the mapping's order, followed by ``ANY_CAMPAIGN``: a customer accepted
    "any" campaign if any value is 1, did not if every value is 0, and is unknown otherwise.

    Args:
        accepted: campaign name -> 0/1 per customer (nan = unknown).
        segment: segment id per customer.
    """
    if not accepted:
        return ()
    if ANY_CAMPAIGN in accepted:
        raise ValueError(f"'{ANY_CAMPAIGN}' is reserved for the any-campaign rate")
    seg = np.asarray(segment).ravel()
    columns = {name: _as_labels(v, f"campaign '{name}'") for name, v in accepted.items()}
    if any(len(v) != len(seg) for v in columns.values()):
        raise ValueError("every campaign column needs one value per customer")
    any_yes = np.zeros(len(seg), dtype=bool)
    all_known = np.ones(len(seg), dtype=bool)
    for values in columns.values():  # column by column: no campaigns x customers copy
        any_yes |= values == 1.0
        all_known &= ~np.isnan(values)
    columns[ANY_CAMPAIGN] = np.where(any_yes, 1.0, np.where(all_known, 0.0, np.nan))
    # One counting pass per campaign (integer counts, so the same numbers as masking).
    ids, index = group_index(seg)
    customers = np.bincount(index, minlength=len(ids))
    counts = {}
    for name, values in columns.items():
        known = ~np.isnan(values)
        yes = np.bincount(index, weights=(values == 1.0), minlength=len(ids))
        counts[name] = (yes, np.bincount(index, weights=known, minlength=len(ids)))
    out = []
    for j, s in enumerate(ids.tolist()):
        for name, (yes, trials) in counts.items():
            out.append(
                CampaignRate(
                    segment=int(s),
                    campaign=name,
                    customers=int(customers[j]),
                    interval=wilson_interval(int(yes[j]), int(trials[j])),
                )
            )
    return tuple(out)
