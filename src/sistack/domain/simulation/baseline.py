"""The simulation's starting point: per-segment numbers read from a run's profiles and insights.

A :class:`Baseline` holds one value per segment (k of them) and nothing per customer, so every
what-if computed from it costs the same for 2,000 customers as for 10 million. It is built once
per run from the persisted documents (``profiles.json`` and ``insights.json``) by
:meth:`Baseline.from_documents`.

Response rates and their uncertainty (a Beta posterior per segment):

* an ``observed`` label count (``successes`` of ``trials``): alpha = successes + 1,
  beta = trials - successes + 1 (uniform prior);
* basis ``"model"``: the Beta is centred on the model's expected rate p with the segment's
  labelled count n as effective sample size: alpha = p n + 1, beta = (1 - p) n + 1;
* basis ``"campaign_acceptance"``: the any-campaign acceptance count, as for a label;
* an expected rate without any count is used as a fixed number (no uncertainty);
* no expected rate: rate, alpha and beta are NaN and the rate is unknown. Levers that need it
  say so in a warning instead of inventing a number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import NDArray

from sistack.domain.simulation.economics import Economics, EconomicSettings, resolve_economics
from sistack.errors import InputError

FloatArray = NDArray[np.float64]
PURCHASES = "purchases_"
ANY_CAMPAIGN = "any_campaign"
DATA_ECONOMICS = {
    "cost_contact": "cost_per_contact",
    "revenue_per_response": "revenue_per_response",
}


@dataclass(frozen=True, eq=False)
class Baseline:
    """Per-segment inputs of the simulation (arrays of length k, segment ids in order).

    Attributes:
        segments: segment ids, ascending.
        names: persona name per segment.
        customers: customers per segment.
        revenue: revenue per segment over the data's period.
        response_rate: expected response rate (NaN: unknown).
        response_alpha: Beta posterior alpha of the response rate (NaN: no count known).
        response_beta: Beta posterior beta.
        response_observed: observed response rate among labelled customers (NaN: no label).
        deal_share: mean share of purchases made on a deal (NaN: unknown).
        population_deal_share: the same for all customers.
        channels: channel names, the columns of ``purchases``.
        purchases: purchases per segment and channel, shape (k, channels).
        value_12m: expected 12-month value of the segment's customers, summed (NaN: unknown).
        settings: the economic settings the baseline was built with.
        data_economics: economic numbers found in the data (contact cost, value of a response).
        economics: ``settings`` resolved against the data and the defaults.
    """

    segments: NDArray[np.int64]
    names: tuple[str, ...]
    customers: FloatArray
    revenue: FloatArray
    response_rate: FloatArray
    response_alpha: FloatArray
    response_beta: FloatArray
    response_observed: FloatArray
    deal_share: FloatArray
    population_deal_share: float
    channels: tuple[str, ...]
    purchases: FloatArray
    value_12m: FloatArray
    settings: EconomicSettings
    data_economics: dict[str, float]
    economics: Economics

    def __post_init__(self) -> None:
        k = len(self.segments)
        if len(self.names) != k:
            raise ValueError(f"names has {len(self.names)} entries for {k} segments")
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                if value.shape[0] != k:
                    raise ValueError(f"{f.name} has {value.shape[0]} rows for {k} segments")
                value.flags.writeable = False  # frozen means the numbers too
        if self.purchases.shape != (k, len(self.channels)):
            raise ValueError(f"purchases must have shape ({k}, {len(self.channels)})")

    @property
    def k(self) -> int:
        """Number of segments."""
        return len(self.segments)

    @property
    def ids(self) -> tuple[int, ...]:
        """Segment ids as plain ints (what validation messages list)."""
        return tuple(int(s) for s in self.segments)

    def positions(self, ids: list[int] | tuple[int, ...]) -> NDArray[np.intp]:
        """Array positions of segment ``ids`` (which must exist)."""
        lookup = {s: i for i, s in enumerate(self.ids)}
        return np.array([lookup[int(s)] for s in ids], dtype=np.intp)

    @property
    def response_ceiling(self) -> float:
        """Highest response rate seen in the data (expected or observed); NaN if none."""
        rates = np.concatenate([self.response_rate, self.response_observed])
        rates = rates[np.isfinite(rates)]
        return float(rates.max()) if rates.size else math.nan

    def economics_for(self, override: EconomicSettings | None) -> Economics:
        """The baseline's economics with the fields ``override`` sets replaced."""
        if override is None:
            return self.economics
        merged = self.settings.merged(override)
        return resolve_economics(merged, data=self.data_economics, channels=self.channels)

    def budget(self, economics: Economics) -> FloatArray:
        """Marketing budget per segment: customers x contacts per customer x cost per contact."""
        return self.customers * (economics.contacts_per_customer * economics.cost_per_contact)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready per-segment view (NaN becomes ``None``)."""

        def num(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None

        rows = []
        for i, seg in enumerate(self.ids):
            rows.append(
                {
                    "segment": seg,
                    "name": self.names[i],
                    "customers": float(self.customers[i]),
                    "revenue": float(self.revenue[i]),
                    "response_rate": num(self.response_rate[i]),
                    "response_alpha": num(self.response_alpha[i]),
                    "response_beta": num(self.response_beta[i]),
                    "deal_share": num(self.deal_share[i]),
                    "purchases": {
                        c: float(self.purchases[i, j]) for j, c in enumerate(self.channels)
                    },
                    "value_12m": num(self.value_12m[i]),
                }
            )
        return {
            "segments": rows,
            "channels": list(self.channels),
            "population_deal_share": num(self.population_deal_share),
            "economics": self.economics.to_dict(),
        }

    @classmethod
    def from_documents(
        cls,
        profiles_doc: dict[str, Any],
        insights_doc: dict[str, Any],
        *,
        settings: EconomicSettings | None = None,
    ) -> Baseline:
        """Build the baseline from a run's ``profiles`` and ``insights`` documents.

        Args:
            profiles_doc: ``{"profiles": [population, segment 1, ..., segment k]}``.
            insights_doc: ``{"segments": [...], "overall": {...}}`` as persisted by a run.
            settings: economic assumptions; ``None`` uses the data's numbers and the defaults.

        Raises:
            InputError: the documents do not describe segments 1..k consistently.
        """
        settings = settings or EconomicSettings()
        profiles = list(profiles_doc.get("profiles") or [])
        if not profiles or int(profiles[0].get("segment", -1)) != 0:
            raise InputError("profiles must start with the population (segment 0)")
        population, rows = profiles[0], sorted(profiles[1:], key=lambda p: int(p["segment"]))
        ids = [int(p["segment"]) for p in rows]
        if not ids or ids != list(range(1, len(ids) + 1)):
            raise InputError(f"profiles must describe segments 1..k, got {ids}")
        insights = {int(s["segment"]): s for s in insights_doc.get("segments") or []}
        if sorted(insights) != ids:
            raise InputError(
                f"insights describe segments {sorted(insights)}, profiles describe {ids}",
                details={"profiles": ids, "insights": sorted(insights)},
            )
        entries = [insights[s] for s in ids]
        channels = _channels(population, entries)
        response = np.array(
            [_response(e.get("response"), p) for e, p in zip(entries, rows, strict=True)],
            dtype=np.float64,
        ).reshape(len(ids), 4)
        overall = (insights_doc.get("overall") or {}).get("discount")
        data = _data_economics(population)
        return cls(
            segments=np.array(ids, dtype=np.int64),
            names=tuple(_name(e) for e in entries),
            customers=np.array([float(p["customers"]) for p in rows]),
            revenue=np.array([float(p["revenue"]) for p in rows]),
            response_rate=response[:, 0].copy(),
            response_alpha=response[:, 1].copy(),
            response_beta=response[:, 2].copy(),
            response_observed=response[:, 3].copy(),
            deal_share=np.array(
                [_deal_share(e.get("discount"), p) for e, p in zip(entries, rows, strict=True)]
            ),
            population_deal_share=_deal_share(overall, population),
            channels=channels,
            purchases=np.array(
                [_purchases(p, e, channels) for p, e in zip(rows, entries, strict=True)],
                dtype=np.float64,
            ).reshape(len(ids), len(channels)),
            value_12m=np.array([_value(e.get("value")) for e in entries]),
            settings=settings,
            data_economics=data,
            economics=resolve_economics(settings, data=data, channels=channels),
        )


def _num(value: Any) -> float:
    """A float, NaN for ``None`` or anything that is not a finite number."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out if math.isfinite(out) else math.nan


