"""Transaction rows typed by expressions, and the checks over the typed rows, for any engine.

The rules of :func:`~sistack.domain.transactions.aggregate_transactions`, written as Polars
expressions so that they run wherever the rows are: on a lazy scan in this process
(:mod:`~sistack.domain.transactions_stream`) or on every Arrow batch of a Spark executor
(:mod:`sistack.engines.spark`). In three steps:

1. :func:`date_format` chooses the date format on the first dates of the file (a small query);
2. :func:`row_typing` gives the expressions that type each row (ids, dates, amounts, flags, raw
   level text) and record what the quality report needs to know of it;
3. :func:`check_rows` asks a few small questions of the typed rows (counts and first example
   rows per issue, rows per distinct level text and per date) through :class:`TypedRows`, and
   turns the answers into the quality report, the reference date, the levels kept by name and
   the filter of the rows used.

The engine then aggregates the used rows per customer (:meth:`Checked.transactions`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Protocol, cast

import polars as pl

from sistack.domain.quality import CHANGED, EXCLUDED, WARNING, QualityLog, QualityReport
from sistack.domain.schema import TRANSACTIONS, ColumnMapping, require_roles
from sistack.domain.transactions import MAX_LEVELS
from sistack.domain.validation import (
    DATE_GAP_DAYS,
    MAX_LATE_SHARE,
    ROW,
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

EXAMPLES = 20  # first rows kept per issue: enough for the report (10) and for messages (20)
DATE_SAMPLE = 5000  # first dates (of rows with an id) the date format is chosen on

DateFormat = tuple[str, bool] | None
"""A date format and whether it has a time (:func:`~sistack.domain.values.choose_date_format`);
None when no format reads the sample, or when the column is typed already."""


class TypedRows(Protocol):
    """The small queries :func:`check_rows` asks of the typed rows (:attr:`RowTyping.columns`),
    answered by the engine that holds them. Every answer is bounded by the number of issues,
    distinct level values or dates, never by the number of rows."""

    def summary(self, exprs: list[pl.Expr]) -> dict[str, Any]:
        """``exprs`` (from :func:`summary_exprs`) over all the rows, as one named row."""
        ...

    def value_counts(self, where: pl.Expr, column: str) -> pl.DataFrame:
        """Rows per distinct value of ``column`` among the rows ``where`` holds: ``column, n``."""
        ...

    def distinct(self, where: pl.Expr, columns: list[str]) -> pl.DataFrame:
        """The distinct values of ``columns`` among the rows ``where`` holds."""
        ...

    def raw_values(self, column: str, rows: list[int]) -> list[Any]:
        """The input's values of ``column`` (as text) on the given row numbers, in row order."""
        ...


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


def _columns(mapping: ColumnMapping) -> tuple[str, str]:
    if mapping.shape != TRANSACTIONS:
        raise ValueError("typing transaction rows needs a transaction mapping")
    require_roles(mapping)
    id_col, date_col = mapping.column_for("customer_id"), mapping.column_for("timestamp")
    assert id_col is not None and date_col is not None
    return id_col, date_col


def date_sample(schema: pl.Schema, mapping: ColumnMapping) -> tuple[pl.Expr, pl.Expr] | None:
    """The rows whose date text the format is chosen on (those with an id and a date), and that
    text; None when the date column is typed (nothing to choose). The format is chosen on the
    first :data:`DATE_SAMPLE` of them, in file order (:func:`date_format`)."""
    id_col, date_col = _columns(mapping)
    dtype = schema[date_col]
    if dtype == pl.Date or isinstance(dtype, pl.Datetime):
        return None
    ids = _ids(schema, id_col)
    text, missing = date_text(pl.col(date_col))
    return ids.is_not_null() & (ids != "") & ~missing, text


def date_format(sample: pl.Series) -> DateFormat:
    """The format of the dates, chosen on the first :data:`DATE_SAMPLE` texts of
    :func:`date_sample` (fewer when the file has fewer)."""
    return choose_date_format(sample.head(DATE_SAMPLE))


def _date(schema: pl.Schema, column: str, chosen: DateFormat) -> pl.Expr:
    """The date expression, for a typed column or text in the format ``chosen``."""
    dtype = schema[column]
    if dtype == pl.Date:
        return pl.col(column)
    if isinstance(dtype, pl.Datetime):
        return pl.col(column).dt.date()
    if chosen is None:
        return pl.lit(None, dtype=pl.Date)
    text, missing = date_text(pl.col(column))
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


