"""Scenarios: a list of levers, optional economics and Monte Carlo, and :func:`simulate`.

``simulate`` never touches customer rows: it works on the k-length arrays of a
:class:`~sistack.domain.simulation.baseline.Baseline`, so its cost grows with the number of
segments and draws only. A deterministic answer is one draw at the point estimates; with
``monte_carlo`` the same levers run again on draws of the uncertain inputs and every output gets
its P10/P50/P90 (see :mod:`.uncertainty`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Annotated, Any

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

# importing the built-in lever modules registers them
from sistack.domain.simulation import levers as _levers  # noqa: F401
from sistack.domain.simulation import operations as _operations  # noqa: F401
from sistack.domain.simulation import pricing as _pricing  # noqa: F401
from sistack.domain.simulation.baseline import Baseline, FloatArray
from sistack.domain.simulation.economics import Economics, EconomicSettings
from sistack.domain.simulation.guardrails import emptied_budgets
from sistack.domain.simulation.registry import (
    Lever,
    LeverContext,
    LeverEffect,
    get_lever,
    known_levers,
)
from sistack.domain.simulation.result import (
    DELTA_METRICS,
    METRICS,
    BaselineResult,
    BaselineSegment,
    Interval,
    LeverResult,
    Outcome,
    ScenarioResult,
    SegmentOutcome,
)
from sistack.domain.simulation.uncertainty import (
    QuantileBatch,
    generator,
    point_response,
    response_draws,
)
from sistack.domain.simulation.validation import validation_context, with_ranges

OVERALL_NAME = "All segments"
_PARAMS_SCHEMA = {
    "type": "object",
    "description": "The lever's parameters: see the lever catalogue for each lever's schema.",
}


class MonteCarlo(BaseModel):
    """How many draws of the uncertain inputs, from which seed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    draws: int = Field(default=2000, ge=100, le=20_000, description="Number of Monte Carlo draws.")
    seed: int = Field(default=0, ge=0, le=2**63 - 1, description="Seed of the random draws.")


class LeverSpec(BaseModel):
    """One lever of a scenario: ``{"lever": name, "params": {...}}``.

    ``params`` is validated into the lever's own model, so after validation it is a
    :class:`~sistack.domain.simulation.registry.Lever` instance.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    lever: str = Field(description="Registered lever name.")
    params: Annotated[SerializeAsAny[Lever], WithJsonSchema(_PARAMS_SCHEMA)] = Field(
        default_factory=dict, validate_default=True, description="The lever's parameters."
    )

    @field_validator("lever")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in known_levers():
            raise ValueError(f"unknown lever {value!r}; known levers: {', '.join(known_levers())}")
        return value

    @field_validator("params", mode="before")
    @classmethod
    def _parse(cls, value: Any, info: ValidationInfo) -> Lever:
        name = info.data.get("lever")
        if name is None:  # the lever name is already reported as invalid
            return Lever()
        lever = get_lever(name)
        if isinstance(value, Lever):
            value = value.model_dump(exclude_unset=True)
        try:
            return lever.model_validate(value, context=info.context)
        except ValidationError as exc:
            raise with_ranges(lever, lever.name, exc) from None


class Scenario(BaseModel):
    """A what-if: levers (applied together, their deltas add up), economics, Monte Carlo."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    levers: list[LeverSpec] = Field(min_length=1, description="At least one lever.")
    economics: EconomicSettings | None = Field(
        default=None, description="Overrides of the baseline's economic assumptions."
    )
    monte_carlo: MonteCarlo | None = Field(
        default=None, description="Draws of the uncertain inputs; omitted = point estimates only."
    )


def validate_scenario(data: Mapping[str, Any] | Scenario, baseline: Baseline) -> Scenario:
    """Validate a scenario against a baseline: bounds, segment ids, channels, lever names.

    Raises:
        pydantic.ValidationError: the location names the field; the message the whole allowed
            range (lever parameters, economics, Monte Carlo), the segment ids, channels or
            levers.
    """
    raw = data.model_dump(exclude_unset=True) if isinstance(data, Scenario) else dict(data)
    try:
        override = (
            EconomicSettings.model_validate(raw["economics"])
            if raw.get("economics") is not None
            else None
        )
    except ValidationError:
        override = None  # reported with its location by the validation below
    context = validation_context(baseline, baseline.economics_for(override))
    try:
        return Scenario.model_validate(raw, context=context)
    except ValidationError as exc:
        raise with_ranges(Scenario, None, exc) from None


