"""Canonical roles and the column-to-role mapping.

A user's columns are mapped onto *roles*. Single roles (``customer_id``, ``income``) appear at most
once; family roles carry a name after a colon (``purchases:web``, ``spend:wines``,
``campaign:cmp1``) and may appear any number of times. A mapping is plain JSON
(``{"shape": "customers", "columns": {"MntWines": "spend:wines", ...}}``) so a user can edit the
output of ``sistack inspect`` and pass it back with ``--mapping``.

Detection uses normalised column names, a table of aliases and patterns, and, where a name is
ambiguous, the column's values (a role that needs numbers is not given to a text column).
"""

from __future__ import annotations

import re
from collections.abc import Mapping as AbstractMapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from sistack.errors import InputError

CUSTOMERS = "customers"
TRANSACTIONS = "transactions"
SHAPES = (CUSTOMERS, TRANSACTIONS)

# Roles of customer-level data. "date" roles hold dates, "text" roles keep strings.
CUSTOMER_SINGLE_ROLES: dict[str, str] = {
    "customer_id": "text",
    "signup_date": "date",
    "recency_days": "number",
    "orders": "number",
    "revenue": "number",
    "deal_purchases": "number",
    "response": "number",
    "income": "number",
    "birth_year": "number",
    "age": "number",
    "kids": "number",
    "teens": "number",
    "web_visits": "number",
    "complaints": "number",
    "cost_contact": "number",
    "revenue_per_response": "number",
}
CUSTOMER_FAMILIES = ("purchases", "spend", "campaign")

TRANSACTION_SINGLE_ROLES: dict[str, str] = {
    "customer_id": "text",
    "timestamp": "date",
    "order_id": "text",
    "amount": "number",
    "quantity": "number",
    "unit_price": "number",
    "channel": "text",
    "category": "text",
    "discount_flag": "flag",
    "discount_amount": "number",
    "campaign_response": "number",
}

IGNORE = "ignore"

# Aliases of single roles, by normalised name (lower case, alphanumerics only).
_CUSTOMER_ALIASES: dict[str, tuple[str, ...]] = {
    "customer_id": (
        "id",
        "customerid",
        "custid",
        "clientid",
        "userid",
        "memberid",
        "customer",
        "customerno",
        "customernumber",
        "accountid",
    ),
    "signup_date": (
        "dtcustomer",
        "signupdate",
        "signup",
        "joindate",
        "joined",
        "registrationdate",
        "customersince",
        "firstpurchasedate",
        "createdat",
        "enrollmentdate",
    ),
    "recency_days": ("recency", "recencydays", "dayssincelastpurchase", "dayssincelastorder"),
    "orders": (
        "orders",
        "numorders",
        "ordercount",
        "frequency",
        "totalorders",
        "purchases",
        "numpurchases",
        "totalpurchases",
    ),
    "revenue": (
        "revenue",
        "totalspend",
        "spend",
        "monetary",
        "totalrevenue",
        "sales",
        "totalsales",
        "lifetimevalue",
        "amountspent",
        "totalamount",
    ),
    "deal_purchases": (
        "numdealspurchases",
        "dealspurchases",
        "dealpurchases",
        "discountpurchases",
        "promopurchases",
        "numdeals",
    ),
    "response": ("response", "responded", "converted", "target", "label"),
    "income": ("income", "annualincome", "householdincome", "salary"),
    "birth_year": ("yearbirth", "birthyear", "yearofbirth", "yob"),
    "age": ("age",),
    "kids": ("kidhome", "kids", "children", "numchildren", "kidshome"),
    "teens": ("teenhome", "teens", "teenagers", "teenshome"),
    "web_visits": (
        "numwebvisitsmonth",
        "webvisits",
        "webvisitsmonth",
        "visitspermonth",
        "sitevisits",
    ),
    "complaints": ("complain", "complaints", "complained"),
    "cost_contact": ("zcostcontact", "costcontact", "costpercontact", "contactcost"),
    "revenue_per_response": ("zrevenue", "revenueperresponse", "responserevenue"),
}

