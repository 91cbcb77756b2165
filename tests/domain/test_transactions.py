"""Transaction aggregation checked against values worked out by hand."""

import datetime as dt

import polars as pl
import pytest
from numpy.testing import assert_allclose

from sistack.domain.features import build_features
from sistack.domain.schema import TRANSACTIONS, detect_mapping
from sistack.domain.transactions import aggregate_transactions

ROWS = [
    # customer, order, date, amount, channel, promo, category
    ("A", "o1", "2023-01-01", "10.00", "web", "0", "wine"),
    ("A", "o2", "2023-01-11", "20.00", "store", "1", "meat"),
    ("A", "o3", "2023-01-31", "30.50", "web", "0", "wine"),
    ("B", "o4", "2023-01-21", "5.25", "Store", "1", "meat"),
    ("B", "o5", "not a date", "7.00", "web", "0", "wine"),
]
HEADER = ["customer_id", "order_id", "order_date", "amount", "channel", "promo", "category"]


@pytest.fixture
def aggregated():
    frame = pl.DataFrame(ROWS, schema=HEADER, orient="row")
    mapping = detect_mapping(frame)
    assert mapping.shape == TRANSACTIONS
    return aggregate_transactions(frame, mapping)


# A: 3 orders, 60.50, first 01-01, last 01-31; B: 1 usable order of 5.25 on 01-21.
EXPECTED = {
    "orders": [3, 1],
    "revenue": [60.5, 5.25],
    "recency_days": [0, 10],
    "purchases_store": [1, 1],
    "purchases_web": [2, 0],
    "deal_purchases": [1, 1],
    "spend_meat": [20.0, 5.25],
    "spend_wine": [40.5, 0.0],
    "inter_purchase_days": [15.0, 10.0],
    # The value model's inputs: A bought on 3 days, 20.00 + 30.50 after the first; B on one.
    "purchase_days": [3, 1],
    "repeat_revenue": [50.5, 0.0],
}


def test_reference_date_is_latest_transaction(aggregated):
    assert aggregated.reference_date == dt.date(2023, 1, 31)


@pytest.mark.parametrize(("column", "expected"), EXPECTED.items())
def test_customer_aggregates(aggregated, column, expected):
    table = aggregated.table.sort("customer_id")
    assert table.get_column("customer_id").to_list() == ["A", "B"]
    assert_allclose(table.get_column(column).to_numpy(), expected)


def test_excluded_rows_are_counted(aggregated):
    report = aggregated.report
    issue = next(i for i in report.issues if i.code == "unparseable_date")
    assert issue.kind == "excluded" and issue.count == 1 and issue.rows == (5,)
    assert report.rows_read == 5 and report.rows_used == 4
    assert report.rows_read - report.rows_used == report.rows_excluded


@pytest.mark.parametrize(
    ("feature", "expected"),
    [
        ("frequency", [3, 1]),
        ("avg_order_value", [60.5 / 3, 5.25]),
        ("tenure_days", [30, 10]),
        ("share_store", [1 / 3, 1.0]),
        ("deal_share", [1 / 3, 1.0]),
    ],
)
def test_features_from_transactions(aggregated, feature, expected):
    matrix = build_features(aggregated.table, reference_date=aggregated.reference_date)
    frame = matrix.frame.sort("customer_id")
    assert_allclose(frame.get_column(feature).to_numpy(), expected)


def test_quantity_times_price():
    frame = pl.DataFrame(
        {
            "customer_id": ["A", "A", "B"],
            "invoice_date": ["2023-01-01", "2023-01-02", "2023-01-02"],
            "quantity": ["2", "3", "1"],
            "unit_price": ["1.50", "2.00", "9.99"],
        }
    )
    result = aggregate_transactions(frame, detect_mapping(frame))
    assert_allclose(result.table.sort("customer_id").get_column("revenue").to_numpy(), [9.0, 9.99])


def test_a_typo_far_in_the_future_does_not_move_the_reference_date():
    # 40 orders in January 2023 and one typed as 2099: at most 5% of dates may be set aside.
    rows = [
        ("A", f"o{d}", f"2023-01-{d % 28 + 1:02d}", "1.00", "web", "0", "wine") for d in range(40)
    ]
    rows.append(("B", "o99", "2099-01-01", "3.00", "web", "0", "wine"))
    frame = pl.DataFrame(rows, schema=HEADER, orient="row")
    result = aggregate_transactions(frame, detect_mapping(frame))
    assert result.reference_date == dt.date(2023, 1, 28)
    issue = next(i for i in result.report.issues if i.code == "date_after_reference")
    assert issue.kind == "excluded" and issue.rows == (41,)


def test_purchases_are_counted_per_day_for_the_value_model():
    # A: two orders on 03-01 (one purchase day of 15.00), one on 03-05, and a return on 03-09
    # netted against the repeat spend: 3 purchase days, repeat revenue 20 - 4 = 16. B: two
    # orders on one day. C: a later day that only returns more than was bought: clipped at 0.
    frame = pl.DataFrame(
        {
            "customer_id": ["A", "A", "A", "A", "B", "B", "C", "C"],
            "order_id": ["o1", "o2", "o3", "o4", "o5", "o6", "o7", "o8"],
            "order_date": ["2023-03-01", "2023-03-01", "2023-03-05", "2023-03-09",
                           "2023-03-02", "2023-03-02", "2023-03-01", "2023-03-03"],
            "amount": ["10.00", "5.00", "20.00", "-4.00", "7.00", "3.00", "9.00", "-12.00"],
        }
    )  # fmt: skip
    table = aggregate_transactions(frame, detect_mapping(frame)).table.sort("customer_id")
    assert_allclose(table.get_column("orders").to_numpy(), [4, 2, 2])
    assert_allclose(table.get_column("purchase_days").to_numpy(), [3, 1, 2])
    assert_allclose(table.get_column("repeat_revenue").to_numpy(), [16.0, 0.0, 0.0])
    # Not segmentation features: the feature set is the one of the columns before.
    features = build_features(table, reference_date=dt.date(2023, 3, 9)).frame.columns
    assert not {"purchase_days", "repeat_revenue"} & set(features)