def simulate(baseline: Baseline, scenario: Scenario) -> ScenarioResult:
    """Apply a scenario's levers to the baseline and compare.

    Args:
        baseline: per-segment inputs.
        scenario: the levers, economics overrides and Monte Carlo settings.

    Raises:
        pydantic.ValidationError: a lever refers to a segment or channel the baseline lacks.
    """
    scenario = validate_scenario(scenario, baseline)
    economics = baseline.economics_for(scenario.economics)
    levers = [spec.params for spec in scenario.levers]
    budget = baseline.budget(economics)
    point = _effects(baseline, economics, budget, levers, point_response(baseline), seed=None)
    mc = scenario.monte_carlo
    draws = None
    if mc is not None:
        response = response_draws(baseline, draws=mc.draws, seed=mc.seed)
        draws = _effects(baseline, economics, budget, levers, response, seed=mc.seed)
    return _assemble(baseline, economics, budget, levers, point, draws, mc)


def baseline_result(baseline: Baseline) -> BaselineResult:
    """The baseline's own numbers, with no lever: per segment and overall (segment 0).

    The same table :func:`simulate` reports as ``baseline`` for a scenario without economic
    overrides, so the two always agree to the last bit.
    """
    economics = baseline.economics
    budget = baseline.budget(economics)
    margin = baseline.revenue * economics.margin_rate
    table = _table(baseline.revenue, margin, budget, np.zeros(baseline.k))
    customers = (*baseline.customers.tolist(), float(baseline.customers.sum()))
    names = (*baseline.names, OVERALL_NAME)
    rows = [
        BaselineSegment(seg, names[j], customers[j], Outcome(*(float(v) for v in table[j])))
        for j, seg in enumerate((*baseline.ids, 0))
    ]
    return BaselineResult(overall=rows[-1], segments=tuple(rows[:-1]), economics=economics)


def _effects(
    baseline: Baseline,
    economics: Economics,
    budget: FloatArray,
    levers: list[Lever],
    response: FloatArray,
    *,
    seed: int | None,
) -> list[LeverEffect]:
    out = []
    for i, lever in enumerate(levers):
        rng = None if seed is None else generator(seed, i + 1)
        ctx = LeverContext(baseline, economics, response, budget, rng)
        out.append(lever.apply(ctx))
    return out


def _roi(profit: FloatArray, cost: FloatArray) -> FloatArray:
    return np.divide(profit, cost, out=np.full(np.shape(profit), np.nan), where=cost > 0)


def _table(
    revenue: FloatArray, margin: FloatArray, cost: FloatArray, serving: FloatArray
) -> FloatArray:
    """Stack (..., k) revenue, margin, marketing cost and serving-cost change into
    (..., k + 1, 6) metrics (the order of ``METRICS``) with the overall row last."""
    parts = [
        np.concatenate([x, x.sum(axis=-1, keepdims=True)], axis=-1)
        for x in (revenue, margin, cost, serving)
    ]
    profit = parts[1] - parts[2] - parts[3]
    return np.stack([*parts, profit, _roi(profit, parts[2])], axis=-1)


def _interval(q: FloatArray) -> Interval:
    return Interval(float(q[0]), float(q[1]), float(q[2]))


def _serving(effect: LeverEffect) -> FloatArray:
    return effect.serving_cost if effect.serving_cost is not None else np.zeros_like(effect.cost)


def _sum(arrays: list[FloatArray]) -> FloatArray:
    return sum(arrays, start=np.zeros(1))


