"""Writing run results to files people open: CSV, Parquet, JSON.

Text cells that a spreadsheet would run as a formula (starting with = + - @, tab or carriage
return) are prefixed with an apostrophe in CSV exports, so opening an export never executes
anything a customer file smuggled in.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, TypeVar

import polars as pl

from sistack.errors import InputError

FORMULA_START = r"^[=+\-@\t\r]"
FORMATS = (".csv", ".parquet", ".json")
_FORMULA = re.compile(FORMULA_START)
Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)

# One colour per segment, the same in every export and chart (the dashboard's palette): the base
# colours in order, then the same colours lighter past ten segments.
SEGMENT_COLOURS = (
    "#2f5d8c", "#d9822b", "#3a9278", "#c4474f", "#7a68a6",
    "#8c6d4f", "#cf7fb5", "#5f7183", "#b5a14a", "#4ba3c3",
)  # fmt: skip
ALL_CUSTOMERS_COLOUR = "#4a5463"


def segment_colour(segment: int) -> str:
    """The colour of a segment (1-based; 0 = all customers)."""
    if segment <= 0:
        return ALL_CUSTOMERS_COLOUR
    i = segment - 1
    base = SEGMENT_COLOURS[i % len(SEGMENT_COLOURS)]
    amount = min(0.25 * (i // len(SEGMENT_COLOURS)), 0.75)
    rgb = [int(base[j : j + 2], 16) for j in (1, 3, 5)]
    return "#" + "".join(f"{round(c + (255 - c) * amount):02x}" for c in rgb)


def looks_like_formula(text: str) -> bool:
    """True when a spreadsheet would read this text as a formula (or a DDE payload)."""
    return _FORMULA.match(text) is not None


def neutralise(frame: Frame) -> Frame:
    """Prefix formula-like text cells with ``'`` (numbers are left alone); lazily for a
    LazyFrame, so a large table can be streamed to CSV."""
    text = [c for c, t in frame.collect_schema().items() if t == pl.String]
    if not text:
        return frame
    return frame.with_columns(
        pl.when(pl.col(c).str.contains(FORMULA_START))
        .then(pl.lit("'") + pl.col(c))
        .otherwise(pl.col(c))
        .alias(c)
        for c in text
    )


def export_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise InputError(
            f"Cannot export to '{path.name}': use a file name ending in {', '.join(FORMATS)}.",
            code="unsupported_export_format",
            details={"allowed": list(FORMATS)},
        )
    return suffix


def write_frame(frame: pl.DataFrame, path: Path) -> None:
    """Write a table as CSV (neutralised), Parquet or JSON records, by the file extension."""
    suffix = export_format(path)
    if suffix == ".csv":
        neutralise(frame).write_csv(path)
    elif suffix == ".parquet":
        frame.write_parquet(path, compression="zstd")
    else:
        path.write_text(json.dumps(frame.to_dicts(), indent=1, default=str))


def write_json(data: Any, path: Path) -> None:
    if path.suffix.lower() != ".json":
        raise InputError(
            f"This export is a JSON document; name the file '{path.stem}.json'.",
            code="unsupported_export_format",
        )
    path.write_text(json.dumps(data, indent=1, sort_keys=True, default=str))


def profiles_frame(document: dict[str, Any]) -> pl.DataFrame:
    """One row per segment (0 = all customers) with shares and feature means."""
    rows = []
    for p in document["profiles"]:
        row: dict[str, Any] = {
            "segment": p["segment"],
            "customers": p["customers"],
            "customer_share": p["customer_share"],
            "revenue": p["revenue"],
            "revenue_share": p["revenue_share"],
            "stability": p["stability"],
        }
        row.update({f"mean_{k}": v for k, v in p["means"].items()})
        rows.append(row)
    return pl.DataFrame(rows, infer_schema_length=None)
