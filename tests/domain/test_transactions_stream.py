"""The streaming transaction path gives the eager path's customer table and report, bit for bit."""

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from sistack.demo import generate_transactions
from sistack.domain.schema import ColumnMapping, detect_mapping
from sistack.domain.transactions import aggregate_transactions
from sistack.domain.transactions_stream import (
    aggregate_transactions_lazy,
    latest_plausible_from_counts,
)
from sistack.domain.validation import latest_plausible_date
from sistack.errors import InputError
from sistack.io.spill import spill_to

HEADER = ["customer_id", "order_id", "order_date", "amount", "channel", "promo", "category"]
MESSY = [
    ("A", "o1", "2023-01-01", "10.00", "web", "0", "wine"),
    (" A ", "o2", "2023-01-11", "$20.00", "Store", "yes", "meat"),
    ("A", "o3", "31/01/2023", "30,50", "web!", "0", "wine"),
    ("B", "o4", "2023-01-21", "5.25", "Store", "1", "meat"),
    ("B", "o5", "not a date", "7.00", "web", "0", "wine"),
    ("", "o6", "2023-01-05", "1.00", "web", "0", "wine"),
    ("C", "o7", "2099-01-01", "3.00", None, "0", "fish"),
    ("C", "o8", "2023-01-02", "nan", "app", "0", "fish"),
    ("C", "o9", "2023-01-03", "NaN", "app", "0", "fish"),
    ("C", "o9", "2023-01-03", "-4.00", "app", "0", "fish"),
    ("D", "o10", "2023-01-04", "1e300", "catalog", "no", "sweets"),
    ("D", "o11", "2023-01-04", "", "catalog", "0", "sweets"),
    ("E", "o12", "2023-01-04", "2", "catalog", "0", "sweets"),
]
CLEAN = [row for row in MESSY if row[3] not in ("$20.00", "30,50")]


def _frame(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=HEADER, orient="row")


def _both(frame: pl.DataFrame, mapping: ColumnMapping, tmp_path: Path, parts: int, **kwargs):
    eager = aggregate_transactions(frame, mapping, **kwargs)
    lazy = aggregate_transactions_lazy(
        frame.lazy(), mapping, spill=spill_to(tmp_path / "spill"), parts=parts, **kwargs
    )
    return eager, lazy


def _many_channels(n: int = 400) -> pl.DataFrame:
    """More channels than are kept by name: the rare ones become 'other'."""
    rng = np.random.default_rng(1)
    return pl.DataFrame(
        {
            "customer_id": [f"c{i % 37}" for i in range(n)],
            "order_id": [f"o{i // 2}" for i in range(n)],  # two lines per order
            "order_date": [
                (dt.date(2023, 1, 1) + dt.timedelta(days=int(d))).isoformat()
                for d in rng.integers(0, 300, n)
            ],
            "amount": [f"{v:.2f}" for v in rng.gamma(2.0, 20.0, n)],
            "channel": [f"Ch {int(c)}" for c in rng.zipf(1.6, n) % 30],
            "promo": [str(int(v)) for v in rng.integers(0, 2, n)],
            "category": [f"cat-{int(c)}" for c in rng.integers(0, 5, n)],
        }
    )


CASES = {
    "messy": _frame(MESSY),  # cleaning path: currency, decimal comma, flags, bad dates...
    "clean_numbers": _frame(CLEAN),  # fast path: "nan" counts as non-finite
    "many_levels": _many_channels(),
    "generated": generate_transactions(60, seed=5)[0].with_columns(pl.all().cast(pl.String)),
    "typed": generate_transactions(40, seed=6)[0],  # Parquet-like typed columns
}


@pytest.mark.parametrize("parts", [1, 3])
@pytest.mark.parametrize("case", sorted(CASES))
def test_streaming_equals_eager(case, parts, tmp_path):
    frame = CASES[case]
    mapping = detect_mapping(frame, shape="transactions")
    eager, lazy = _both(frame, mapping, tmp_path, parts)
    assert_frame_equal(lazy.table, eager.table)
    assert lazy.report == eager.report
    assert lazy.reference_date == eager.reference_date


