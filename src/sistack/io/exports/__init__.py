"""Writing run results to files people open: CSV, Parquet, JSON.

Text cells that a spreadsheet would run as a formula (starting with = + - @, tab or carriage
return) are prefixed with an apostrophe in CSV exports, so opening an export never executes
anything a customer file smuggled in.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import polars as pl

from sistack.errors import InputError

FORMULA_START = r"^[=+\-@\t\r]"
FORMATS = (".csv", ".parquet", ".json")
_FORMULA = re.compile(FORMULA_START)

# One colour per segment, used by every export (workbook fills, report and chart colours):
# Tableau 10, a palette chosen to stay distinguishable in print and for common colour blindness.
SEGMENT_COLOURS = (
    "#4E79A7",
    "#F28E2B",
    "#E15759",
    "#76B7B2",
    "#59A14F",
    "#EDC948",
    "#B07AA1",
    "#FF9DA7",
    "#9C755F",
    "#BAB0AC",
)
ALL_CUSTOMERS_COLOUR = "#4B5563"


def segment_colour(segment: int) -> str:
    """The colour of a segment (1-based; 0 = all customers), cycling past ten segments."""
    if segment <= 0:
        return ALL_CUSTOMERS_COLOUR
    return SEGMENT_COLOURS[(segment - 1) % len(SEGMENT_COLOURS)]


def looks_like_formula(text: str) -> bool:
    """True when a spreadsheet would read this text as a formula (or a DDE payload)."""
    return _FORMULA.match(text) is not None


def neutralise(frame: pl.DataFrame) -> pl.DataFrame:
    """Prefix formula-like text cells with ``'`` (numbers are left alone)."""
    text = [c for c, t in frame.schema.items() if t == pl.String]
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
