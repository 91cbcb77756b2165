"""Economic assumptions of the simulation: margin, contact cost, value of a response, cost to serve.

Two forms. :class:`EconomicSettings` is what a person (or an API request) gives: validated
bounds, and ``None`` where the number should come from the data. :class:`Economics` is the
resolved form the engine computes with: every number explicit, with where it came from, so a
result can always say which assumptions it used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_MARGIN_RATE = 0.35
DEFAULT_COST_PER_CONTACT = 3.0
DEFAULT_REVENUE_PER_RESPONSE = 11.0
DEFAULT_CONTACTS_PER_CUSTOMER = 1.0
DEFAULT_DISCOUNT_DEPTH = 0.15
DEFAULT_COST_TO_SERVE = {"store": 4.0, "catalog": 6.0, "web": 1.5, "app": 1.0, "other": 3.0}
OTHER_CHANNEL = "other"  # cost to serve of a channel without its own number

Money = Annotated[float, Field(ge=0.0, le=1_000_000.0)]


class EconomicSettings(BaseModel):
    """Economic assumptions as given; ``None`` means "the data's value, else the default"."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    margin_rate: float = Field(
        default=DEFAULT_MARGIN_RATE,
        ge=0.0,
        le=1.0,
        description="Gross margin as a share of revenue (revenue minus cost of goods).",
    )
    cost_per_contact: Money | None = Field(
        default=None,
        description="Cost of one marketing contact. Default: the data's Z_CostContact "
        f"(median), else {DEFAULT_COST_PER_CONTACT}.",
    )
    revenue_per_response: Money | None = Field(
        default=None,
        description="Contribution of one campaign response. Default: the data's Z_Revenue "
        f"(median), else {DEFAULT_REVENUE_PER_RESPONSE}.",
    )
    contacts_per_customer: float = Field(
        default=DEFAULT_CONTACTS_PER_CUSTOMER,
        ge=0.0,
        le=100.0,
        description="Contacts per customer in the current marketing plan; the baseline budget "
        "of a segment is customers x contacts x cost per contact.",
    )
    current_discount_depth: float = Field(
        default=DEFAULT_DISCOUNT_DEPTH,
        ge=0.0,
        le=0.9,
        description="Average discount on deal purchases today, as a fraction of the list price.",
    )
    cost_to_serve: dict[str, Money] = Field(
        default_factory=lambda: dict(DEFAULT_COST_TO_SERVE),
        description="Cost of serving one purchase per channel; channels not listed use "
        f"the defaults {DEFAULT_COST_TO_SERVE}.",
    )

    def merged(self, override: EconomicSettings | None) -> EconomicSettings:
        """These settings with the fields ``override`` sets explicitly replaced.

        Only fields the caller actually gave count, so a scenario that changes the margin keeps
        the baseline's contact cost; ``cost_to_serve`` merges channel by channel.
        """
        if override is None:
            return self
        update = {name: getattr(override, name) for name in override.model_fields_set}
        if "cost_to_serve" in update:
            update["cost_to_serve"] = {**self.cost_to_serve, **override.cost_to_serve}
        return self.model_copy(update=update)


@dataclass(frozen=True)
class Economics:
    """Resolved economic assumptions: every number the engine uses, and its source.

    ``sources`` maps a field to ``"settings"`` (given by the user), ``"data"`` (found in the
    segment profiles) or ``"default"``.
    """

    margin_rate: float
    cost_per_contact: float
    revenue_per_response: float
    contacts_per_customer: float
    current_discount_depth: float
    cost_to_serve: dict[str, float]  # one entry per channel of the baseline
    sources: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready copy."""
        return {
            "margin_rate": self.margin_rate,
            "cost_per_contact": self.cost_per_contact,
            "revenue_per_response": self.revenue_per_response,
            "contacts_per_customer": self.contacts_per_customer,
            "current_discount_depth": self.current_discount_depth,
            "cost_to_serve": dict(self.cost_to_serve),
            "sources": dict(self.sources),
        }


def resolve_economics(
    settings: EconomicSettings,
    *,
    data: dict[str, float],
    channels: tuple[str, ...],
) -> Economics:
    """Fill every open number of ``settings`` from ``data``, then from the documented defaults.

    Args:
        settings: the assumptions as given.
        data: values found in the data (keys ``cost_per_contact``, ``revenue_per_response``).
        channels: the baseline's channels; each gets a cost to serve.
    """
    given = settings.model_fields_set
    sources = {
        name: "settings" if name in given else "default"
        for name in ("margin_rate", "contacts_per_customer", "current_discount_depth")
    }
    values: dict[str, float] = {}
    for name, value, default in (
        ("cost_per_contact", settings.cost_per_contact, DEFAULT_COST_PER_CONTACT),
        ("revenue_per_response", settings.revenue_per_response, DEFAULT_REVENUE_PER_RESPONSE),
    ):
        if value is not None:
            values[name], sources[name] = float(value), "settings"
        elif name in data:
            values[name], sources[name] = float(data[name]), "data"
        else:
            values[name], sources[name] = default, "default"
    table = {**DEFAULT_COST_TO_SERVE, **settings.cost_to_serve}
    other = table.get(OTHER_CHANNEL, DEFAULT_COST_TO_SERVE[OTHER_CHANNEL])
    sources["cost_to_serve"] = "settings" if "cost_to_serve" in given else "default"
    return Economics(
        margin_rate=float(settings.margin_rate),
        cost_per_contact=values["cost_per_contact"],
        revenue_per_response=values["revenue_per_response"],
        contacts_per_customer=float(settings.contacts_per_customer),
        current_discount_depth=float(settings.current_discount_depth),
        cost_to_serve={c: float(table.get(c, other)) for c in channels},
        sources=sources,
    )
