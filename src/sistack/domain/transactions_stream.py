"""Transactions -> customers from a lazy scan, in bounded memory (files too large to read whole).

The rules of :func:`~sistack.domain.transactions.aggregate_transactions`, written as expressions:

1. one streaming pass types every row (ids, dates, amounts, flags, levels) and records, per
   row, what the quality report needs to know; the caller's ``spill`` writes these narrow rows
   into partitions by customer (domain code writes no files);
2. small queries over the partitions give the report's counts and example rows, the levels kept
   by name and the reference date;
3. each partition is aggregated by :func:`~sistack.domain.transactions.per_customer_table` on
   its own (a customer's rows are all in one partition), so memory holds one partition at once.

The customer table and the quality report are the same, bit for bit, as for the table read whole
(``tests/domain/test_transactions_stream.py`` compares them).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import polars as pl

from sistack.domain.quality import CHANGED, EXCLUDED, WARNING, QualityLog
from sistack.domain.schema import TRANSACTIONS, ColumnMapping, require_roles
from sistack.domain.transactions import MAX_LEVELS, per_customer_table
from sistack.domain.validation import (
    DATE_GAP_DAYS,
    MAX_LATE_SHARE,
    ROW,
    CustomerTable,
    non_finite_message,
    numeric_error,
)
from sistack.domain.values import (
    MAX_MAGNITUDE,
    NumberExprs,
    choose_date_format,
    date_expr,
    date_text,
    dates_with_fallback,
    number_exprs,
)
from sistack.errors import InputError, row_examples

PART = "_part"
EXAMPLES = 20  # first rows kept per issue: enough for the report (10) and for messages (20)

Spill = Callable[[pl.LazyFrame], list[pl.LazyFrame]]
"""Write a lazy frame partitioned by its ``_part`` column (dropped); lazy scans of the parts."""


@dataclass(frozen=True)
class _Number:
    """One numeric source column: the name of its flag columns and how it is parsed."""

    column: str
    key: str
    exprs: NumberExprs


def _number(schema: pl.Schema, column: str, key: str, *, flags: bool) -> _Number:
    raw = pl.col(column)
    dtype = schema[column]
    if dtype.is_numeric() or dtype == pl.Boolean:  # typed input (Parquet): no text to clean
        values = raw.cast(pl.Float64)
        bad = (~values.is_finite() | (values.abs() > MAX_MAGNITUDE)).fill_null(False)
        false = pl.lit(False)
        value = pl.when(bad).then(None).otherwise(values)
        exprs = NumberExprs(value, false, bad, false, bad, false)
        return _Number(column, key, exprs)
    return _Number(column, key, number_exprs(raw.cast(pl.String), flags=flags))


def _level_text(raw: pl.Expr) -> pl.Expr:
    """``_levels``' cleaning of one value (lower case, runs of other characters -> ``_``)."""
    cleaned = (
        raw.cast(pl.String)
        .str.to_lowercase()
        .str.replace_all(r"[^0-9a-z]+", "_")
        .str.strip_chars("_")
    )
    return pl.when(cleaned == "").then(None).otherwise(cleaned).fill_null("unknown")


def _ids(schema: pl.Schema, column: str) -> pl.Expr:
    ids = pl.col(column)
    if schema[column].is_float():
        ids = ids.cast(pl.Int64, strict=False)
    return ids.cast(pl.String).str.strip_chars()


def _date(scan: pl.LazyFrame, schema: pl.Schema, column: str, ids: pl.Expr) -> pl.Expr:
    """The date expression, its format chosen on the first 5,000 dates of rows with an id."""
    dtype = schema[column]
    if dtype == pl.Date:
        return pl.col(column)
    if isinstance(dtype, pl.Datetime):
        return pl.col(column).dt.date()
    text, missing = date_text(pl.col(column))
    head = (
        scan.filter(ids.is_not_null() & (ids != ""))
        .select(text.alias("t"), missing.alias("m"))
        .filter(~pl.col("m"))
        .head(5000)
        .collect(engine="streaming")  # stops reading once it has them
        .get_column("t")
    )
    chosen = choose_date_format(head)
    if chosen is None:
        return pl.lit(None, dtype=pl.Date)
    fmt, is_dt = chosen
    first = date_expr(text, fmt, datetime=is_dt)
    # The other formats read only the values the first one could not: the text of those goes
    # to a column of its own first (null elsewhere), so no format is tried on every row.
    failed = pl.when(first.is_null() & ~missing).then(text)
    return pl.struct(first.alias("first"), failed.alias("failed")).map_batches(
        # Row by row: the streaming engine may call it batch by batch (else it would gather
        # every row first).
        lambda s: _fallback(s, fmt, is_dt),
        return_dtype=pl.Date,
        is_elementwise=True,
    )