_TRANSACTION_ALIASES: dict[str, tuple[str, ...]] = {
    "customer_id": _CUSTOMER_ALIASES["customer_id"],
    "timestamp": (
        "date",
        "orderdate",
        "invoicedate",
        "timestamp",
        "transactiondate",
        "purchasedate",
        "datetime",
        "time",
        "orderdatetime",
        "saledate",
        "createdat",
    ),
    "order_id": (
        "orderid",
        "invoice",
        "invoiceno",
        "invoiceid",
        "transactionid",
        "orderno",
        "ordernumber",
        "receiptid",
    ),
    "amount": (
        "amount",
        "total",
        "revenue",
        "sales",
        "ordervalue",
        "value",
        "spend",
        "linetotal",
        "totalamount",
        "netamount",
        "ordertotal",
        "price_total",
    ),
    "quantity": ("quantity", "qty", "units"),
    "unit_price": ("unitprice", "price", "itemprice"),
    "channel": ("channel", "saleschannel", "orderchannel", "source"),
    "category": ("category", "productcategory", "product", "department", "productline"),
    "discount_flag": (
        "promo",
        "ispromo",
        "discountflag",
        "onpromotion",
        "deal",
        "promotion",
        "discounted",
        "couponused",
    ),
    "discount_amount": ("discount", "discountamount", "discountvalue", "markdown"),
    "campaign_response": ("campaignresponse", "responded", "response", "converted"),
}

_FAMILY_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^num(deals?)purchases$"), "deal"),
    (re.compile(r"^num(.+?)purchases$"), "purchases"),
    (re.compile(r"^(.+?)purchases$"), "purchases"),
    (re.compile(r"^purchases(.+)$"), "purchases"),
    (re.compile(r"^mnt(.+?)(products|prods|prod)?$"), "spend"),
    (re.compile(r"^(?:spend|amount|sales)(?:on)?(.+)$"), "spend"),
    (re.compile(r"^(.+?)(?:spend|sales)$"), "spend"),
    (re.compile(r"^acceptedc(?:a)?mp(?:aign)?(\d+)$"), "campaign"),
    (re.compile(r"^(?:campaign|cmp)(\d+)(?:accepted|response)?$"), "campaign"),
)


def normalise(name: str) -> str:
    """Lower-case a column name and keep only letters and digits ("Dt_Customer" -> "dtcustomer")."""
    return re.sub(r"[^0-9a-z]", "", name.strip().lower())


def slug(name: str) -> str:
    """A safe identifier fragment for a family member name ("Meat Products" -> "meat_products")."""
    text = re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")
    return text or "x"


def role_kind(role: str, shape: str) -> str:
    """The value kind ("text", "number", "date", "flag") a role needs."""
    if shape == CUSTOMERS:
        family, _, member = role.partition(":")
        if member and family in CUSTOMER_FAMILIES:
            return "number"
        if role in CUSTOMER_SINGLE_ROLES:
            return CUSTOMER_SINGLE_ROLES[role]
    elif role in TRANSACTION_SINGLE_ROLES:
        return TRANSACTION_SINGLE_ROLES[role]
    raise InputError(
        f"Unknown role '{role}' for {shape} data.",
        code="unknown_role",
        details={"role": role, "allowed": allowed_roles(shape)},
    )


def allowed_roles(shape: str) -> list[str]:
    """Role names a mapping may use for a shape (families written as ``family:<name>``)."""
    if shape == CUSTOMERS:
        return [*CUSTOMER_SINGLE_ROLES, *(f"{f}:<name>" for f in CUSTOMER_FAMILIES), IGNORE]
    return [*TRANSACTION_SINGLE_ROLES, IGNORE]


