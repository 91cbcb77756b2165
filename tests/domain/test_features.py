"""Feature numbers checked against values worked out by hand."""

import datetime as dt

import polars as pl
import pytest
from numpy.testing import assert_allclose

from sistack.domain.features import build_features
from sistack.domain.schema import detect_mapping
from sistack.domain.validation import validate_customers

HEADER = [
    "ID",
    "Recency",
    "Dt_Customer",
    "MntWines",
    "MntMeatProducts",
    "NumWebPurchases",
    "NumStorePurchases",
    "NumDealsPurchases",
    "AcceptedCmp1",
    "AcceptedCmp2",
    "Income",
    "Year_Birth",
    "Kidhome",
    "Teenhome",
    "NumWebVisitsMonth",
]
ROWS = [
    [
        "c1",
        "10",
        "01-01-2014",
        "100",
        "300",
        "2",
        "6",
        "2",
        "1",
        "0",
        "50000",
        "1970",
        "1",
        "0",
        "5",
    ],
    ["c2", "50", "01-07-2014", "0", "50", "1", "0", "1", "0", "0", "20000", "1990", "0", "1", "8"],
    ["c3", "99", "01-07-2013", "200", "0", "0", "0", "0", "1", "1", "", "1893", "0", "0", "0"],
]


@pytest.fixture
def customers():
    frame = pl.DataFrame(ROWS, schema=HEADER, orient="row")
    return validate_customers(frame, detect_mapping(frame))


# Expected per customer (c1, c2, c3), worked out by hand. Reference date = latest signup
# (2014-07-01); c3's income is the median of 50000 and 20000; its birth year 1893 is implausible
# and replaced by the median of 1970 and 1990.
EXPECTED = {
    "recency_days": [10, 50, 99],
    "frequency": [8, 1, 0],
    "monetary": [400, 50, 200],
    "avg_order_value": [50, 50, 0],
    "tenure_days": [181, 0, 365],
    "share_web": [0.25, 1.0, 0.0],
    "share_store": [0.75, 0.0, 0.0],
    "deal_share": [0.25, 1.0, 0.0],
    "promo_rate": [0.5, 0.0, 1.0],
    "variety": [1.0, 0.5, 0.5],
    "income": [50000, 20000, 35000],
    "age": [44, 24, 34],
    "household_children": [1, 1, 0],
    "web_visits": [5, 8, 0],
    "mix_wines": [0.25, 0.0, 1.0],
    "mix_meat": [0.75, 1.0, 0.0],
}


def test_reference_date_comes_from_the_data(customers):
    assert customers.reference_date == dt.date(2014, 7, 1)


@pytest.mark.parametrize(("feature", "expected"), EXPECTED.items())
def test_feature_values(customers, feature, expected):
    matrix = build_features(customers.table, reference_date=customers.reference_date)
    assert_allclose(matrix.frame.get_column(feature).to_numpy(), expected)


def test_feature_set_and_model_flags(customers):
    matrix = build_features(customers.table, reference_date=customers.reference_date)
    assert matrix.frame.columns == ["customer_id", *EXPECTED]
    assert "mix_wines" not in matrix.model_features
    assert "recency_days" in matrix.model_features
    assert all(spec.definition for spec in matrix.specs)


def test_quality_report_counts_every_change(customers):
    report = customers.report
    by_code = {(i.code, i.column): i for i in report.issues}
    assert by_code[("implausible_birth_year", "Year_Birth")].rows == (3,)
    assert by_code[("imputed_median", "Income")].count == 1
    assert by_code[("imputed_median", "Income")].rows == (3,)
    assert report.rows_read == 3
    assert report.rows_used == 3