@dataclass(frozen=True)
class RowTyping:
    """How the raw rows of one transaction file are typed (see :func:`row_typing`).

    ``columns`` are expressions over the raw columns and the 1-based row number ``ROW`` (in
    file order); they give ``ROW, customer_id, _no_id, date, amount, order, deal``, the raw
    text of each level role, ``response`` when mapped, and five flag columns per numeric
    source column (``<key>#pf|fn|cl|nf|inv``, see :class:`~sistack.domain.values.NumberExprs`).
    """

    ids: pl.Expr  # the cleaned customer id, over the raw columns
    columns: tuple[pl.Expr, ...]
    numbers: tuple[_Number, ...]  # in the order aggregate_transactions logs them
    levels: dict[str, str]  # level role mapped (channel, category) -> its column
    id_col: str
    date_col: str
    amount_col: str  # as the report names it ("quantity x unit_price" for a product)
    response_col: str | None


def row_typing(schema: pl.Schema, mapping: ColumnMapping, chosen: DateFormat) -> RowTyping:
    """The typed-row expressions for raw columns of ``schema`` (text or typed), dates in the
    format ``chosen`` (see :func:`date_format`)."""
    id_col, date_col = _columns(mapping)
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

    order_col = mapping.column_for("order_id")
    columns: list[pl.Expr] = [
        pl.col(ROW),
        ids.alias("customer_id"),
        (ids.is_null() | (ids == "")).alias("_no_id"),
        _date(schema, date_col, chosen).alias("date"),
        amount.alias("amount"),
        (pl.col(order_col) if order_col else pl.col(ROW)).cast(pl.String).alias("order"),
        deal.alias("deal"),
    ]
    levels = {r: c for r in ("channel", "category") if (c := mapping.column_for(r))}
    for role, column in levels.items():  # raw text: cleaned later on the distinct values only
        columns.append(pl.col(column).cast(pl.String).alias(role))
    resp_col = mapping.column_for("campaign_response")
    if resp_col:
        numbers.append(_number(schema, resp_col, "response", flags=True))
        columns.append(numbers[-1].exprs.value.alias("response"))
    for n in numbers:
        e = n.exprs
        columns += [
            e.plain_failed.alias(f"{n.key}#pf"),
            e.fast_nonfinite.alias(f"{n.key}#fn"),
            e.cleaned.alias(f"{n.key}#cl"),
            e.nonfinite.alias(f"{n.key}#nf"),
            e.invalid.alias(f"{n.key}#inv"),
        ]
    return RowTyping(
        ids=ids,
        columns=tuple(columns),
        numbers=tuple(numbers),
        levels=levels,
        id_col=id_col,
        date_col=date_col,
        amount_col=amount_col,
        response_col=resp_col,
    )


def _flag(name: str, mask: pl.Expr) -> list[pl.Expr]:
    """Count of a row flag and its first rows (by file order)."""
    return [
        mask.sum().alias(f"{name}#n"),
        pl.col(ROW).filter(mask).bottom_k(EXAMPLES).sort().implode().alias(f"{name}#rows"),
    ]


def merge_summaries(parts: pl.DataFrame) -> pl.DataFrame:
    """Summaries of disjoint sets of rows (one row each) -> the summary of all those rows.

    Counts add up; the first rows of a flag (columns ``<flag>#rows``) are the first
    :data:`EXAMPLES` of all the parts' first rows.
    """
    return parts.select(
        pl.col(c).explode().drop_nulls().bottom_k(EXAMPLES).sort().implode()
        if c.endswith("#rows")
        else pl.col(c).sum().cast(pl.Int64)
        for c in parts.columns
    )


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


@dataclass(frozen=True)
class Checked:
    """What :func:`check_rows` decided: the report, and which rows and levels are aggregated."""

    report: QualityReport
    reference_date: dt.date
    used: pl.Expr  # the rows aggregated
    level_of: dict[str, pl.Expr]  # per level role: raw text -> level (rare ones as "other")
    levels: dict[str, list[str]]  # per level role: the levels of the used rows, sorted
    keep: tuple[str, ...]  # the columns per_customer_table reads

    def transactions(self, rows: pl.LazyFrame) -> pl.LazyFrame:
        """The used rows of (a part of) the typed rows, with their levels, as
        :func:`~sistack.domain.transactions.per_customer_table` takes them."""
        grouped = [expr.alias(role) for role, expr in self.level_of.items()]
        return rows.filter(self.used).with_columns(grouped).select(self.keep)