def _fallback(pair: pl.Series, fmt: str, is_dt: bool) -> pl.Series:
    """Dates read in the main format, the rest in any other (only if some are left)."""
    first, failed = pair.struct.field("first"), pair.struct.field("failed")
    if failed.null_count() == failed.len():
        return first
    others = pl.select(dates_with_fallback(pl.lit(failed), fmt, datetime=is_dt)).to_series()
    return first.fill_null(others)


def _counts(rows: pl.LazyFrame, column: str) -> pl.DataFrame:
    """Rows per distinct value of ``column`` (``n``), streaming."""
    return rows.group_by(column).agg(pl.len().alias("n")).collect(engine="streaming")


def _flag(name: str, mask: pl.Expr) -> list[pl.Expr]:
    """Count of a row flag and its first rows (by file order)."""
    return [
        mask.sum().alias(f"{name}#n"),
        pl.col(ROW).filter(mask).bottom_k(EXAMPLES).sort().implode().alias(f"{name}#rows"),
    ]


def _issue(stats: dict[str, Any], name: str) -> tuple[int, pl.Series]:
    return int(stats[f"{name}#n"]), pl.Series(ROW, stats[f"{name}#rows"], dtype=pl.UInt32)


def _log_issue(
    log: QualityLog,
    stats: dict[str, Any],
    name: str,
    kind: str,
    code: str,
    message: str,
    column: str,
) -> None:
    """Record the flag ``name`` counted by a summary query (count and example rows)."""
    count, first = _issue(stats, name)
    log.add(kind, code, message, column=column, rows=first, count=count)


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
    if mapping.shape != TRANSACTIONS:
        raise ValueError("aggregate_transactions_lazy needs a transaction mapping")
    require_roles(mapping)
    schema = scan.collect_schema()
    log = QualityLog()
    id_col, date_col = mapping.column_for("customer_id"), mapping.column_for("timestamp")
    assert id_col is not None and date_col is not None
    ids = _ids(schema, id_col)

    # The numeric columns, in the order aggregate_transactions reads (and logs) them.
    numbers: list[_Number] = []
    amount_col = mapping.column_for("amount")
    if amount_col is not None:
        numbers.append(_number(schema, amount_col, "amount", flags=False))
        amount = numbers[0].exprs.value
    else:
        qty_col, price_col = mapping.column_for("quantity"), mapping.column_for("unit_price")
        assert qty_col is not None and price_col is not None
        numbers += [
            _number(schema, qty_col, "qty", flags=False),
            _number(schema, price_col, "price", flags=False),
        ]
        amount = numbers[0].exprs.value * numbers[1].exprs.value
        amount_col = f"{qty_col} x {price_col}"
    deal = pl.lit(False)
    for role, flags in (("discount_flag", True), ("discount_amount", False)):
        col = mapping.column_for(role)
        if col:
            numbers.append(_number(schema, col, role, flags=flags))
            deal = deal | (numbers[-1].exprs.value > 0).fill_null(False)
    resp_col = mapping.column_for("campaign_response")
    response = None
    if resp_col:
        response_number = _number(schema, resp_col, "response", flags=True)
        response = response_number.exprs.value

    order_col = mapping.column_for("order_id")
    columns: list[pl.Expr] = [
        pl.col(ROW),
        ids.alias("customer_id"),
        (ids.is_null() | (ids == "")).alias("_no_id"),
        _date(scan, schema, date_col, ids).alias("date"),
        amount.alias("amount"),
        (pl.col(order_col) if order_col else pl.col(ROW)).cast(pl.String).alias("order"),
        deal.alias("deal"),
    ]
    levels = [r for r in ("channel", "category") if mapping.column_for(r)]
    for role in levels:  # raw text: cleaned later on the distinct values only
        columns.append(pl.col(mapping.column_for(role) or role).cast(pl.String).alias(role))
    if response is not None:
        columns.append(response.alias("response"))
        numbers.append(response_number)
    for n in numbers:
        e = n.exprs
        columns += [
            e.plain_failed.alias(f"{n.key}#pf"),
            e.fast_nonfinite.alias(f"{n.key}#fn"),
            e.cleaned.alias(f"{n.key}#cl"),
            e.nonfinite.alias(f"{n.key}#nf"),
            e.invalid.alias(f"{n.key}#inv"),
        ]
    # By the cleaned id: every row of a customer lands in the same partition.
    columns.append((ids.hash(seed=0) % max(1, parts)).alias(PART))
    typed = scan.with_row_index(ROW, offset=1).select(columns)
    pieces = spill(typed)
    rows = pl.concat(pieces, how="vertical")

    has_id = ~pl.col("_no_id")
    dated = has_id & pl.col("date").is_not_null()
    usable = dated & pl.col("amount").is_not_null()
    stats_exprs = [pl.len().alias("rows_read"), has_id.sum().alias("with_id")]
    stats_exprs += _flag("no_id", pl.col("_no_id"))
    stats_exprs += _flag("no_date", has_id & pl.col("date").is_null())
    stats_exprs += _flag("no_amount", dated & pl.col("amount").is_null())
    for n in numbers:
        stats_exprs.append((has_id & pl.col(f"{n.key}#pf")).sum().alias(f"{n.key}#pf#n"))
        for flag in ("fn", "cl", "nf", "inv"):
            stats_exprs += _flag(f"{n.key}#{flag}", has_id & pl.col(f"{n.key}#{flag}"))
    stats = rows.select(stats_exprs).collect(engine="streaming").row(0, named=True)
    rows_read = int(stats["rows_read"])
    if rows_read == 0:
        raise InputError("The file has a header but no data rows.", code="no_data_rows")

    _log_issue(
        log, stats, "no_id", EXCLUDED, "missing_customer_id",
        f"Rows without a customer id in '{id_col}' were not used.", id_col,
    )  # fmt: skip
    with_id = int(stats["with_id"])
    bad, bad_rows = _issue(stats, "no_date")
    if bad > 0.5 * with_id:
        raise InputError(
            f"Column '{date_col}' was mapped to the transaction date but {bad} values "
            f"are not dates ({row_examples(bad_rows.to_list())}).",
            code="invalid_dates",
            details={"column": date_col, "rows": bad_rows.head(20).to_list()},
        )

    def number_log(n: _Number, cleaned_message: str) -> None:
        invalid, invalid_rows = _issue(stats, f"{n.key}#inv")
        if invalid:
            values = (
                scan.with_row_index(ROW, offset=1)
                .filter(pl.col(ROW).is_in(invalid_rows.head(3).implode()))
                .select(pl.col(n.column).cast(pl.String))
                .collect(engine="streaming")
                .get_column(n.column)
                .to_list()
            )
            raise numeric_error(n.column, invalid, invalid_rows.to_list(), values)
        fast = stats[f"{n.key}#pf#n"] == 0  # parse_numbers' per-column fast path
        cleaned = (0, None) if fast else _issue(stats, f"{n.key}#cl")
        nonfinite = _issue(stats, f"{n.key}#fn" if fast else f"{n.key}#nf")
        log.add(
            CHANGED, "cleaned_number", cleaned_message, column=n.column, rows=cleaned[1],
            count=cleaned[0],
        )  # fmt: skip
        log.add(
            CHANGED,
            "non_finite",
            non_finite_message(n.column),
            column=n.column,
            rows=nonfinite[1],
            count=nonfinite[0],
        )

    for n in numbers:
        if n.key == "response":
            continue
        number_log(
            n, f"Values of '{n.column}' with currency signs or separators were read as numbers."
        )
    level_of: dict[str, pl.Expr] = {}
    for role in levels:
        column = mapping.column_for(role) or role
        raw = _counts(rows.filter(has_id), role)
        raw = raw.with_columns(_level_text(pl.col(role)).alias("level"))
        counts = raw.group_by("level").agg(pl.col("n").sum())
        level = raw.get_column("level")
        if counts.height > MAX_LEVELS:
            keep = counts.sort(["n", "level"], descending=[True, False]).head(MAX_LEVELS - 1)
            level = pl.select(
                pl.when(level.is_in(keep.get_column("level").implode()))
                .then(level)
                .otherwise(pl.lit("other"))
            ).to_series()
            log.warn(
                "many_levels",
                f"'{column}' has {counts.height} distinct values; the "
                f"{MAX_LEVELS - 1} most frequent are kept and the rest grouped as 'other'.",
                column=column,
            )
        level_of[role] = _level_map(role, raw.get_column(role), level)
    if response is not None:
        number_log(
            numbers[-1],
            f"Values of '{resp_col}' with currency signs or separators were read as numbers.",
        )

    _log_issue(
        log, stats, "no_date", EXCLUDED, "unparseable_date",
        f"Transactions whose '{date_col}' is not a date were not used.", date_col,
    )  # fmt: skip
    _log_issue(
        log, stats, "no_amount", EXCLUDED, "missing_amount",
        f"Transactions without an amount in '{amount_col}' were not used.", amount_col,
    )  # fmt: skip
    reference = reference_date
    if reference is None:
        dates = _counts(rows.filter(usable), "date")
        reference = latest_plausible_from_counts(dates)
    late = usable & (pl.col("date") > pl.lit(reference))
    final = usable & ~late
    stats = (
        rows.select(
            *_flag("late", late),
            *_flag("negative", final & (pl.col("amount") < 0)),
            final.sum().alias("used"),
        )
        .collect(engine="streaming")
        .row(0, named=True)
    )
    grouped = [level_of[role].alias(role) for role in levels]
    # The levels the used rows have: the distinct raw values first, every role in one
    # streaming pass, then their levels on those few rows. (Levels computed on every row, or
    # distinct values inside the counting query above, gathered all the rows: 7-9 GB at 100M.)
    present = (
        rows.filter(final).select(levels).unique().collect(engine="streaming").select(grouped)
        if levels
        else pl.DataFrame()
    )
    _log_issue(
        log, stats, "late", EXCLUDED, "date_after_reference",
        f"Transactions after the reference date {reference!s} were not used.", date_col,
    )  # fmt: skip
    if stats["negative#n"]:  # a warning is recorded even at 0: only when there are some
        _log_issue(
            log, stats, "negative", WARNING, "negative_amount",
            f"Negative amounts in '{amount_col}' are treated as "
            "returns and netted against the customer's spend.", amount_col,
        )  # fmt: skip
    used = int(stats["used"])
    if used == 0:
        raise InputError("No transaction row is usable.", code="no_usable_rows")
    assert reference is not None  # rows exist, so there is a latest date

    keep_columns = ["customer_id", "date", "amount", "order", "deal"]
    keep_columns += levels + (["response"] if response is not None else [])
    final_levels = {role: sorted(present.get_column(role).unique().to_list()) for role in levels}
    tables = []
    for piece in pieces:
        tx = piece.filter(final).with_columns(grouped).select(keep_columns).collect()
        if tx.height:
            tables.append(per_customer_table(tx, reference, levels=final_levels))
        del tx
    report = log.report(rows_read=rows_read, rows_used=used)
    table = _sorted_by_id(tables)
    return CustomerTable(table=table, report=report, reference_date=reference)


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