ROLE_DESCRIPTIONS: dict[str, str] = {
    "customer_id": "Identifies the customer; one row per customer (or per order line).",
    "signup_date": "When the customer joined; gives the tenure.",
    "recency_days": "Days since the customer's last purchase.",
    "orders": "Number of purchases.",
    "revenue": "Total amount the customer spent.",
    "deal_purchases": "Purchases made with a discount or deal.",
    "response": "Whether the customer answered the last campaign (1 = yes, 0 = no).",
    "income": "Yearly household income.",
    "birth_year": "Year of birth (implausible years are flagged, not used).",
    "age": "Age in years.",
    "kids": "Number of children at home.",
    "teens": "Number of teenagers at home.",
    "web_visits": "Visits to the website last month.",
    "complaints": "Complaints made (count, or 1/0).",
    "cost_contact": "Cost of contacting the customer once (used by the simulation).",
    "revenue_per_response": "Revenue a campaign response brings (used by the simulation).",
    "purchases:<name>": "Purchases through one channel, e.g. web, catalog, store.",
    "spend:<name>": "Amount spent on one category, e.g. wines, meat.",
    "campaign:<name>": "Whether the customer accepted one earlier campaign (1/0).",
    "timestamp": "Date or time of the order.",
    "order_id": "Identifies the order (order lines of one order are counted once).",
    "amount": "Amount of the order line.",
    "quantity": "Units on the order line (with the unit price, instead of an amount).",
    "unit_price": "Price per unit (with the quantity, instead of an amount).",
    "channel": "Where the order was placed (web, store, ...).",
    "category": "Product category of the order line.",
    "discount_flag": "Whether the order line had a discount or promotion.",
    "discount_amount": "Discount given on the order line.",
    "campaign_response": "Whether the order answered a campaign (1/0).",
    IGNORE: "Not used.",
}
# Roles a mapping must have: always (True), or one role of a group (the group's description).
MONEY_GROUP = "an amount: revenue or spend:<name> columns"
ORDER_VALUE_GROUP = "an amount, or quantity and unit price"
_REQUIRED: dict[str, dict[str, bool | str]] = {
    CUSTOMERS: {"customer_id": True, "revenue": MONEY_GROUP, "spend:<name>": MONEY_GROUP},
    TRANSACTIONS: {
        "customer_id": True,
        "timestamp": True,
        "amount": ORDER_VALUE_GROUP,
        "quantity": ORDER_VALUE_GROUP,
        "unit_price": ORDER_VALUE_GROUP,
    },
}


@dataclass(frozen=True)
class RoleInfo:
    """A role a column can play: what it means, the values it needs and whether a mapping must
    have it (``required``), or one role of ``required_group``."""

    name: str
    shape: str
    description: str
    type: str
    family: bool
    required: bool
    required_group: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "shape": self.shape,
            "description": self.description,
            "type": self.type,
            "family": self.family,
            "required": self.required,
            "required_group": self.required_group,
        }


def role_catalogue(shape: str | None = None) -> list[RoleInfo]:
    """Every role of a shape (both shapes by default), in the order the mapping editor lists
    them (:func:`allowed_roles`); ``family:<name>`` stands for one column per member."""
    out = []
    for one in SHAPES if shape is None else (shape,):
        for name in allowed_roles(one):
            family = name.endswith(":<name>")
            need = _REQUIRED[one].get(name, False)
            kind = "none" if name == IGNORE else role_kind(name.replace("<name>", "x"), one)
            out.append(
                RoleInfo(
                    name=name,
                    shape=one,
                    description=ROLE_DESCRIPTIONS[name],
                    type=kind,
                    family=family,
                    required=need is True,
                    required_group=need if isinstance(need, str) else None,
                )
            )
    return out


