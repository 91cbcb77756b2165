"""Column-to-role detection and mapping validation."""

import polars as pl
import pytest

from sistack.domain.schema import (
    CUSTOMERS,
    TRANSACTIONS,
    ColumnMapping,
    detect_mapping,
    normalise,
    require_roles,
)
from sistack.errors import InputError

MARKETING = {
    "ID": "customer_id",
    "Year_Birth": "birth_year",
    "Income": "income",
    "Kidhome": "kids",
    "Teenhome": "teens",
    "Dt_Customer": "signup_date",
    "Recency": "recency_days",
    "MntWines": "spend:wines",
    "MntFruits": "spend:fruits",
    "MntMeatProducts": "spend:meat",
    "MntFishProducts": "spend:fish",
    "MntSweetProducts": "spend:sweet",
    "MntGoldProds": "spend:gold",
    "NumDealsPurchases": "deal_purchases",
    "NumWebPurchases": "purchases:web",
    "NumCatalogPurchases": "purchases:catalog",
    "NumStorePurchases": "purchases:store",
    "NumWebVisitsMonth": "web_visits",
    "AcceptedCmp3": "campaign:cmp3",
    "AcceptedCmp4": "campaign:cmp4",
    "AcceptedCmp5": "campaign:cmp5",
    "AcceptedCmp1": "campaign:cmp1",
    "AcceptedCmp2": "campaign:cmp2",
    "Complain": "complaints",
    "Z_CostContact": "cost_contact",
    "Z_Revenue": "revenue_per_response",
    "Response": "response",
}


def _frame(columns, rows=3):
    return pl.DataFrame({c: ["1"] * rows for c in columns})


def test_marketing_layout_maps_completely():
    frame = _frame(["ID", "Education", "Marital_Status", *[c for c in MARKETING if c != "ID"]])
    mapping = detect_mapping(frame)
    assert mapping.shape == CUSTOMERS
    assert mapping.columns == {c: MARKETING[c] for c in frame.columns if c in MARKETING}
    assert mapping.ignored == ("Education", "Marital_Status")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Dt_Customer", "dtcustomer"),
        (" Customer ID ", "customerid"),
        ("NumWebVisits/Month", "numwebvisitsmonth"),
    ],
)
def test_normalise(name, expected):
    assert normalise(name) == expected


def test_text_column_is_not_given_a_numeric_role():
    frame = pl.DataFrame({"id": ["1", "2"], "income": ["high", "low"], "spend": ["5", "6"]})
    mapping = detect_mapping(frame)
    assert "income" not in mapping.columns
    assert "income" in mapping.ignored


def test_repeated_ids_with_date_and_amount_are_transactions():
    frame = pl.DataFrame(
        {"customer": ["a", "a", "b"], "date": ["2023-01-01"] * 3, "amount": ["1", "2", "3"]}
    )
    assert detect_mapping(frame).shape == TRANSACTIONS
    assert detect_mapping(frame.unique("customer", keep="first")).shape == CUSTOMERS
    assert detect_mapping(frame, shape=CUSTOMERS).shape == CUSTOMERS


def test_user_mapping_round_trip_and_validation():
    columns = ["cust", "total", "x"]
    mapping = ColumnMapping.from_dict(
        {
            "shape": "customers",
            "columns": {"cust": "customer_id", "total": "revenue", "x": "ignore"},
        },
        columns=columns,
    )
    assert mapping.columns == {"cust": "customer_id", "total": "revenue"}
    assert mapping.ignored == ("x",)
    assert ColumnMapping.from_dict(mapping.to_dict(), columns=columns) == mapping


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"columns": {"nope": "customer_id"}}, "not in the file"),
        ({"columns": {"cust": "salary_band"}}, "Unknown role"),
        ({"columns": {"cust": "customer_id", "total": "customer_id"}}, "two columns"),
        ({"shape": "orders", "columns": {}}, "shape"),
    ],
)
def test_bad_user_mapping(data, fragment):
    with pytest.raises(InputError) as info:
        ColumnMapping.from_dict(data, columns=["cust", "total"])
    assert info.value.code in {"invalid_mapping", "unknown_role"}
    assert fragment in info.value.message


@pytest.mark.parametrize(
    ("columns", "code"),
    [(["amount", "name"], "missing_customer_id"), (["id", "name", "age"], "missing_monetary")],
)
def test_required_roles(columns, code):
    with pytest.raises(InputError) as info:
        require_roles(detect_mapping(_frame(columns)))
    assert info.value.code == code
