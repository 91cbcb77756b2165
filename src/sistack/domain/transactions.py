"""Transactions -> one row per customer, in the same canonical vocabulary as customer-level data.

Per customer: orders, revenue, first and last purchase, recency, orders per channel, spend per
category, orders with a discount, campaign response, and the mean time between purchases. The
reference ("as of") date is the latest transaction date unless the caller gives one; it is never
the wall clock.

Two more columns feed the customer-value model (BG/NBD + Gamma-Gamma), which counts purchases
per day as the published method does (several orders on one day are one purchase):
``purchase_days`` (distinct days with a purchase) and ``repeat_revenue`` (spend on the days after
the first one). They are not segmentation features.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import polars as pl

from sistack.domain.quality import EXCLUDED, WARNING, QualityLog
from sistack.domain.schema import TRANSACTIONS, ColumnMapping, require_roles
from sistack.domain.validation import (
    ROW,
    CustomerTable,
    check_numeric,
    clean_ids,
    latest_plausible_date,
    log_number_changes,
    rows_where,
)
from sistack.domain.values import parse_dates, parse_numbers
from sistack.errors import InputError, row_examples

MAX_LEVELS = 12  # channels / categories kept by name; the rest become "other"


def _number(frame: pl.DataFrame, column: str, log: QualityLog, *, flags: bool = False) -> pl.Series:
    parsed = parse_numbers(frame.get_column(column), flags=flags)
    check_numeric(frame, column, parsed.invalid)
    log_number_changes(
        frame,
        column,
        parsed,
        log,
        cleaned=f"Values of '{column}' with currency signs or separators were read as numbers.",
    )
    return parsed.values


def _levels(values: pl.Series, column: str, log: QualityLog) -> pl.Series:
    cleaned = (
        values.cast(pl.String)
        .str.to_lowercase()
        .str.replace_all(r"[^0-9a-z]+", "_")
        .str.strip_chars("_")
        .replace("", None)
        .fill_null("unknown")
    )
    counts = cleaned.value_counts(sort=True, name="n")
    if counts.height > MAX_LEVELS:
        keep = counts.sort(["n", values.name], descending=[True, False]).head(MAX_LEVELS - 1)
        kept = set(keep.get_column(values.name).to_list())
        log.warn(
            "many_levels",
            f"'{column}' has {counts.height} distinct values; the "
            f"{MAX_LEVELS - 1} most frequent are kept and the rest grouped as 'other'.",
            column=column,
        )
        cleaned = pl.select(
            pl.when(cleaned.is_in(list(kept))).then(cleaned).otherwise(pl.lit("other"))
        ).to_series()
    return cleaned


def aggregate_transactions(
    frame: pl.DataFrame,
    mapping: ColumnMapping,
    *,
    reference_date: dt.date | None = None,
) -> CustomerTable:
    """Validate transaction rows and aggregate them to a canonical customer table."""
    if mapping.shape != TRANSACTIONS:
        raise ValueError("aggregate_transactions needs a transaction mapping")
    require_roles(mapping)
    rows_read = frame.height
    if rows_read == 0:
        raise InputError("The file has a header but no data rows.", code="no_data_rows")
    log = QualityLog()
    frame = frame.with_row_index(ROW, offset=1)
    id_col = mapping.column_for("customer_id")
    assert id_col is not None
    frame = clean_ids(frame, id_col, log)

    date_col = mapping.column_for("timestamp")
    assert date_col is not None
    parsed, _ = parse_dates(frame.get_column(date_col))
    bad = parsed.invalid | parsed.values.is_null()
    if bad.sum() > 0.5 * frame.height:
        raise InputError(
            f"Column '{date_col}' was mapped to the transaction date but {int(bad.sum())} values "
            f"are not dates ({row_examples(rows_where(frame, bad).to_list())}).",
            code="invalid_dates",
            details={"column": date_col, "rows": rows_where(frame, bad).head(20).to_list()},
        )
    columns: dict[str, pl.Series] = {
        "customer_id": frame.get_column("customer_id"),
        "date": parsed.values.alias("date"),
    }
    amount_col = mapping.column_for("amount")
    if amount_col is not None:
        amount = _number(frame, amount_col, log)
    else:
        qty_col, price_col = mapping.column_for("quantity"), mapping.column_for("unit_price")
        assert qty_col is not None and price_col is not None
        amount = _number(frame, qty_col, log) * _number(frame, price_col, log)
        amount_col = f"{qty_col} x {price_col}"
    columns["amount"] = amount.alias("amount")
    order_col = mapping.column_for("order_id")
    order = (
        frame.get_column(order_col).cast(pl.String)
        if order_col
        else frame.get_column(ROW).cast(pl.String)
    )
    columns["order"] = order.alias("order")
    deal = pl.repeat(False, frame.height, dtype=pl.Boolean, eager=True).alias("deal")
    flag_col = mapping.column_for("discount_flag")
    if flag_col:
        deal = deal | (_number(frame, flag_col, log, flags=True) > 0).fill_null(False)
    disc_col = mapping.column_for("discount_amount")
    if disc_col:
        deal = deal | (_number(frame, disc_col, log) > 0).fill_null(False)
    columns["deal"] = deal.alias("deal")
    for role in ("channel", "category"):
        col = mapping.column_for(role)
        if col:
            columns[role] = _levels(frame.get_column(col), col, log).alias(role)
    resp_col = mapping.column_for("campaign_response")
    if resp_col:
        columns["response"] = _number(frame, resp_col, log, flags=True).alias("response")
    tx = pl.DataFrame(columns).with_columns(frame.get_column(ROW))

    excluded = tx.get_column("date").is_null()
    log.add(
        EXCLUDED,
        "unparseable_date",
        f"Transactions whose '{date_col}' is not a date were not used.",
        column=date_col,
        rows=rows_where(tx, excluded),
    )
    tx = tx.filter(~excluded)
    missing_amount = tx.get_column("amount").is_null()
    log.add(
        EXCLUDED,
        "missing_amount",
        f"Transactions without an amount in '{amount_col}' were not used.",
        column=amount_col,
        rows=rows_where(tx, missing_amount),
    )
    tx = tx.filter(~missing_amount)
    reference = reference_date or latest_plausible_date(tx.get_column("date"))
    if reference is not None:
        late = tx.get_column("date") > reference
        log.add(
            EXCLUDED,
            "date_after_reference",
            f"Transactions after the reference date {reference!s} were not used.",
            column=date_col,
            rows=rows_where(tx, late),
        )
        tx = tx.filter(~late)
    negative = (tx.get_column("amount") < 0).fill_null(False)
    if negative.any():
        log.add(
            WARNING,
            "negative_amount",
            f"Negative amounts in '{amount_col}' are treated as "
            "returns and netted against the customer's spend.",
            column=amount_col,
            rows=rows_where(tx, negative),
        )
    if tx.height == 0:
        raise InputError("No transaction row is usable.", code="no_usable_rows")

    assert reference is not None  # rows exist, so there is a latest date
    table = per_customer_table(tx.drop(ROW), reference)
    report = log.report(rows_read=rows_read, rows_used=tx.height)
    return CustomerTable(table=table, report=report, reference_date=reference)


def per_customer_table(
    tx: pl.DataFrame, reference: dt.date, *, levels: Mapping[str, Sequence[str]] | None = None
) -> pl.DataFrame:
    """Clean transaction rows -> one row per customer (see the module docstring).

    ``levels`` names the channels and categories that get a column (default: those in ``tx``);
    a caller aggregating part of the rows at a time passes those of all the rows.
    """
    levels = levels or {}
    # Orders are counted on rows first: when no order of a customer spans two rows (the usual
    # file: one row per order, or no order id at all), that is the count of distinct orders,
    # for a fraction of the cost of a set of order ids per customer and channel. Only when some
    # order spans rows are those counts made again with the sets. Same numbers either way.
    counted: list[tuple[str, pl.Expr]] = [("deal_purchases", pl.col("deal"))]
    if "channel" in tx.columns:
        channels = levels.get("channel") or tx.get_column("channel").unique().sort().to_list()
        counted += [(f"purchases_{ch}", pl.col("channel") == ch) for ch in channels]
    aggs: list[pl.Expr] = [
        pl.col("date").min().alias("signup_date"),
        pl.col("date").max().alias("last_date"),
        pl.col("order").n_unique().alias("orders"),
        pl.len().alias("_rows"),
        (pl.col("cents").sum().clip(lower_bound=0) / 100).alias("revenue"),
        *(where.sum().cast(pl.UInt32).alias(name) for name, where in counted),
    ]
    if "category" in tx.columns:
        categories = levels.get("category") or tx.get_column("category").unique().sort().to_list()
        for cat in categories:
            spend = pl.when(pl.col("category") == cat).then(pl.col("cents")).otherwise(0).sum()
            aggs.append((spend.clip(lower_bound=0) / 100).alias(f"spend_{cat}"))
    if "response" in tx.columns:
        aggs.append(pl.col("response").max().alias("response"))
    # The value model's inputs come last, so the columns above keep their order.
    first_day = pl.col("date") == pl.col("date").min()
    aggs += [
        pl.col("date").n_unique().alias("purchase_days"),
        (pl.col("cents").filter(~first_day).sum().clip(lower_bound=0) / 100).alias(
            "repeat_revenue"
        ),
    ]
    # Money is summed as integer cents: exact, so a multi-threaded group-by gives the same bits
    # in every run whatever order it adds the partial sums in.
    rows = tx.lazy().with_columns(cents=(pl.col("amount") * 100).round().cast(pl.Int64))
    out = rows.group_by("customer_id").agg(aggs).sort("customer_id").collect()
    if (out.get_column("orders") != out.get_column("_rows")).any():
        sets = [pl.col("order").filter(where).n_unique().alias(n) for n, where in counted]
        exact = rows.group_by("customer_id").agg(sets).sort("customer_id").collect()
        out = out.with_columns(exact.drop("customer_id"))
    out = (
        out.lazy()
        .drop("_rows")
        .with_columns(
            recency_days=(pl.lit(reference) - pl.col("last_date")).dt.total_days(),
            # One purchase: the mean gap is unknown; the time since that purchase is a lower bound.
            inter_purchase_days=pl.when(pl.col("orders") > 1)
            .then(
                (pl.col("last_date") - pl.col("signup_date")).dt.total_days()
                / (pl.col("orders") - 1)
            )
            .otherwise((pl.lit(reference) - pl.col("signup_date")).dt.total_days()),
        )
        .drop("last_date")
        .collect()
    )
    numeric = [c for c in out.columns if c not in ("customer_id", "signup_date")]
    return out.with_columns(pl.col(numeric).cast(pl.Float64))