@dataclass(frozen=True)
class ColumnMapping:
    """Which role each input column plays. Columns absent from ``columns`` are ignored."""

    shape: str
    columns: dict[str, str]
    ignored: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=(), compare=False)

    def column_for(self, role: str) -> str | None:
        for column, mapped in self.columns.items():
            if mapped == role:
                return column
        return None

    def family(self, family: str) -> dict[str, str]:
        """Member name -> column of a family role in column order, e.g. ``{"web": "NumWeb..."}``."""
        prefix = family + ":"
        return {r[len(prefix) :]: c for c, r in self.columns.items() if r.startswith(prefix)}

    def to_dict(self) -> dict[str, Any]:
        return {"shape": self.shape, "columns": dict(self.columns), "ignored": list(self.ignored)}

    @classmethod
    def from_dict(cls, data: AbstractMapping[str, Any], *, columns: list[str]) -> ColumnMapping:
        """Validate a user-supplied mapping against the file's columns."""
        shape = data.get("shape", CUSTOMERS)
        if shape not in SHAPES:
            raise InputError(
                f"Mapping shape '{shape}' is not one of {', '.join(SHAPES)}.",
                code="invalid_mapping",
                details={"field": "shape", "allowed": list(SHAPES)},
            )
        raw = data.get("columns")
        if not isinstance(raw, dict):
            raise InputError(
                "Mapping needs a 'columns' object of column name -> role.",
                code="invalid_mapping",
                details={"field": "columns"},
            )
        missing = [c for c in raw if c not in columns]
        if missing:
            raise InputError(
                f"Mapping names columns that are not in the file: {', '.join(map(str, missing))}.",
                code="invalid_mapping",
                details={"missing_columns": missing, "file_columns": columns},
            )
        mapped: dict[str, str] = {}
        for column in columns:
            role = raw.get(column)
            if role is None or role == IGNORE:
                continue
            if not isinstance(role, str):
                raise InputError(
                    f"Role for column '{column}' must be a string.",
                    code="invalid_mapping",
                    details={"column": column},
                )
            family, sep, member = role.partition(":")
            if sep:
                role = f"{family}:{slug(member)}"
            role_kind(role, shape)
            mapped[column] = role
        _check_unique(mapped)
        ignored = tuple(c for c in columns if c not in mapped)
        return cls(shape=shape, columns=mapped, ignored=ignored)


def _check_unique(columns: dict[str, str]) -> None:
    seen: dict[str, str] = {}
    for column, role in columns.items():
        if role in seen:
            raise InputError(
                f"Role '{role}' is given to two columns, '{seen[role]}' and '{column}'. "
                "Give it to one and set the other to 'ignore'.",
                code="invalid_mapping",
                details={"role": role, "columns": [seen[role], column]},
            )
        seen[role] = column


def _numeric_fraction(series: pl.Series, limit: int = 2000) -> float:
    """Share of the non-empty values (in the first ``limit``) that read as numbers."""
    head = series.head(limit).drop_nulls()
    if head.dtype.is_numeric() or head.dtype == pl.Boolean:
        return 1.0
    if head.len() == 0:
        return 1.0
    text = head.cast(pl.String).str.strip_chars()
    text = text.filter(text != "")
    if text.len() == 0:
        return 1.0
    cleaned = text.str.replace_all(r"[\s$€£¥,%]", "")
    parsed = cleaned.cast(pl.Float64, strict=False)
    return 1.0 - parsed.null_count() / text.len()


def _family_role(norm: str) -> str | None:
    for pattern, family in _FAMILY_PATTERNS:
        match = pattern.match(norm)
        if not match:
            continue
        if family == "deal":
            return "deal_purchases"
        member = match.group(1)
        if family == "purchases" and member in {"deal", "deals", "total", "num"}:
            return None
        if family == "campaign":
            member = f"cmp{member}"
        return f"{family}:{slug(member)}"
    return None


def _guess(norm: str, aliases: dict[str, tuple[str, ...]], *, families: bool) -> str | None:
    for role, names in aliases.items():
        if norm in names:
            return role
    return _family_role(norm) if families else None


def detect_shape(frame: pl.DataFrame) -> str:
    """Transactions when ids repeat and there is a date-like and an amount-like column."""
    tx = _map_columns(frame, TRANSACTIONS)
    id_col = next((c for c, r in tx.items() if r == "customer_id"), None)
    roles = set(tx.values())
    has_amount = "amount" in roles or {"quantity", "unit_price"} <= roles
    if id_col is None or "timestamp" not in roles or not has_amount:
        return CUSTOMERS
    ids = frame.get_column(id_col).drop_nulls()
    return TRANSACTIONS if ids.n_unique() < ids.len() else CUSTOMERS


