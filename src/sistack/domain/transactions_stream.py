"""Transactions -> customers from a lazy scan, in bounded memory (files too large to read whole).

The rules of :func:`~sistack.domain.transactions.aggregate_transactions`, as the expressions of
:mod:`~sistack.domain.transaction_rows`, evaluated by Polars' streaming engine:

1. one streaming pass types every row (ids, dates, amounts, flags, levels) and records, per
   row, what the quality report needs to know; the caller's ``spill`` writes these narrow rows
   into partitions by customer (domain code writes no files);
2. small queries over the partitions give the report's counts and example rows, the levels kept
   by name and the reference date (:func:`~sistack.domain.transaction_rows.check_rows`);
3. each partition is aggregated by :func:`~sistack.domain.transactions.per_customer_table` on
   its own (a customer's rows are all in one partition), so memory holds one partition at once.

The customer table and the quality report are the same, bit for bit, as for the table read whole
(``tests/domain/test_transactions_stream.py`` compares them).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from sistack.domain.schema import ColumnMapping
from sistack.domain.transaction_rows import (
    DATE_SAMPLE,
    check_rows,
    date_format,
    date_sample,
    latest_plausible_from_counts,
    row_typing,
)
from sistack.domain.transactions import per_customer_table
from sistack.domain.validation import ROW, CustomerTable

PART = "_part"

Spill = Callable[[pl.LazyFrame], list[pl.LazyFrame]]
"""Write a lazy frame partitioned by its ``_part`` column (dropped); lazy scans of the parts."""


@dataclass(frozen=True)
class _LazyRows:
    """:class:`~sistack.domain.transaction_rows.TypedRows` over the spilled typed rows."""

    rows: pl.LazyFrame
    scan: pl.LazyFrame  # the raw rows, for the values quoted in an error message

    def summary(self, exprs: list[pl.Expr]) -> dict[str, Any]:
        return self.rows.select(exprs).collect(engine="streaming").row(0, named=True)

    def value_counts(self, where: pl.Expr, column: str) -> pl.DataFrame:
        return (
            self.rows.filter(where)
            .group_by(column)
            .agg(pl.len().alias("n"))
            .collect(engine="streaming")
        )

    def distinct(self, where: pl.Expr, columns: list[str]) -> pl.DataFrame:
        return self.rows.filter(where).select(columns).unique().collect(engine="streaming")

    def raw_values(self, column: str, rows: list[int]) -> list[Any]:
        return (
            self.scan.with_row_index(ROW, offset=1)
            .filter(pl.col(ROW).is_in(pl.Series(rows, dtype=pl.UInt32).implode()))
            .select(pl.col(column).cast(pl.String))
            .collect(engine="streaming")
            .get_column(column)
            .to_list()
        )


def aggregate_transactions_lazy(
    scan: pl.LazyFrame,
    mapping: ColumnMapping,
    *,
    spill: Spill,
    parts: int = 1,
    reference_date: dt.date | None = None,
) -> CustomerTable:
    """Validate transaction rows and aggregate them per customer, streaming (see the module).

    Args:
        scan: The raw rows, lazily (text or typed columns, wholly empty rows already removed).
        mapping: column -> role, shape ``transactions``.
        spill: Writes the typed rows partitioned by customer; see :data:`Spill`.
        parts: Number of partitions; one is aggregated in memory at a time.
        reference_date: the "as of" date; by default the latest plausible transaction date.
    """
    schema = scan.collect_schema()
    sample = date_sample(schema, mapping)
    chosen = None
    if sample is not None:
        where, text = sample
        head = (
            scan.filter(where)
            .select(text.alias("t"))
            .head(DATE_SAMPLE)
            .collect(engine="streaming")  # stops reading once it has them
            .get_column("t")
        )
        chosen = date_format(head)
    typing = row_typing(schema, mapping, chosen)
    # By the cleaned id: every row of a customer lands in the same partition.
    part = (typing.ids.hash(seed=0) % max(1, parts)).alias(PART)
    pieces = spill(scan.with_row_index(ROW, offset=1).select(*typing.columns, part))
    rows = pl.concat(pieces, how="vertical")
    checked = check_rows(typing, _LazyRows(rows, scan), reference_date=reference_date)
    tables = []
    for piece in pieces:
        tx = checked.transactions(piece).collect()
        if tx.height:
            tables.append(per_customer_table(tx, checked.reference_date, levels=checked.levels))
        del tx
    table = _sorted_by_id(tables)
    return CustomerTable(table=table, report=checked.report, reference_date=checked.reference_date)


def _sorted_by_id(tables: list[pl.DataFrame]) -> pl.DataFrame:
    """The partitions' customer tables as one, sorted by customer id, one column at a time.

    Sorting the whole table at once holds two copies of it (9.5M customers: 2 GB each); here
    each column is put in order and its unsorted chunks freed before the next is.
    """
    whole = pl.concat(tables, how="vertical", rechunk=False)
    tables.clear()  # ``whole`` holds the only reference to the partitions' columns
    order = whole.get_column("customer_id").arg_sort()
    columns = []
    for name in whole.columns:
        columns.append(whole.get_column(name).gather(order))
        whole = whole.drop(name)
    return pl.DataFrame(columns)


__all__ = ["PART", "Spill", "aggregate_transactions_lazy", "latest_plausible_from_counts"]