def check_rows(
    typing: RowTyping, rows: TypedRows, *, reference_date: dt.date | None = None
) -> Checked:
    """The checks of ``aggregate_transactions`` over typed rows, by small queries (see the module).

    Raises:
        InputError: no data rows, mostly unreadable dates, values that are not numbers, or no
            usable row (the messages of ``aggregate_transactions``).
    """
    log = QualityLog()
    id_col, date_col, amount_col = typing.id_col, typing.date_col, typing.amount_col
    has_id = ~pl.col("_no_id")
    dated = has_id & pl.col("date").is_not_null()
    usable = dated & pl.col("amount").is_not_null()
    stats_exprs = [pl.len().alias("rows_read"), has_id.sum().alias("with_id")]
    stats_exprs += _flag("no_id", pl.col("_no_id"))
    stats_exprs += _flag("no_date", has_id & pl.col("date").is_null())
    stats_exprs += _flag("no_amount", dated & pl.col("amount").is_null())
    for n in typing.numbers:
        stats_exprs.append((has_id & pl.col(f"{n.key}#pf")).sum().alias(f"{n.key}#pf#n"))
        for flag in ("fn", "cl", "nf", "inv"):
            stats_exprs += _flag(f"{n.key}#{flag}", has_id & pl.col(f"{n.key}#{flag}"))
    stats = rows.summary(stats_exprs)
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

    def number_log(n: _Number) -> None:
        invalid, invalid_rows = _issue(stats, f"{n.key}#inv")
        if invalid:
            values = rows.raw_values(n.column, invalid_rows.head(3).to_list())
            raise numeric_error(n.column, invalid, invalid_rows.to_list(), values)
        fast = stats[f"{n.key}#pf#n"] == 0  # parse_numbers' per-column fast path
        cleaned = (0, None) if fast else _issue(stats, f"{n.key}#cl")
        nonfinite = _issue(stats, f"{n.key}#fn" if fast else f"{n.key}#nf")
        log.add(
            CHANGED,
            "cleaned_number",
            f"Values of '{n.column}' with currency signs or separators were read as numbers.",
            column=n.column,
            rows=cleaned[1],
            count=cleaned[0],
        )
        log.add(
            CHANGED,
            "non_finite",
            non_finite_message(n.column),
            column=n.column,
            rows=nonfinite[1],
            count=nonfinite[0],
        )

    for n in typing.numbers:
        if n.key != "response":
            number_log(n)
    level_of = {role: _level_of(typing, role, rows, has_id, log) for role in typing.levels}
    if typing.response_col is not None:
        number_log(typing.numbers[-1])

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
        reference = latest_plausible_from_counts(rows.value_counts(usable, "date"))
    late = usable & (pl.col("date") > pl.lit(reference))
    final = usable & ~late
    negative = final & (pl.col("amount") < 0)
    stats = rows.summary(
        [*_flag("late", late), *_flag("negative", negative), final.sum().alias("used")]
    )
    # The levels the used rows have: the distinct raw values first, every role in one pass,
    # then their levels on those few rows. (Levels computed on every row, or distinct values
    # inside the counting query above, gathered all the rows: 7-9 GB at 100M.)
    levels = list(typing.levels)
    present = (
        rows.distinct(final, levels).select(level_of[role].alias(role) for role in levels)
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

    keep = ("customer_id", "date", "amount", "order", "deal", *levels)
    return Checked(
        report=log.report(rows_read=rows_read, rows_used=used),
        reference_date=reference,
        used=final,
        level_of=level_of,
        levels={role: sorted(present.get_column(role).unique().to_list()) for role in levels},
        keep=keep + (("response",) if typing.response_col is not None else ()),
    )


def _level_of(
    typing: RowTyping, role: str, rows: TypedRows, has_id: pl.Expr, log: QualityLog
) -> pl.Expr:
    """The level map of one role, from the rows per distinct raw value (``_levels``' rules)."""
    column = typing.levels[role]
    raw = rows.value_counts(has_id, role)
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
    return _level_map(role, raw.get_column(role), level)


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
