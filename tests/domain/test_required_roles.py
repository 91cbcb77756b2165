"""What a refused mapping says: the missing role, and the columns that got no role (the first
few, then how many in all), so a person sees at once which column to map."""

from __future__ import annotations

import polars as pl
import pytest

from sistack.domain.schema import (
    CUSTOMERS,
    TRANSACTIONS,
    ColumnMapping,
    detect_mapping,
    require_roles,
)
from sistack.errors import InputError

LONG = "Customer reference number as printed on the loyalty card"  # 57 characters


def _frame(columns: list[str]) -> pl.DataFrame:
    return pl.DataFrame({c: ["1", "2", "3"] for c in columns})


@pytest.mark.parametrize(
    ("columns", "code", "says"),
    [
        (["foo", "bar", "baz"], "missing_customer_id",
         "Columns with no role: 'foo', 'bar', 'baz'."),
        ([f"c{i}" for i in range(1, 13)], "missing_customer_id",
         "Columns with no role: 'c1', 'c2', 'c3', 'c4', 'c5', ... (12 in all)."),
        ([LONG, "x"], "missing_customer_id",
         "Columns with no role: 'Customer reference number as printed on…', 'x'."),
        (["id", "name", "age"], "missing_monetary", "Columns with no role: 'name'."),
    ],
)  # fmt: skip
def test_the_message_names_the_columns_without_a_role(
    columns: list[str], code: str, says: str
) -> None:
    mapping = detect_mapping(_frame(columns))
    with pytest.raises(InputError) as info:
        require_roles(mapping)
    assert info.value.code == code
    assert says in info.value.message
    assert "sistack inspect FILE" in info.value.message  # what to do next, still said
    assert info.value.details["ignored_columns"] == list(mapping.ignored)


def test_a_transaction_mapping_without_a_date_names_the_other_columns() -> None:
    mapping = ColumnMapping(
        shape=TRANSACTIONS,
        columns={"cust": "customer_id", "paid": "amount"},
        ignored=("when", "note"),
    )
    with pytest.raises(InputError) as info:
        require_roles(mapping)
    assert info.value.code == "missing_date"
    assert "Columns with no role: 'when', 'note'." in info.value.message


def test_nothing_is_listed_when_every_column_has_a_role() -> None:
    mapping = ColumnMapping(
        shape=CUSTOMERS, columns={"ID": "customer_id", "Recency": "recency_days"}
    )
    with pytest.raises(InputError) as info:
        require_roles(mapping)
    assert info.value.code == "missing_monetary"
    assert "no role" not in info.value.message
    assert "(e.g. MntWines). Run 'sistack inspect FILE'" in info.value.message
