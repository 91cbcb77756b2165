"""Typing raw cells: numbers, dates and flags, with an account of what was cleaned or rejected.

Readers hand over text (CSV, XLSX) or typed columns (Parquet); these functions turn one column
into typed values and say which rows needed cleaning and which could not be read at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

NULL_TOKENS = ("", "na", "n/a", "nan", "null", "none", "nil", "-", "--", "?", "#n/a", "missing")

DATE_FORMATS = (
    "%Y-%m-%d",
    "%d-%m-%Y",
    "%m-%d-%Y",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%Y/%m/%d",
    "%d.%m.%Y",
    "%Y%m%d",
)
DATETIME_FORMATS = (
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%d/%m/%Y %H:%M",
    "%m/%d/%Y %H:%M",
    "%d-%m-%Y %H:%M",
)

# Beyond any plausible amount, count or income: such values are typing accidents or hostile, and
# their sums and squares overflow float64 (1e308 + 1e308 = inf) downstream.
MAX_MAGNITUDE = 1e15

_THOUSANDS = r"^[-+]?\d{1,3}(,\d{3})+(\.\d+)?$"
_DECIMAL_COMMA = r"^[-+]?\d+,\d+$"
_FLAG_TRUE = ("true", "yes", "y", "t")
_FLAG_FALSE = ("false", "no", "n", "f")


@dataclass(frozen=True)
class Parsed:
    """A typed column plus the rows (0-based positions) that were cleaned, invalid or non-finite."""

    values: pl.Series
    cleaned: pl.Series  # Boolean: text needed cleaning (currency, separators) to read
    invalid: pl.Series  # Boolean: present but not readable as the wanted type
    nonfinite: pl.Series  # Boolean: inf / nan / beyond MAX_MAGNITUDE, treated as missing


def _is_null_token(text: pl.Series) -> pl.Series:
    return text.str.to_lowercase().is_in(NULL_TOKENS)


def parse_numbers(
    series: pl.Series, *, flags: bool = False, plain: pl.Series | None = None
) -> Parsed:
    """Read a column as Float64.

    Currency symbols, percent signs, spaces and thousands separators are removed (counted as
    cleaned); a lone comma between digits is read as a decimal comma. ``flags`` also accepts
    true/false/yes/no. Infinite and NaN values, and values beyond +-``MAX_MAGNITUDE``, become
    missing and are reported as non-finite.
    """
    n = series.len()
    false = pl.repeat(False, n, dtype=pl.Boolean, eager=True).alias("x")
    if series.dtype.is_numeric() or series.dtype == pl.Boolean:
        values = series.cast(pl.Float64)
        nonfinite = _nonfinite(values)
        values = pl.select(
            pl.when(nonfinite).then(None).otherwise(values).alias(series.name)
        ).to_series()
        return Parsed(values, false, false, nonfinite)
    # Fast path: most columns are clean numbers; only the cells that fail a plain cast need the
    # slower cleaning below.
    if plain is None:  # callers may pass columns already cast together, in parallel
        plain = series.cast(pl.Float64, strict=False)
    if plain.null_count() == series.null_count():
        nonfinite = _nonfinite(plain)
        if nonfinite.any():
            plain = pl.select(pl.when(nonfinite).then(None).otherwise(plain)).to_series()
        return Parsed(plain.alias(series.name), false, false, nonfinite)
    text = series.cast(pl.String).str.strip_chars()
    missing = text.is_null() | _is_null_token(text)
    direct = text.cast(pl.Float64, strict=False)
    frame = pl.DataFrame({"t": text, "d": direct, "m": missing})
    cleaned_text = (
        pl.col("t")
        .str.replace_all(r"[\s$€£¥%]|^'|(?i:usd|eur|gbp)", "")
        .str.replace(r"^\((.*)\)$", "-$1")
    )
    frame = frame.with_columns(c=cleaned_text)
    frame = frame.with_columns(
        c=pl.when(pl.col("c").str.contains(_THOUSANDS))
        .then(pl.col("c").str.replace_all(",", ""))
        .when(pl.col("c").str.contains(_DECIMAL_COMMA))
        .then(pl.col("c").str.replace(",", "."))
        .otherwise(pl.col("c"))
    )
    second = pl.col("c").cast(pl.Float64, strict=False)
    if flags:
        lower = pl.col("t").str.to_lowercase()
        second = (
            pl.when(lower.is_in(_FLAG_TRUE))
            .then(1.0)
            .when(lower.is_in(_FLAG_FALSE))
            .then(0.0)
            .otherwise(second)
        )
    frame = frame.with_columns(s=second)
    value = pl.when(pl.col("m")).then(None).otherwise(pl.coalesce("d", "s"))
    frame = frame.with_columns(v=value)
    frame = frame.with_columns(
        cleaned=(~pl.col("m") & pl.col("d").is_null() & pl.col("s").is_not_null()),
        invalid=(~pl.col("m") & pl.col("v").is_null()),
        nonfinite=(~pl.col("v").is_finite() | (pl.col("v").abs() > MAX_MAGNITUDE)).fill_null(False),
    )
    frame = frame.with_columns(v=pl.when(pl.col("nonfinite")).then(None).otherwise(pl.col("v")))
    return Parsed(
        frame.get_column("v").alias(series.name),
        frame.get_column("cleaned"),
        frame.get_column("invalid"),
        frame.get_column("nonfinite"),
    )


@dataclass(frozen=True)
class NumberExprs:
    """:func:`parse_numbers` as expressions over a text column, for a lazy (streamed) scan.

    ``parse_numbers`` decides per column: when every non-empty cell reads as a plain number it
    takes a fast path that flags nothing as cleaned and counts "nan" as non-finite; otherwise it
    cleans. A lazy scan cannot know in advance, so both sets of flags are produced and
    ``plain_failed`` (its count over the column) chooses between them afterwards. The values
    are the same either way.
    """

    value: pl.Expr
    plain_failed: pl.Expr  # present but not a plain number: the column takes the cleaning path
    fast_nonfinite: pl.Expr
    cleaned: pl.Expr
    nonfinite: pl.Expr
    invalid: pl.Expr


def number_exprs(raw: pl.Expr, *, flags: bool = False) -> NumberExprs:
    """The expressions of :class:`NumberExprs` for one String column ``raw``.

    The cleaning (regular expressions) runs on the cells a plain cast cannot read only: the
    others are null in its input, which costs next to nothing on hundreds of millions of rows.
    """
    plain = raw.cast(pl.Float64, strict=False)
    fast_nonfinite = (~plain.is_finite() | (plain.abs() > MAX_MAGNITUDE)).fill_null(False)
    plain_failed = raw.is_not_null() & plain.is_null()
    # Cells the plain cast read: the cleaning path agrees on the value, but calls "nan" missing.
    nan_text = pl.when(plain.is_nan()).then(raw).str.strip_chars().str.to_lowercase()
    nan_token = nan_text.is_in(NULL_TOKENS).fill_null(False)
    text = pl.when(plain_failed).then(raw).str.strip_chars()
    missing = text.is_null() | text.str.to_lowercase().is_in(NULL_TOKENS)
    direct = text.cast(pl.Float64, strict=False)
    cleaned_text = text.str.replace_all(r"[\s$€£¥%]|^'|(?i:usd|eur|gbp)", "").str.replace(
        r"^\((.*)\)$", "-$1"
    )
    cleaned_text = (
        pl.when(cleaned_text.str.contains(_THOUSANDS))
        .then(cleaned_text.str.replace_all(",", ""))
        .when(cleaned_text.str.contains(_DECIMAL_COMMA))
        .then(cleaned_text.str.replace(",", "."))
        .otherwise(cleaned_text)
    )
    second = cleaned_text.cast(pl.Float64, strict=False)
    if flags:
        lower = text.str.to_lowercase()
        second = (
            pl.when(lower.is_in(_FLAG_TRUE))
            .then(1.0)
            .when(lower.is_in(_FLAG_FALSE))
            .then(0.0)
            .otherwise(second)
        )
    slow = pl.when(missing).then(None).otherwise(pl.coalesce(direct, second))
    slow_bad = (~slow.is_finite() | (slow.abs() > MAX_MAGNITUDE)).fill_null(False)
    nonfinite = pl.when(plain_failed).then(slow_bad).otherwise(fast_nonfinite & ~nan_token)
    value = (
        pl.when(plain_failed)
        .then(pl.when(slow_bad).then(None).otherwise(slow))
        .otherwise(pl.when(fast_nonfinite).then(None).otherwise(plain))
    )
    return NumberExprs(
        value=value,
        plain_failed=plain_failed,
        fast_nonfinite=fast_nonfinite,
        cleaned=plain_failed & ~missing & direct.is_null() & second.is_not_null(),
        nonfinite=nonfinite,
        invalid=plain_failed & ~missing & slow.is_null(),
    )


def _nonfinite(values: pl.Series) -> pl.Series:
    """Boolean: NaN, infinite or beyond +-``MAX_MAGNITUDE`` (nulls are not flagged)."""
    return (~values.is_finite() | (values.abs() > MAX_MAGNITUDE)).fill_null(False)


def _try_format(text: pl.Series, fmt: str, *, datetime: bool) -> pl.Series:
    return pl.select(date_expr(pl.lit(text), fmt, datetime=datetime)).to_series()


def date_expr(text: pl.Expr, fmt: str, *, datetime: bool) -> pl.Expr:
    """``text`` read as dates in one format (unreadable values become null)."""
    if datetime:
        return text.str.strptime(pl.Datetime("us"), fmt, strict=False).dt.date()
    return text.str.strptime(pl.Date, fmt, strict=False)


def choose_date_format(head: pl.Series) -> tuple[str, bool] | None:
    """The format (and whether it has a time) that reads most of ``head``, non-empty text values.

    The first format (in the order above) with the most successes wins, so "05-09-2012" is
    day-first only when a value such as "13-09-2012" shows it, and ISO dates win over everything.
    """
    best: tuple[int, str, bool] | None = None
    for is_dt, formats in ((False, DATE_FORMATS), (True, DATETIME_FORMATS)):
        for fmt in formats:
            hits = head.len() - _try_format(head, fmt, datetime=is_dt).null_count()
            if hits > 0 and (best is None or hits > best[0]):
                best = (hits, fmt, is_dt)
    return None if best is None else (best[1], best[2])


def dates_with_fallback(text: pl.Expr, fmt: str, *, datetime: bool) -> pl.Expr:
    """Dates in ``fmt``; a value in another known format is still read (the first that fits)."""
    others = [
        date_expr(text, other, datetime=other_dt)
        for other_dt, formats in ((False, DATE_FORMATS), (True, DATETIME_FORMATS))
        for other in formats
        if other != fmt
    ]
    return pl.coalesce(date_expr(text, fmt, datetime=datetime), *others)


def date_text(values: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """Stripped text of a raw column and whether each value is missing (empty or a null token)."""
    text = values.cast(pl.String).str.strip_chars()
    missing = (text.is_null() | text.str.to_lowercase().is_in(NULL_TOKENS)).fill_null(True)
    return text, missing


def parse_dates(series: pl.Series, *, sample: int = 5000) -> tuple[Parsed, str | None]:
    """Read a column as dates, choosing the format that reads most of a sample of values.

    Several formats are tried on the first ``sample`` non-empty values (see
    :func:`choose_date_format`). Returns the format used.
    """
    n = series.len()
    false = pl.repeat(False, n, dtype=pl.Boolean, eager=True).alias("x")
    if series.dtype == pl.Date:
        return Parsed(series, false, false, false), None
    if isinstance(series.dtype, pl.Datetime):
        return Parsed(series.dt.date(), false, false, false), None
    text = series.cast(pl.String).str.strip_chars()
    missing = (text.is_null() | _is_null_token(text)).fill_null(True)
    head = text.filter(~missing).head(sample)
    best = choose_date_format(head)
    if best is None:
        values = pl.Series(series.name, [None] * n, dtype=pl.Date)
        return Parsed(values, false, ~missing, false), None
    fmt, is_dt = best
    values = _try_format(text, fmt, datetime=is_dt)
    # A value in another format is still a date: try the others before calling it invalid.
    invalid_first = values.is_null() & ~missing
    if invalid_first.any():
        for other_dt, formats in ((False, DATE_FORMATS), (True, DATETIME_FORMATS)):
            for other in formats:
                if other == fmt:
                    continue
                values = values.fill_null(_try_format(text, other, datetime=other_dt))
    cleaned = invalid_first & values.is_not_null()
    invalid = values.is_null() & ~missing
    return Parsed(values.alias(series.name), cleaned, invalid, false), fmt
