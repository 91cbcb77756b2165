"""What a lever is, and the registry the engine finds levers in.

A lever is one Pydantic model (its parameters, with bounds, descriptions and defaults: a UI
renders its sliders from :func:`lever_catalogue` without hard-coding anything) plus one method,
:meth:`Lever.apply`, that returns the lever's effect. Adding a lever is one class and one call to
:func:`register`; the built-in levers register the same way.

Effects are **deltas relative to the baseline** (revenue, margin, cost per segment) and the
deltas of several levers **add up**: each lever is computed against the baseline, not against
the result of the levers before it, so the order of levers does not matter and interactions
between levers (e.g. a price change on top of a discount change in the same segment) are not
modelled.

Every array a lever sees or returns has shape ``(draws, k)``: a deterministic answer is one
draw at the point estimates, a Monte Carlo answer is the same code on many draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict
from scipy.special import ndtr, ndtri

from sistack.domain.simulation.baseline import Baseline, FloatArray
from sistack.domain.simulation.economics import Economics

ELASTICITY_SPREAD = 0.25  # Monte Carlo: elasticity ~ Normal(value, 0.25 |value|), truncated


# --- what a lever sees and returns ---------------------------------------------------------------


@dataclass(frozen=True)
class Guardrail:
    """A warning about a scenario: a risky move or an assumption outside what the data shows."""

    code: str
    message: str
    segment: int | None = None
    lever: str | None = None
    values: dict[str, float] = field(default_factory=dict)  # the numbers the message quotes

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "segment": self.segment,
            "lever": self.lever,
            "values": dict(self.values),
        }


@dataclass(frozen=True, eq=False)
class LeverContext:
    """Inputs of :meth:`Lever.apply`.

    Attributes:
        baseline: the per-segment baseline.
        economics: resolved economic assumptions of the scenario.
        response: response rates, shape (draws, k); NaN where unknown.
        budget: baseline marketing budget per segment, shape (k,).
        rng: this lever's own generator in a Monte Carlo run; ``None`` = point estimates.
    """

    baseline: Baseline
    economics: Economics
    response: FloatArray
    budget: FloatArray
    rng: np.random.Generator | None = None

    @property
    def draws(self) -> int:
        return int(self.response.shape[0])

    def zeros(self) -> FloatArray:
        """A (draws, k) array of zeros."""
        return np.zeros((self.draws, self.baseline.k))

    def elasticity(self, value: FloatArray | float, *, low: float, high: float) -> FloatArray:
        """Draws of an elasticity, shape ``(draws, *value.shape)``.

        Point estimates: ``value`` itself. Monte Carlo: Normal(value, 0.25 |value|) truncated to
        [low, high], drawn by inverting the normal CDF on the truncated range (exact, no
        rejection loop, so the number of random numbers used is fixed).
        """
        centre = np.asarray(value, dtype=np.float64)
        shape = (self.draws, *centre.shape)
        if self.rng is None:
            return np.broadcast_to(centre, shape).copy()
        scale = ELASTICITY_SPREAD * np.abs(centre)
        safe = np.where(scale > 0, scale, 1.0)
        lo, hi = ndtr((low - centre) / safe), ndtr((high - centre) / safe)
        u = lo + (hi - lo) * self.rng.random(shape)
        drawn = centre + safe * ndtri(np.clip(u, 1e-300, 1.0 - 1e-16))
        return np.where(scale > 0, np.clip(drawn, low, high), centre)


@dataclass(frozen=True, eq=False)
class LeverEffect:
    """A lever's deltas against the baseline, shape (draws, k) each, and what it assumed.

    Attributes:
        revenue: revenue delta.
        margin: margin delta (revenue minus cost of goods).
        cost: marketing cost delta (contacts, budget moved between segments).
        params: every parameter actually used, defaults filled in with point values; valid
            input for the same lever.
        filled: for each default that was filled, where the number came from.
        details: lever-specific outputs, shape (draws,) or (draws, k).
        warnings: guardrails raised by this lever.
        serving_cost: cost-to-serve delta (purchases moving between channels); ``None`` = 0.
            Kept apart from ``cost`` so that the marketing cost, and the ROI on it, keep their
            meaning when a lever saves more cost to serve than the marketing budget.
    """

    revenue: FloatArray
    margin: FloatArray
    cost: FloatArray
    params: dict[str, Any]
    filled: dict[str, str] = field(default_factory=dict)
    details: dict[str, FloatArray] = field(default_factory=dict)
    warnings: tuple[Guardrail, ...] = ()
    serving_cost: FloatArray | None = None


class Lever(BaseModel):
    """Base class of a lever: its fields are the lever's parameters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    description: ClassVar[str] = ""
    swing: ClassVar[tuple[str, ...]] = ()  # parameters a sensitivity analysis varies

    def apply(self, ctx: LeverContext) -> LeverEffect:
        """Per-segment deltas of this lever; see the module docstring."""
        raise NotImplementedError


# --- registry ------------------------------------------------------------------------------------

_REGISTRY: dict[str, type[Lever]] = {}
L = TypeVar("L", bound=type[Lever])


def register(lever: L) -> L:
    """Add a lever class to the registry (usable as a class decorator)."""
    if not lever.name or not lever.name.isidentifier():
        raise ValueError(f"lever {lever.__name__} needs a name that is an identifier")
    if lever.name in _REGISTRY and _REGISTRY[lever.name] is not lever:
        raise ValueError(f"lever {lever.name!r} is already registered")
    _REGISTRY[lever.name] = lever
    return lever


def known_levers() -> tuple[str, ...]:
    """Registered lever names, sorted."""
    return tuple(sorted(_REGISTRY))


def get_lever(name: str) -> type[Lever]:
    """The lever class registered under ``name``.

    Raises:
        KeyError: no such lever (the message lists the known ones).
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"unknown lever {name!r}; known levers: {', '.join(known_levers())}"
        ) from None


def lever_catalogue() -> list[dict[str, Any]]:
    """Every registered lever: name, title, description and the JSON schema of its parameters."""
    return [
        {
            "name": cls.name,
            "title": cls.title,
            "description": cls.description,
            "parameters": cls.model_json_schema(),
        }
        for cls in (_REGISTRY[n] for n in known_levers())
    ]


# --- helpers shared by levers ------------------------------------------------------------------


def per_segment(ctx: LeverContext, values: dict[int, float], default: float = 0.0) -> FloatArray:
    """A length-k array from a {segment id: value} mapping."""
    out = np.full(ctx.baseline.k, default, dtype=np.float64)
    if values:
        out[ctx.baseline.positions(list(values))] = list(values.values())
    return out


def unknown_response(segment: int, lever: str, use: str) -> Guardrail:
    """The warning for a lever that needs a response rate the data does not have."""
    return Guardrail(
        "unknown_response",
        f"Segment {segment} has no response rate in the data; {lever} counts its {use} as 0. "
        "Give the rate explicitly to include it.",
        segment=segment,
    )


def above_ceiling(ctx: LeverContext, segment: int, what: str, value: float) -> Guardrail | None:
    """Warn when a rate is above the highest response rate seen in the data."""
    ceiling = ctx.baseline.response_ceiling
    if math.isfinite(ceiling) and value > ceiling:
        return Guardrail(
            "outside_data_range",
            f"{what} {value:.4g} for segment {segment} is above the highest response rate "
            f"seen in the data ({ceiling:.4g}).",
            segment=segment,
            values={"value": value, "highest_seen": ceiling},
        )
    return None
