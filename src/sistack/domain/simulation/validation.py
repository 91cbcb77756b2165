"""Validation shared by levers and scenarios: references to the baseline, ranges, messages.

Segment ids and channel names are checked against the baseline when a validation context is
given (:func:`validation_context`); without one only their type and bounds are checked, so a
scenario can be parsed before the run it applies to is known. Range errors name both ends of the
allowed range, read from the same JSON schema the UI renders its sliders from.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from sistack.domain.simulation.baseline import Baseline, FloatArray
from sistack.domain.simulation.economics import Economics
from sistack.errors import InputError

_RANGE_ERRORS = {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}


def _allowed(info: ValidationInfo, key: str) -> tuple[Any, ...] | None:
    context = info.context if isinstance(info.context, dict) else {}
    allowed = context.get(key)
    return tuple(allowed) if allowed is not None else None


def _check_segment(value: int, info: ValidationInfo) -> int:
    allowed = _allowed(info, "segments")
    if allowed is not None and value not in allowed:
        ids = ", ".join(str(s) for s in allowed)
        raise ValueError(f"unknown segment id {value}; allowed ids: {ids}")
    if value < 1:
        raise ValueError(f"segment ids are 1, 2, ..., k (the number of segments), got {value}")
    return value


def _check_channel(value: str, info: ValidationInfo) -> str:
    allowed = _allowed(info, "channels")
    if allowed is not None and value not in allowed:
        raise ValueError(f"unknown channel {value!r}; allowed channels: {', '.join(allowed)}")
    return value


SegmentId = Annotated[
    int, AfterValidator(_check_segment), WithJsonSchema({"type": "integer", "minimum": 1})
]
"""A segment id; checked against the baseline's ids when validated with a baseline context.

The lower bound is checked by the validator, not by ``Field(ge=1)``, so that segment 0 gets the
same answer as any other unknown id: the list of allowed ids."""
Channel = Annotated[str, AfterValidator(_check_channel)]
"""A channel name; checked against the baseline's channels when validated with a context."""
Rate = Annotated[float, Field(ge=0.0, le=1.0)]
Change = Annotated[float, Field(ge=-0.5, le=0.5)]


def validation_context(baseline: Baseline, economics: Economics) -> dict[str, Any]:
    """What lever validators check references and ranges against."""
    return {
        "segments": baseline.ids,
        "channels": baseline.channels,
        "current_discount_depth": economics.current_discount_depth,
    }


def _schema_node(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        node = defs[node["$ref"].rsplit("/", 1)[-1]]
    for option in node.get("anyOf", ()):
        if option.get("type") != "null":
            return _schema_node(option, defs)
    return node


def _parameter_node(model: type[BaseModel], loc: tuple[Any, ...]) -> dict[str, Any] | None:
    """The JSON schema of the parameter at ``loc``; ``None`` if the schema does not say."""
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})
    node: dict[str, Any] | None = schema.get("properties", {}).get(loc[0]) if loc else None
    for part in loc[1:]:
        if node is None or part == "[key]":
            return None
        node = _schema_node(node, defs)
        properties = node.get("properties") or {}
        prefix = node.get("prefixItems") or []
        if isinstance(part, str) and part in properties:  # a field of a nested model
            node = properties[part]
        elif isinstance(part, int) and part < len(prefix):  # an item of a tuple
            node = prefix[part]
        else:  # an item of a list or a value of a dict
            node = node.get("items") or node.get("additionalProperties")
    return None if node is None else _schema_node(node, defs)


def parameter_bounds(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[Any, Any] | None:
    """(minimum, maximum) of the parameter at ``loc`` (e.g. ``("uplift", 2)``), from the schema.

    ``None`` when the parameter has no two-sided numeric range.
    """
    node = _parameter_node(model, loc) or {}
    low = node.get("minimum", node.get("exclusiveMinimum"))
    high = node.get("maximum", node.get("exclusiveMaximum"))
    return (low, high) if low is not None and high is not None else None


def _range_text(model: type[BaseModel], loc: tuple[Any, ...]) -> str | None:
    """ "between 0.0 and 1.0" for the parameter at ``loc``, saying which ends are excluded."""
    node = _parameter_node(model, loc) or {}
    ends = []
    for inclusive, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if inclusive in node:
            ends.append(f"{node[inclusive]}")
        elif exclusive in node:
            ends.append(f"{node[exclusive]} (excluded)")
        else:
            return None
    return f"between {ends[0]} and {ends[1]}"


def with_ranges(model: type[BaseModel], label: str | None, exc: ValidationError) -> ValidationError:
    """``exc`` with each range error naming both ends of the allowed range.

    Pydantic names only the bound that was crossed ("less than or equal to 1"); a person
    fixing a slider wants the whole range: "between 0.0 and 1.0, got 1.5". ``label`` (e.g. the
    lever's name) starts the message when given. Errors of nested models (the scenario's
    economics, its Monte Carlo settings) are found through the model's JSON schema too.
    """
    details: list[InitErrorDetails] = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        allowed = _range_text(model, loc) if err["type"] in _RANGE_ERRORS else None
        if allowed is None:
            # kept as it was: same type and message (a custom type, e.g. an "out_of_range" of
            # a lever, cannot be rebuilt from its name alone, so every error is re-raised as
            # its own message)
            details.append(
                InitErrorDetails(
                    type=PydanticCustomError(err["type"], err["msg"]),
                    loc=err["loc"],
                    input=err["input"],
                )
            )
            continue
        prefix = f"{label}: input" if label else "Input"
        details.append(
            InitErrorDetails(
                type=PydanticCustomError(
                    "out_of_range",
                    f"{prefix} should be {allowed}, got {{value}}",
                    {"value": err["input"]},
                ),
                loc=err["loc"],
                input=err["input"],
            )
        )
    return ValidationError.from_exception_data(model.__name__, details)


def resolve_bounds(
    baseline: Baseline, bounds: dict[int, tuple[float, float]] | None, *, default_high: float
) -> tuple[FloatArray, FloatArray]:
    """(low, high) budget per segment: ``bounds`` where given, else (0, ``default_high``).

    Raises:
        InputError: an unknown segment id, or a bound that is not 0 <= low <= high < inf.
    """
    low, high = np.zeros(baseline.k), np.full(baseline.k, default_high)
    for seg, (lo, hi) in (bounds or {}).items():
        if seg not in baseline.ids:
            raise InputError(
                f"bounds: unknown segment id {seg}; allowed ids: "
                f"{', '.join(map(str, baseline.ids))}",
                details={"field": "bounds", "allowed": list(baseline.ids)},
            )
        if not (0.0 <= lo <= hi and math.isfinite(hi)):
            raise InputError(
                f"bounds for segment {seg} must satisfy 0 <= low <= high, got ({lo}, {hi})",
                details={"field": f"bounds.{seg}"},
            )
        i = int(baseline.positions([seg])[0])
        low[i], high[i] = float(lo), float(hi)
    return low, high