def _map_columns(frame: pl.DataFrame, shape: str) -> dict[str, str]:
    aliases = _CUSTOMER_ALIASES if shape == CUSTOMERS else _TRANSACTION_ALIASES
    mapped: dict[str, str] = {}
    taken: set[str] = set()
    for column in frame.columns:
        role = _guess(normalise(column), aliases, families=shape == CUSTOMERS)
        if role is None or role in taken:
            continue
        kind = role_kind(role, shape)
        if kind in {"number", "flag"} and _numeric_fraction(frame.get_column(column)) < 0.5:
            continue
        mapped[column] = role
        taken.add(role)
    return mapped


def detect_mapping(frame: pl.DataFrame, *, shape: str | None = None) -> ColumnMapping:
    """Detect the shape (unless forced) and map every recognisable column to a role."""
    if shape is not None and shape not in SHAPES:
        raise InputError(
            f"Shape '{shape}' is not one of {', '.join(SHAPES)}.",
            code="invalid_shape",
            details={"allowed": list(SHAPES)},
        )
    chosen = shape or detect_shape(frame)
    columns = _map_columns(frame, chosen)
    notes: list[str] = []
    if (
        chosen == CUSTOMERS
        and "revenue" in columns.values()
        and any(r.startswith("spend:") for r in columns.values())
    ):
        # Category spend columns already add up to revenue; a total column would double count.
        total = next(c for c, r in columns.items() if r == "revenue")
        del columns[total]
        notes.append(f"'{total}' looks like a total of the spend columns and is not used.")
    ignored = tuple(c for c in frame.columns if c not in columns)
    return ColumnMapping(shape=chosen, columns=columns, ignored=ignored, notes=tuple(notes))


UNMAPPED_SHOWN = 5  # unmapped columns named in an error message; the rest are "..."
NAME_SHOWN = 40  # characters of a column name quoted in a message


def unmapped_columns(mapping: ColumnMapping, *, limit: int = UNMAPPED_SHOWN) -> str:
    """The columns no role was found for, for a message: ``"'foo', 'bar', 'baz'"``, the first
    ``limit`` then ``", ... (12 in all)"``; long names are shortened. Empty when every column
    has a role."""
    names = [n if len(n) <= NAME_SHOWN else n[: NAME_SHOWN - 1] + "…" for n in mapping.ignored]
    shown = ", ".join(f"'{n}'" for n in names[:limit])
    more = f", ... ({len(names)} in all)" if len(names) > limit else ""
    return shown + more


def require_roles(mapping: ColumnMapping) -> None:
    """Raise a clear error when the mapping lacks what segmentation needs.

    The message names the columns that got no role: when nothing is recognised, the one a
    person should map is usually among them.
    """
    roles = set(mapping.columns.values())
    unmapped = unmapped_columns(mapping)
    found = f" Columns with no role: {unmapped}." if unmapped else ""
    hint = (
        "Run 'sistack inspect FILE' to see the detected mapping, edit it and pass it back with "
        "--mapping, or rename the column."
    )
    ignored = {"ignored_columns": list(mapping.ignored)}
    if "customer_id" not in roles:
        raise InputError(
            "No customer id column was found (looked for names such as ID, customer_id, "
            f"CustomerID).{found} {hint}",
            code="missing_customer_id",
            details={"columns": list(mapping.columns) + list(mapping.ignored), **ignored},
        )
    if mapping.shape == TRANSACTIONS:
        if "timestamp" not in roles:
            raise InputError(
                f"Transaction data needs a date column (e.g. order_date).{found} {hint}",
                code="missing_date",
                details=ignored,
            )
        if "amount" not in roles and not {"quantity", "unit_price"} <= roles:
            raise InputError(
                "Transaction data needs an amount column, or quantity and unit price."
                f"{found} {hint}",
                code="missing_monetary",
                details=ignored,
            )
        return
    has_money = "revenue" in roles or any(r.startswith("spend:") for r in roles)
    if not has_money:
        raise InputError(
            "No monetary column was found: map a total spend column to 'revenue' or category "
            f"spend columns to 'spend:<category>' (e.g. MntWines).{found} {hint}",
            code="missing_monetary",
            details=ignored,
        )