def test_messy_report_counts_every_row(tmp_path):
    frame = _frame(MESSY)
    _, lazy = _both(frame, detect_mapping(frame), tmp_path, 2)
    found = [(i.code, i.column, i.count, i.rows) for i in lazy.report.issues]
    assert found == [
        ("missing_customer_id", "customer_id", 1, (6,)),
        ("cleaned_number", "amount", 2, (2, 3)),  # $20.00, 30,50
        ("non_finite", "amount", 1, (11,)),  # 1e300
        ("cleaned_number", "promo", 2, (2, 11)),  # yes, no
        ("unparseable_date", "order_date", 1, (5,)),
        ("missing_amount", "amount", 4, (8, 9, 11, 12)),  # nan, NaN, 1e300, empty
        ("negative_amount", "amount", 1, (10,)),
    ]
    assert (lazy.report.rows_read, lazy.report.rows_used) == (13, 7)


def test_quantity_times_price_and_explicit_reference(tmp_path):
    frame = pl.DataFrame(
        {
            "customer": ["a", "a", "b"],
            "date": ["2023-01-01", "2023-02-01", "2023-03-01"],
            "quantity": ["2", "1", "3"],
            "unit_price": ["1.50", "4", "2.25"],
        }
    )
    mapping = detect_mapping(frame, shape="transactions")
    eager, lazy = _both(frame, mapping, tmp_path, 2, reference_date=dt.date(2023, 2, 15))
    assert_frame_equal(lazy.table, eager.table)
    assert lazy.report == eager.report
    assert lazy.table.get_column("revenue").to_list() == [7.0]  # b's order comes after it


@pytest.mark.parametrize(
    ("amounts", "message"),
    [
        (["1", "abc", "2", "x"], "Column 'amount' has 2 values that are not numbers (rows 2, 4"),
    ],
)
def test_errors_name_column_and_rows(amounts, message, tmp_path):
    frame = pl.DataFrame(
        {
            "customer_id": ["a", "a", "b", "b"],
            "order_date": ["2023-01-01"] * 4,
            "amount": amounts,
        }
    )
    mapping = detect_mapping(frame, shape="transactions")
    with pytest.raises(InputError) as eager:
        aggregate_transactions(frame, mapping)
    with pytest.raises(InputError) as lazy:
        aggregate_transactions_lazy(frame.lazy(), mapping, spill=spill_to(tmp_path / "s"))
    assert str(lazy.value) == str(eager.value)
    assert message in str(lazy.value)
    assert lazy.value.details == eager.value.details


def test_mostly_invalid_dates_are_refused_the_same_way(tmp_path):
    frame = pl.DataFrame(
        {
            "customer_id": ["a", "a", "b"],
            "order_date": ["x", "y", "2023-01-01"],
            "amount": ["1"] * 3,
        }
    )
    mapping = detect_mapping(frame, shape="transactions")
    with pytest.raises(InputError) as eager:
        aggregate_transactions(frame, mapping)
    with pytest.raises(InputError) as lazy:
        aggregate_transactions_lazy(frame.lazy(), mapping, spill=spill_to(tmp_path / "s"))
    assert (lazy.value.code, str(lazy.value)) == (eager.value.code, str(eager.value))


@pytest.mark.parametrize("seed", range(6))
def test_reference_from_date_counts_equals_reference_from_dates(seed):
    rng = np.random.default_rng(seed)
    days = rng.integers(0, 400, int(rng.integers(1, 3000)))
    late = rng.integers(0, 4)  # a few typos decades ahead (a gap of more than a year)
    days = np.concatenate([days, 30_000 + rng.integers(0, 5, late)])
    dates = pl.Series("date", [dt.date(2020, 1, 1) + dt.timedelta(days=int(d)) for d in days])
    counts = dates.value_counts(name="n")
    assert latest_plausible_from_counts(counts) == latest_plausible_date(dates)
