"""From a raw customer-level table and a mapping to a typed, cleaned customer table.

The output has canonical column names (``customer_id``, ``income``, ``purchases_web``,
``spend_wines``, ``campaign_cmp1`` ...) whatever the input called them, so everything downstream
works on one vocabulary. Every excluded row and every changed value is logged in the quality
report; unusable input raises an :class:`~sistack.errors.InputError` naming column and rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import cast

import numpy as np
import polars as pl

from sistack.domain.quality import CHANGED, EXCLUDED, WARNING, QualityLog, QualityReport
from sistack.domain.schema import CUSTOMERS, ColumnMapping, require_roles, role_kind
from sistack.domain.values import MAX_MAGNITUDE, Parsed, parse_dates, parse_numbers
from sistack.errors import InputError, row_examples

ROW = "_row"

# Roles whose missing values mean "none" rather than "unknown".
ZERO_IF_MISSING = ("kids", "teens", "complaints", "deal_purchases", "orders", "revenue")
ZERO_FAMILIES = ("purchases", "spend", "campaign")
# Roles imputed with the median when missing.
MEDIAN_IF_MISSING = ("income", "age", "recency_days", "web_visits")
# Roles that cannot be negative.
NON_NEGATIVE = (
    "kids",
    "teens",
    "complaints",
    "deal_purchases",
    "orders",
    "revenue",
    "web_visits",
    "recency_days",
    "income",
    "cost_contact",
    "revenue_per_response",
)
MIN_AGE, MAX_AGE = 16, 100
# A few signup dates far after all the others (a 2099 typed for 2019) must not move the reference
# date, and so every customer's tenure, decades ahead: see :func:`latest_plausible_date`.
DATE_GAP_DAYS = 366
MAX_LATE_SHARE = 0.05


@dataclass(frozen=True)
class CustomerTable:
    """A validated customer table, its quality report and the reference ("as of") date."""

    table: pl.DataFrame
    report: QualityReport
    reference_date: dt.date | None


def canonical_name(role: str) -> str:
    """``purchases:web`` -> ``purchases_web``; single roles keep their name."""
    return role.replace(":", "_")


def rows_where(frame: pl.DataFrame, mask: pl.Series) -> pl.Series:
    """The file row numbers of the rows where ``mask`` holds."""
    return frame.get_column(ROW).filter(mask)


def log_number_changes(
    frame: pl.DataFrame, column: str, parsed: Parsed, log: QualityLog, *, cleaned: str
) -> None:
    """Record what reading ``column`` as numbers changed: values cleaned of currency signs or
    separators (``cleaned`` says which), and non-finite values treated as missing."""
    log.add(
        CHANGED, "cleaned_number", cleaned, column=column, rows=rows_where(frame, parsed.cleaned)
    )
    log.add(
        CHANGED,
        "non_finite",
        non_finite_message(column),
        column=column,
        rows=rows_where(frame, parsed.nonfinite),
    )


def non_finite_message(column: str) -> str:
    return (
        f"Infinite, NaN or implausibly large values (beyond ±{MAX_MAGNITUDE:.0e}) of "
        f"'{column}' were treated as missing."
    )


def clean_ids(frame: pl.DataFrame, column: str, log: QualityLog) -> pl.DataFrame:
    """Give every row a text customer id; drop rows without one (counted)."""
    ids = frame.get_column(column)
    if ids.dtype.is_float():
        ids = pl.Series(column, ids.cast(pl.Int64, strict=False))
    ids = ids.cast(pl.String).str.strip_chars()
    frame = frame.with_columns(ids.alias("customer_id"))
    missing = frame.get_column("customer_id").is_null() | (frame.get_column("customer_id") == "")
    log.add(
        EXCLUDED,
        "missing_customer_id",
        f"Rows without a customer id in '{column}' were not used.",
        column=column,
        rows=rows_where(frame, missing),
    )
    return frame.filter(~missing)


def check_numeric(frame: pl.DataFrame, column: str, invalid: pl.Series) -> None:
    """Raise when a numeric column holds values that are not numbers."""
    if not invalid.any():
        return
    rows = rows_where(frame, invalid).to_list()
    values = frame.get_column(column).filter(invalid).head(3).cast(pl.String).to_list()
    raise numeric_error(column, len(rows), rows[:20], values)


def numeric_error(column: str, count: int, rows: list[int], values: list[str | None]) -> InputError:
    """The error for ``count`` values of ``column`` that are not numbers (first rows, values)."""
    shown = ", ".join(repr(v) for v in values)
    return InputError(  # ``rows``: the first 20 or all, so "..." shows exactly when it should
        f"Column '{column}' has {count} values that are not numbers ({row_examples(rows)}: "
        f"{shown}). Fix or clear those cells, or map the column to 'ignore'.",
        code="non_numeric_values",
        details={"column": column, "count": count, "rows": rows[:20], "examples": values},
    )


# Raw (text) cells of a lazy table held in memory at once while it is typed: 80 million cells
# of a 10-million-row file are 8 columns, about 1.3 GB of Polars strings.
BLOCK_CELLS = 80_000_000


def _blocks(
    frame: pl.DataFrame | pl.LazyFrame, columns: list[str], keep: pl.Series, block_cells: int
) -> list[list[str]]:
    """Groups of columns read together: all at once from memory, a few at a time lazily."""
    if isinstance(frame, pl.DataFrame):
        return [columns]
    per_block = max(1, block_cells // max(1, keep.len()))
    return [columns[i : i + per_block] for i in range(0, len(columns), per_block)]


def _read_block(
    frame: pl.DataFrame | pl.LazyFrame, columns: list[str], keep: pl.Series, rows: pl.Series
) -> pl.DataFrame:
    """The kept rows of ``columns`` with their 1-based row numbers (``ROW``)."""
    if isinstance(frame, pl.LazyFrame):
        block = frame.select(columns).collect(engine="streaming")
    else:
        block = frame.select(columns)
    return block.filter(keep).with_columns(rows)


def validate_customers(
    frame: pl.DataFrame | pl.LazyFrame,
    mapping: ColumnMapping,
    *,
    reference_date: dt.date | None = None,
    block_cells: int = BLOCK_CELLS,
) -> CustomerTable:
    """Type, clean and de-duplicate a customer-level table.

    Args:
        frame: the raw table (text or typed columns) as read; or a lazy scan of a file too
            large to hold as text, whose id column is read first and the other columns a few at
            a time (at most ``block_cells`` raw cells in memory). Only typed values are kept,
            and the result is the same as for the table read whole.
        mapping: column -> role, shape ``customers``.
        reference_date: the "as of" date; by default the latest signup date in the data.
    """
    if mapping.shape != CUSTOMERS:
        raise ValueError("validate_customers needs a customer-level mapping")
    require_roles(mapping)
    log = QualityLog()
    id_column = mapping.column_for("customer_id")
    assert id_column is not None
    if isinstance(frame, pl.LazyFrame):
        ids = frame.select(id_column).collect(engine="streaming")
    else:
        ids = frame.select(id_column)
    rows_read = ids.height
    if rows_read == 0:
        raise InputError("The file has a header but no data rows.", code="no_data_rows")
    ids = ids.with_row_index(ROW, offset=1)
    ids = clean_ids(ids, id_column, log)

    # Every occurrence of an id after its first (the first of each id is kept).
    dupes = ~ids.get_column("customer_id").is_first_distinct()
    log.add(
        EXCLUDED,
        "duplicate_customer_id",
        f"Rows repeating a customer id already seen in '{id_column}' were not used "
        "(the first row of each id is kept).",
        column=id_column,
        rows=rows_where(ids, dupes),
    )
    ids = ids.filter(~dupes)
    if ids.height == 0:
        raise InputError(
            f"No row has a usable customer id in column '{id_column}'.", code="no_usable_rows"
        )
    rows = ids.get_column(ROW)
    keep = pl.Series("keep", np.zeros(rows_read, dtype=np.bool_))
    keep = keep.scatter(rows.cast(pl.Int64) - 1, True)

    typed: dict[str, pl.Series] = {"customer_id": ids.get_column("customer_id")}
    del ids
    others = [c for c, r in mapping.columns.items() if r != "customer_id"]
    for block_columns in _blocks(frame, others, keep, block_cells):
        block = _read_block(frame, block_columns, keep, rows)
        numeric = [c for c in block_columns if role_kind(mapping.columns[c], CUSTOMERS) == "number"]
        # One select casts every numeric column at once (polars runs the columns in parallel).
        plain = block.select(pl.col(c).cast(pl.Float64, strict=False) for c in numeric)
        for column in block_columns:
            name, values = _typed_column(block, column, mapping.columns[column], plain, log)
            typed[name] = values
        del block, plain

    table = pl.DataFrame(typed)
    typed.clear()  # the table holds the only reference: columns replaced below are freed
    reference = reference_date
    if reference is None and "signup_date" in table.columns:
        reference = latest_plausible_date(table.get_column("signup_date"))
    table = _clean_values(table, rows, mapping, log, reference)
    report = log.report(rows_read=rows_read, rows_used=table.height)
    return CustomerTable(table=table, report=report, reference_date=reference)


def _typed_column(
    frame: pl.DataFrame, column: str, role: str, plain: pl.DataFrame, log: QualityLog
) -> tuple[str, pl.Series]:
    """One raw column typed as its role asks, the changes logged (raises on non-numbers)."""
    name = canonical_name(role)
    source = frame.get_column(column)
    if role_kind(role, CUSTOMERS) == "date":
        parsed, fmt = parse_dates(source)
        bad = parsed.invalid
        if bad.sum() > 0.5 * max(1, source.drop_nulls().len()):
            raise InputError(
                f"Column '{column}' was mapped to a date role but {int(bad.sum())} values "
                f"are not dates ({row_examples(rows_where(frame, bad).to_list())}).",
                code="invalid_dates",
                details={"column": column, "rows": rows_where(frame, bad).head(20).to_list()},
            )
        log.add(
            CHANGED,
            "unparseable_date",
            f"Values of '{column}' that are not dates were treated as missing.",
            column=column,
            rows=rows_where(frame, bad),
        )
        log.add(
            CHANGED,
            "mixed_date_formats",
            f"Some dates in '{column}' use another "
            f"format than the column's main one ({fmt}); they were read as dates.",
            column=column,
            rows=rows_where(frame, parsed.cleaned),
        )
        return name, parsed.values.alias(name)
    parsed_n = parse_numbers(source, flags=True, plain=plain.get_column(column))
    check_numeric(frame, column, parsed_n.invalid)
    log_number_changes(
        frame,
        column,
        parsed_n,
        log,
        cleaned=f"Values of '{column}' with currency signs, spaces, "
        "thousands separators or decimal commas were read as numbers.",
    )
    return name, parsed_n.values.alias(name)


def _constant(values: pl.Series) -> bool:
    """Every value equal (min == max is much cheaper than counting distinct values)."""
    if values.dtype.is_numeric() or values.dtype == pl.Date:
        return bool(values.min() == values.max())
    return values.n_unique() == 1


def latest_plausible_date(dates: pl.Series) -> dt.date | None:
    """The latest date, setting aside a few dates that lie far after all the others.

    Sorted ascending, the first gap of more than ``DATE_GAP_DAYS`` among the last
    ``MAX_LATE_SHARE`` of the dates marks the ones above it as implausible (typing accidents
    such as 2099): the latest date below the gap is returned. Without such a gap this is the
    plain maximum. Deterministic: it depends on the data only, never on the clock.
    """
    values = dates.drop_nulls()
    n = values.len()
    if n == 0:
        return None
    # Only the latest MAX_LATE_SHARE (plus one) can be set aside: select them without sorting
    # everything (transactions may be hundreds of millions of rows), then look for the gap.
    tail = values.top_k(int(n * MAX_LATE_SHARE) + 1).sort()
    gaps = (tail.diff().dt.total_days() > DATE_GAP_DAYS).fill_null(False).arg_true()
    if gaps.len():
        return cast(dt.date, tail[int(gaps[0]) - 1])
    return cast(dt.date, tail[-1])


def _source(mapping: ColumnMapping, name: str) -> str:
    for column, role in mapping.columns.items():
        if canonical_name(role) == name:
            return column
    return name


def _clean_values(
    table: pl.DataFrame,
    rows: pl.Series,
    mapping: ColumnMapping,
    log: QualityLog,
    reference: dt.date | None,
) -> pl.DataFrame:
    """Implausible values, negatives, future dates, imputation; each change logged."""
    for name in table.columns:
        if name == "customer_id":
            continue
        column = _source(mapping, name)
        values = table.get_column(name)
        if values.null_count() == values.len():
            log.warn(
                "all_missing_column",
                f"Column '{column}' has no values; it is not used to segment.",
                column=column,
            )
        elif values.null_count() == 0 and _constant(values):
            log.warn(
                "constant_column",
                f"Column '{column}' has the same value in every row; "
                "it cannot separate customers and is not used to segment.",
                column=column,
            )
        if name == "signup_date" and reference is not None:
            future = (values > reference).fill_null(False)
            log.add(
                CHANGED,
                "date_after_reference",
                f"Dates in '{column}' after the reference "
                f"date {reference.isoformat()} were set to it.",
                column=column,
                rows=rows.filter(future),
            )
            values = pl.select(pl.when(future).then(reference).otherwise(values)).to_series()
        if name == "birth_year":
            year = reference.year if reference is not None else None
            low = (year - MAX_AGE) if year else 1900
            high = (year - MIN_AGE) if year else 10_000
            bad = ((values < low) | (values > high)).fill_null(False)
            log.add(
                CHANGED,
                "implausible_birth_year",
                f"Birth years in '{column}' outside "
                f"{low}..{high} (age {MIN_AGE}..{MAX_AGE}) were treated as missing and "
                "imputed with the median.",
                column=column,
                rows=rows.filter(bad),
            )
            values = pl.select(pl.when(bad).then(None).otherwise(values)).to_series()
        if name == "age":
            bad = ((values < MIN_AGE) | (values > MAX_AGE)).fill_null(False)
            log.add(
                CHANGED,
                "implausible_age",
                f"Ages in '{column}' outside {MIN_AGE}.."
                f"{MAX_AGE} were treated as missing and imputed with the median.",
                column=column,
                rows=rows.filter(bad),
            )
            values = pl.select(pl.when(bad).then(None).otherwise(values)).to_series()
        family = name.split("_", 1)[0]
        if values.dtype.is_numeric() and (name in NON_NEGATIVE or family in ZERO_FAMILIES):
            negative = (values < 0).fill_null(False)
            log.add(
                CHANGED,
                "negative_value",
                f"Negative values in '{column}' were set to 0.",
                column=column,
                rows=rows.filter(negative),
            )
            if negative.any():
                values = values.clip(lower_bound=0)
        missing = values.is_null()
        if missing.any() and values.null_count() < values.len():
            if name in MEDIAN_IF_MISSING or name == "birth_year":
                median = cast(float, values.median())
                log.add(
                    CHANGED,
                    "imputed_median",
                    f"Missing values of '{column}' were filled with the median ({median:g}).",
                    column=column,
                    rows=rows.filter(missing),
                )
                values = values.fill_null(median)
            elif name in ZERO_IF_MISSING or family in ZERO_FAMILIES:
                log.add(
                    CHANGED,
                    "imputed_zero",
                    f"Missing values of '{column}' were read as 0.",
                    column=column,
                    rows=rows.filter(missing),
                )
                values = values.fill_null(0)
            elif name == "signup_date":
                log.add(
                    WARNING,
                    "missing_date",
                    f"Missing dates in '{column}': tenure is imputed with the median.",
                    column=column,
                    rows=rows.filter(missing),
                )
            elif name == "response":
                log.add(
                    WARNING,
                    "missing_label",
                    f"Missing values of '{column}' are left "
                    "unknown; those customers do not count in response rates.",
                    column=column,
                    rows=rows.filter(missing),
                )
        # Replaced one at a time, so the old column is freed before the next is made.
        table = table.with_columns(values.alias(name))
    return table