def _name(entry: dict[str, Any]) -> str:
    persona = entry.get("persona") or {}
    return str(persona.get("name") or f"Segment {entry['segment']}")


def _response(entry: dict[str, Any] | None, profile: dict[str, Any]) -> tuple[float, ...]:
    """(expected rate, alpha, beta, observed rate); see the module docstring for the rules."""
    nan = math.nan
    if not entry:
        return nan, nan, nan, nan
    rate = _num(entry.get("expected_rate"))
    observed = entry.get("observed") or {}
    trials = _num(observed.get("trials"))
    successes = _num(observed.get("successes"))
    observed_rate = successes / trials if trials > 0 else nan
    if not math.isfinite(rate):
        return nan, nan, nan, observed_rate
    alpha = beta = nan
    if entry.get("basis") == "model":
        labelled = trials if trials > 0 else _num((profile.get("non_null") or {}).get("response"))
        if labelled > 0:
            alpha, beta = rate * labelled + 1.0, (1.0 - rate) * labelled + 1.0
    elif trials > 0:
        alpha, beta = successes + 1.0, trials - successes + 1.0
    elif entry.get("basis") == "campaign_acceptance":
        for campaign in entry.get("campaigns") or []:
            interval = campaign.get("interval") or {}
            n, s = _num(interval.get("trials")), _num(interval.get("successes"))
            if campaign.get("campaign") == ANY_CAMPAIGN and n > 0:
                alpha, beta = s + 1.0, n - s + 1.0
    return rate, alpha, beta, observed_rate


