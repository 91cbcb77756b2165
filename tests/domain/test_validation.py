"""Validation: typing, cleaning, exclusions and actionable errors."""

import polars as pl
import pytest

from sistack.domain.schema import detect_mapping
from sistack.domain.validation import validate_customers
from sistack.errors import InputError


def _validate(data: dict):
    frame = pl.DataFrame(data)
    return validate_customers(frame, detect_mapping(frame))


def test_duplicate_and_missing_ids_are_excluded_and_counted():
    result = _validate({"ID": ["1", "2", "1", None, "3"], "MntWines": ["1", "2", "3", "4", "5"]})
    issues = {i.code: i for i in result.report.issues}
    assert issues["duplicate_customer_id"].rows == (3,)
    assert issues["missing_customer_id"].rows == (4,)
    assert result.table.get_column("customer_id").to_list() == ["1", "2", "3"]
    assert result.table.get_column("spend_wines").to_list() == [1.0, 2.0, 5.0]
    assert result.report.rows_read - result.report.rows_used == result.report.rows_excluded == 2


def test_text_in_numeric_column_names_column_and_rows():
    with pytest.raises(InputError) as info:
        _validate({"ID": ["1", "2", "3", "4"], "MntWines": ["5", "abc", "7", "x"]})
    err = info.value
    assert err.code == "non_numeric_values"
    assert "'MntWines'" in err.message and "rows 2, 4" in err.message
    assert err.details["rows"] == [2, 4]


@pytest.mark.parametrize(
    ("raw", "value", "code"),
    [
        ("$1,234.50", 1234.5, "cleaned_number"),
        ("12,5", 12.5, "cleaned_number"),
        ("-5", 0.0, "negative_value"),
        ("inf", 0.0, "non_finite"),
        ("NULL", 0.0, "imputed_zero"),
    ],
)
def test_value_cleaning_is_reported(raw, value, code):
    result = _validate({"ID": ["1", "2"], "MntWines": [raw, "1"]})
    assert result.table.get_column("spend_wines")[0] == pytest.approx(value)
    issue = next(i for i in result.report.issues if i.code == code)
    assert issue.rows == (1,) and issue.column == "MntWines"


def test_constant_and_all_missing_columns_are_warned():
    result = _validate(
        {
            "ID": ["1", "2"],
            "MntWines": ["1", "2"],
            "Z_Revenue": ["11", "11"],
            "Income": [None, None],
        }
    )
    codes = {(i.code, i.column) for i in result.report.issues}
    assert ("constant_column", "Z_Revenue") in codes
    assert ("all_missing_column", "Income") in codes


def test_mixed_date_formats_are_read_and_counted():
    result = _validate(
        {
            "ID": ["1", "2", "3"],
            "MntWines": ["1", "2", "3"],
            "Dt_Customer": ["13-01-2014", "14-02-2014", "2014-03-15"],
        }
    )
    assert [d.isoformat() for d in result.table.get_column("signup_date")] == [
        "2014-01-13",
        "2014-02-14",
        "2014-03-15",
    ]
    issue = next(i for i in result.report.issues if i.code == "mixed_date_formats")
    assert issue.rows == (3,)