def _assemble(
    baseline: Baseline,
    economics: Economics,
    budget: FloatArray,
    levers: list[Lever],
    point: list[LeverEffect],
    draws: list[LeverEffect] | None,
    mc: MonteCarlo | None,
) -> ScenarioResult:
    margin = baseline.revenue * economics.margin_rate
    base = _table(baseline.revenue, margin, budget, np.zeros(baseline.k))

    def table(effects: list[LeverEffect]) -> FloatArray:
        # a marketing budget cannot go below 0: emptied_budgets warns where it would
        return _table(
            baseline.revenue + _sum([e.revenue for e in effects]),
            margin + _sum([e.margin for e in effects]),
            np.maximum(budget + _sum([e.cost for e in effects]), 0.0),
            _sum([_serving(e) for e in effects]) + np.zeros(baseline.k),
        )

    scen = table(point)[0]
    q: dict[str, FloatArray] = {}
    if draws is not None:
        cols = QuantileBatch()
        cols.add("scenario", table(draws))
        for i, effect in enumerate(draws):
            cols.add(f"lever{i}", _lever_totals(effect))
            for key, value in effect.details.items():
                cols.add(f"lever{i}.{key}", value)
        q = cols.quantiles()
    names = (*baseline.names, OVERALL_NAME)
    outcomes = []
    for j, seg in enumerate((*baseline.ids, 0)):
        s_int = d_int = None
        if q:
            sq = q["scenario"][:, j, :]  # (3, metrics)
            s_int = {m: _interval(sq[:, n]) for n, m in enumerate(METRICS)}
            d_int = {m: _interval(sq[:, n] - base[j, n]) for n, m in enumerate(METRICS)}
        outcomes.append(
            SegmentOutcome(
                segment=seg,
                name=names[j],
                baseline=Outcome(*(float(v) for v in base[j])),
                scenario=Outcome(*(float(v) for v in scen[j])),
                delta=Outcome(*(float(v) for v in scen[j] - base[j])),
                scenario_interval=s_int,
                delta_interval=d_int,
            )
        )
    results = [
        _lever_result(baseline, lever, effect, q, i)
        for i, (lever, effect) in enumerate(zip(levers, point, strict=True))
    ]
    warnings = tuple(
        dataclasses.replace(w, lever=lever.name)
        for lever, effect in zip(levers, point, strict=True)
        for w in effect.warnings
    ) + tuple(emptied_budgets(baseline, budget, levers, [e.cost[0] for e in point]))
    return ScenarioResult(
        overall=outcomes[-1],
        segments=tuple(outcomes[:-1]),
        levers=tuple(results),
        economics=economics,
        warnings=warnings,
        monte_carlo=None if mc is None else {"draws": mc.draws, "seed": mc.seed},
    )


def _lever_totals(effect: LeverEffect) -> FloatArray:
    """(draws, 5): revenue, margin, cost, serving-cost and profit delta of one lever, summed
    over segments (the order of ``DELTA_METRICS``)."""
    r, m, c, s = (
        x.sum(axis=1) for x in (effect.revenue, effect.margin, effect.cost, _serving(effect))
    )
    return np.stack([r, m, c, s, m - c - s], axis=1)


def _lever_result(
    baseline: Baseline, lever: Lever, effect: LeverEffect, q: dict[str, FloatArray], i: int
) -> LeverResult:
    def by_segment(values: FloatArray, make: Any) -> dict[int, Any]:
        return {seg: make(values[..., j]) for j, seg in enumerate(baseline.ids)}

    totals = _lever_totals(effect)[0]
    details: dict[str, Any] = {}
    for key, value in effect.details.items():
        details[key] = float(value[0]) if value.ndim == 1 else by_segment(value[0], float)
    delta_int = details_int = None
    if q:
        delta_int = {m: _interval(q[f"lever{i}"][:, n]) for n, m in enumerate(DELTA_METRICS)}
        details_int = {}
        for key in effect.details:
            dq = q[f"lever{i}.{key}"]
            details_int[key] = _interval(dq) if dq.ndim == 1 else by_segment(dq, _interval)
    return LeverResult(
        lever=lever.name,
        params=effect.params,
        filled=dict(effect.filled),
        delta={m: float(totals[n]) for n, m in enumerate(DELTA_METRICS)},
        details=details,
        delta_interval=delta_int,
        details_interval=details_int,
    )
