"""Validation shared by levers and scenarios: references to the baseline, ranges, messages.

Segment ids and channel names are checked against the baseline when a validation context is
given (:func:`validation_context`); without one only their type and bounds are checked, so a
scenario can be parsed before the run it applies to is known. Range errors name both ends of the
allowed range, read from the same JSON schema the UI renders its sliders from.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, ValidationError, ValidationInfo
from pydantic_core import InitErrorDetails, PydanticCustomError

from sistack.domain.simulation.baseline import Baseline
from sistack.domain.simulation.economics import Economics

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
    return value


def _check_channel(value: str, info: ValidationInfo) -> str:
    allowed = _allowed(info, "channels")
    if allowed is not None and value not in allowed:
        raise ValueError(f"unknown channel {value!r}; allowed channels: {', '.join(allowed)}")
    return value


SegmentId = Annotated[int, Field(ge=1), AfterValidator(_check_segment)]
"""A segment id; checked against the baseline's ids when validated with a baseline context."""
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


def parameter_bounds(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[Any, Any] | None:
    """(minimum, maximum) of the parameter at ``loc`` (e.g. ``("uplift", 2)``), from the schema.

    ``None`` when the parameter has no two-sided numeric range.
    """
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})
    node: dict[str, Any] | None = schema.get("properties", {}).get(loc[0]) if loc else None
    for part in loc[1:]:
        if node is None or part == "[key]":
            return None
        node = _schema_node(node, defs)
        node = node.get("items") or node.get("additionalProperties")
    if node is None:
        return None
    node = _schema_node(node, defs)
    low = node.get("minimum", node.get("exclusiveMinimum"))
    high = node.get("maximum", node.get("exclusiveMaximum"))
    return (low, high) if low is not None and high is not None else None


def with_ranges(model: type[BaseModel], label: str, exc: ValidationError) -> ValidationError:
    """``exc`` with each range error naming both ends of the allowed range.

    Pydantic names only the bound that was crossed ("less than or equal to 1"); a person
    fixing a slider wants the whole range: "between 0.0 and 1.0, got 1.5".
    """
    details: list[InitErrorDetails] = []
    for err in exc.errors():
        bounds = (
            parameter_bounds(model, tuple(err["loc"])) if err["type"] in _RANGE_ERRORS else None
        )
        if bounds is None:
            detail = InitErrorDetails(type=err["type"], loc=err["loc"], input=err["input"])
            if "ctx" in err:
                detail["ctx"] = err["ctx"]
            details.append(detail)
            continue
        message = f"{label}: input should be between {{low}} and {{high}}, got {{value}}"
        details.append(
            InitErrorDetails(
                type=PydanticCustomError(
                    "out_of_range",
                    message,
                    {"low": bounds[0], "high": bounds[1], "value": err["input"]},
                ),
                loc=err["loc"],
                input=err["input"],
            )
        )
    return ValidationError.from_exception_data(model.__name__, details)