def _level_map(role: str, raw: pl.Series, level: pl.Series) -> pl.Expr:
    """Raw value -> level (cleaned, the rare ones grouped as ``other``), for the distinct values
    ``raw`` seen: the cleaning of ``_levels`` without a regular expression per row."""
    known = pl.DataFrame({"raw": raw, "level": level}).filter(pl.col("raw").is_not_null())
    missing = level.filter(raw.is_null())
    mapped = pl.col(role).replace_strict(
        known.get_column("raw"), known.get_column("level"), default=None, return_dtype=pl.String
    )
    if missing.len():
        return pl.when(pl.col(role).is_null()).then(pl.lit(missing[0])).otherwise(mapped)
    return mapped


def latest_plausible_from_counts(counts: pl.DataFrame) -> dt.date | None:
    """:func:`~sistack.domain.validation.latest_plausible_date` from ``date, n`` counts.

    The same answer without the dates themselves: the latest ``MAX_LATE_SHARE`` of them are
    the distinct dates from the top down until their counts cover that many.
    """
    if counts.height == 0:
        return None
    total = int(counts.get_column("n").sum())
    take = int(total * MAX_LATE_SHARE) + 1
    top = counts.sort("date", descending=True)
    covered = top.get_column("n").cum_sum()
    tail = top.filter((covered - top.get_column("n")) < take).sort("date").get_column("date")
    gaps = (tail.diff().dt.total_days() > DATE_GAP_DAYS).fill_null(False).arg_true()
    if gaps.len():
        return cast(dt.date, tail[int(gaps[0]) - 1])
    return cast(dt.date, tail[-1])