def _deal_share(discount: dict[str, Any] | None, profile: dict[str, Any]) -> float:
    if discount and math.isfinite(_num(discount.get("mean_deal_share"))):
        return _num(discount["mean_deal_share"])
    return _num((profile.get("means") or {}).get("deal_share"))


def _channels(population: dict[str, Any], entries: list[dict[str, Any]]) -> tuple[str, ...]:
    sums = population.get("sums") or {}
    names = sorted(c.removeprefix(PURCHASES) for c in sums if c.startswith(PURCHASES))
    if names:
        return tuple(names)
    found = {c for e in entries for c in ((e.get("channels") or {}).get("shares") or {})}
    return tuple(sorted(found))


def _purchases(
    profile: dict[str, Any], entry: dict[str, Any], channels: tuple[str, ...]
) -> list[float]:
    sums = profile.get("sums") or {}
    if any(PURCHASES + c in sums for c in channels):
        return [_num(sums.get(PURCHASES + c, 0.0)) for c in channels]
    mix = entry.get("channels") or {}  # only shares persisted: shares x total purchases
    total, shares = _num(mix.get("purchases")), mix.get("shares") or {}
    return [total * _num(shares.get(c, 0.0)) for c in channels]


def _value(value: dict[str, Any] | None) -> float:
    return _num(((value or {}).get("value_12m") or {}).get("total"))


def _data_economics(population: dict[str, Any]) -> dict[str, float]:
    """Contact cost and value of a response from the population profile, when the data had them.

    Medians first (the number is constant in the usual layout), then means, then sum / count.
    """
    out: dict[str, float] = {}
    sums, counts = population.get("sums") or {}, population.get("non_null") or {}
    for column, name in DATA_ECONOMICS.items():
        candidates = [
            _num((population.get("medians") or {}).get(column)),
            _num((population.get("means") or {}).get(column)),
            _num(sums.get(column)) / _num(counts.get(column))
            if _num(counts.get(column)) > 0
            else math.nan,
        ]
        found = [c for c in candidates if math.isfinite(c) and c >= 0]
        if found:
            out[name] = found[0]
    return out
