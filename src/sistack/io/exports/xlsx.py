"""The analyst workbook: one XLSX file with a run's summary, segments, insights and customers.

Written with XlsxWriter in ``constant_memory`` mode: every sheet is written top to bottom and a
row is flushed to disk as soon as the next one starts, so memory stays flat however many
customers a run has. The customer list is read from Parquet in batches and continues on
"Customers (2)", "Customers (3)", ... past Excel's 1,048,575 data rows per sheet.

Formula injection: text is only ever written with ``write_string`` (the workbook is also opened
with ``strings_to_formulas=False``), so a cell is stored as text and nothing is evaluated when
the file opens. Text that a spreadsheet would read as a formula (starting with = + - @, tab or
CR) also gets Excel's *quote prefix* style, the hidden apostrophe Excel itself adds when a user
types ``'=...``: the cell stays text when someone edits it, and the value is the customer's id
exactly (an apostrophe inside the value, as the CSV export must use, would break lookups
against the source system).

One module for the whole workbook, longer than most: the seven sheet writers share the small
``Book``/``Sheet``/``table`` helpers and nothing else uses them.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import xlsxwriter
from xlsxwriter.format import Format
from xlsxwriter.utility import xl_col_to_name, xl_rowcol_to_cell
from xlsxwriter.worksheet import Worksheet

from sistack.io.exports import FORMULA_START, looks_like_formula, segment_colour

EXCEL_DATA_ROWS = 1_048_575  # 1,048,576 rows per sheet, one of them the header
BATCH_ROWS = 50_000
COMPRESSION = 1  # zlib level of the customer sheets: 6 costs twice the time for 10% less size

Props = Mapping[str, Any]
TITLE: Props = {"bold": True, "font_size": 16}
SECTION: Props = {"bold": True, "font_size": 12, "bottom": 1}
HEADER: Props = {"bold": True, "bg_color": "#E5E7EB", "text_wrap": True, "valign": "top"}
LABEL: Props = {"bold": True, "valign": "top"}
WRAP: Props = {"text_wrap": True, "valign": "top"}
NOTE: Props = {"italic": True, "font_color": "#4B5563"}
PLAIN: Props = {}
INT: Props = {"num_format": "#,##0"}
MONEY: Props = {"num_format": "#,##0.00"}
PCT: Props = {"num_format": "0.0%"}
RATIO: Props = {"num_format": "0.00"}

# Number formats of the customer columns we know; other numbers keep Excel's General format.
CUSTOMER_FORMATS: dict[str, Props] = {
    "segment": {"num_format": "0"},
    "recency_days": INT,
    "frequency": INT,
    "tenure_days": INT,
    "monetary": MONEY,
    "avg_order_value": MONEY,
    "income": MONEY,
    "value_12m": MONEY,
    "deal_share": PCT,
    "promo_rate": PCT,
    "share_web": PCT,
    "share_catalog": PCT,
    "share_store": PCT,
    "response_probability": PCT,
}


def _font_on(colour: str) -> str:
    """Black or white text, whichever reads better on a fill (WCAG relative luminance)."""
    r, g, b = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    lum = sum(w * (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4)
              for w, c in zip((0.2126, 0.7152, 0.0722), (r, g, b), strict=True))  # fmt: skip
    return "#000000" if lum > 0.3 else "#FFFFFF"


def fill(segment: int) -> Props:
    colour = segment_colour(segment)
    return {"bg_color": colour, "font_color": _font_on(colour), "bold": True, "valign": "top"}


class Book:
    """A workbook plus a cache of formats (XlsxWriter wants one Format object per style)."""

    def __init__(self, path: Path) -> None:
        self.wb = xlsxwriter.Workbook(
            str(path),
            {
                "constant_memory": True,
                "strings_to_formulas": False,
                "strings_to_urls": False,
                "strings_to_numbers": False,
                # Row data is spooled to temporary files: keep them beside the output, not in
                # /tmp, which may be small or held in memory.
                "tmpdir": str(path.parent),
            },
        )
        self._formats: dict[tuple[tuple[str, Any], ...], Format] = {}

    def fmt(self, props: Props) -> Format | None:
        if not props:
            return None
        key = tuple(sorted(props.items()))
        found = self._formats.get(key)
        if found is None:
            found = self._formats[key] = self.wb.add_format(dict(props))
        return found

    def sheet(self, name: str, widths: Sequence[float]) -> Sheet:
        return Sheet(self, self.wb.add_worksheet(name), widths)


class Sheet:
    """A worksheet written strictly top to bottom (``constant_memory`` requires it)."""

    def __init__(self, book: Book, ws: Worksheet, widths: Sequence[float]) -> None:
        self.book, self.ws, self.row = book, ws, 0
        for col, width in enumerate(widths):
            ws.set_column(col, col, width)

    def cell(self, col: int, value: object, props: Props = PLAIN) -> None:
        r, ws = self.row, self.ws
        if value is None:
            if props:
                ws.write_blank(r, col, None, self.book.fmt(props))
        elif isinstance(value, bool):
            ws.write_boolean(r, col, value, self.book.fmt(props))
        elif isinstance(value, int | float):
            if value - value == 0:  # finite: NaN and +-inf have no cell value in XLSX
                ws.write_number(r, col, value, self.book.fmt(props))
        else:
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            if looks_like_formula(text):
                props = {**props, "quote_prefix": True}
            ws.write_string(r, col, text, self.book.fmt(props))

    def line(self, values: Sequence[object], props: Sequence[Props] | Props = PLAIN) -> None:
        """Write one row and move to the next."""
        for col, value in enumerate(values):
            self.cell(col, value, props[col] if isinstance(props, Sequence) else props)
        self.row += 1

    def gap(self, rows: int = 1) -> None:
        self.row += rows

    def height(self, points: float) -> None:
        """Height of the current row (set before its cells are written)."""
        self.ws.set_row(self.row, points)

    def title(self, text: str, props: Props = SECTION) -> None:
        self.line([text], props)


# A table column: header, cell style, and how to get the value from a record.
Column = tuple[str, Props, Callable[[Any], object]]


def table(
    sheet: Sheet,
    columns: Sequence[Column],
    records: Iterable[Any],
    *,
    segment_of: Callable[[Any], int | None] = lambda _: None,
    coloured: int = 2,
    bold: Callable[[Any], bool] = lambda _: False,
) -> None:
    """A header row and one row per record; the first ``coloured`` cells of a segment's row
    are filled with the segment's colour."""
    sheet.line([c[0] for c in columns], HEADER)
    for record in records:
        segment = segment_of(record)
        strong = bold(record)
        props: list[Props] = []
        for i, (_, style, _) in enumerate(columns):
            extra = fill(segment) if segment is not None and i < coloured else {}
            props.append({**style, **extra, **({"bold": True} if strong else {})})
        sheet.line([get(record) for _, _, get in columns], props)


def _lines(items: Iterable[str]) -> str:
    return "\n".join(items)


def _dig(data: Mapping[str, Any] | None, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


# Sheets ---------------------------------------------------------------------------------------


def _summary(book: Book, run: Mapping[str, Any], manifest: Mapping[str, Any],
             insights: Mapping[str, Any], personas: Mapping[int, str]) -> None:  # fmt: skip
    s = book.sheet("Summary", [30, 14, 34, 16, 18, 60, 50])
    overall, defs = insights.get("overall", {}), insights.get("definitions", {})
    s.title("Strategic Intelligence Stack: customer segmentation", TITLE)
    s.line([f"Run {run.get('name') or run.get('id')}"], NOTE)
    s.gap()
    s.title("Decision")
    s.height(48)
    s.ws.merge_range(s.row, 0, s.row, 6, "", book.fmt(WRAP))
    s.cell(0, insights.get("banner", ""), WRAP)
    s.gap(2)

    s.title("Key figures")
    kpis: list[tuple[str, str, object, Props]] = [
        ("Customers", "", overall.get("customers"), INT),
        ("Segments", "", _dig(manifest, "model", "k"), INT),
        ("Revenue", "", overall.get("revenue"), MONEY),
        ("Revenue per customer", "avg_revenue", overall.get("avg_revenue"), MONEY),
        ("Top-20% revenue share", "top20_revenue_share", overall.get("top20_revenue_share"), PCT),
        ("Observed response rate", "response_rate", overall.get("response_rate"), PCT),
        ("Expected response rate", "expected_response_rate",
         overall.get("expected_response_rate"), PCT),
        ("Deal-dependent customers", "deal_dependent_share",
         overall.get("deal_dependent_share"), PCT),
        ("Revenue exposed to discounts", "revenue_exposed", overall.get("revenue_exposed"), MONEY),
        ("Expected value, next 12 months", "value_12m", overall.get("value_total"), MONEY),
    ]  # fmt: skip
    for label, term, value, props in kpis:
        s.line([label, value, defs.get(term, "")], [LABEL, props, WRAP])
    s.gap()

    s.title("Top actions")
    table(
        s,
        [
            ("Segment", PLAIN, lambda a: a.get("segment")),
            ("Persona", PLAIN, lambda a: personas.get(a.get("segment"), "")),
            ("Action", WRAP, lambda a: a.get("title")),
            ("Direction", WRAP, lambda a: a.get("direction")),
            ("Revenue at stake", MONEY, lambda a: a.get("revenue_at_stake")),
            ("Why", WRAP, lambda a: a.get("rationale")),
            ("Guardrails", WRAP, lambda a: _lines(a.get("guardrails") or [])),
        ],
        insights.get("top_actions", []),
        segment_of=lambda a: a.get("segment"),
    )
    s.gap()

    s.title("Run provenance")
    inp = manifest.get("input", {})
    facts: list[tuple[str, object, Props]] = [
        ("Run id", run.get("id") or manifest.get("run_id"), PLAIN),
        ("Run name", run.get("name") or manifest.get("name"), PLAIN),
        ("Created at", manifest.get("created_at"), PLAIN),
        ("Parent run", manifest.get("parent_id") or "none", PLAIN),
        ("Input file", inp.get("filename"), PLAIN),
        ("Input sha256", inp.get("sha256"), PLAIN),
        ("Input size (bytes)", inp.get("bytes"), INT),
        ("Input format", inp.get("format"), PLAIN),
        ("Input rows", inp.get("rows"), INT),
        ("Data shape", manifest.get("shape"), PLAIN),
        ("Reference date", manifest.get("reference_date"), PLAIN),
        ("sistack version", manifest.get("sistack_version"), PLAIN),
        ("Stability (ARI)", _dig(manifest, "model", "stability_ari"), RATIO),
        ("Model features", ", ".join(_dig(manifest, "model", "features") or []), WRAP),
    ]
    for label, value, props in facts:
        s.line([label, None, value], [LABEL, PLAIN, props])
    for heading, values in (
        ("Configuration", manifest.get("config", {})),
        ("Package versions", manifest.get("versions", {})),
        ("Column mapping (column: role)", _dig(manifest, "mapping", "columns") or {}),
    ):
        s.gap()
        s.title(heading)
        for key, value in values.items():
            s.line([key, None, "not set" if value is None else value], [LABEL, PLAIN, PLAIN])


def _segments(book: Book, profiles: Mapping[str, Any], insights: Mapping[str, Any],
              personas: Mapping[int, str]) -> None:  # fmt: skip
    features = [f["name"] for f in profiles.get("features", [])]
    s = book.sheet("Segments", [9, 32, 12, *([14] * (8 + len(features)))])
    contribution = {x["segment"]: x.get("contribution", {}) for x in insights.get("segments", [])}
    contribution[0] = {
        "revenue_index": 1.0,
        "avg_revenue": _dig(insights, "overall", "avg_revenue"),
        "top20_revenue_share": _dig(insights, "overall", "top20_revenue_share"),
    }
    tiers = {x["segment"]: _dig(x, "persona", "tier") for x in insights.get("segments", [])}
    population, *segments = profiles.get("profiles", [])
    columns: list[Column] = [
        ("Segment", PLAIN, lambda p: p["segment"] or "All"),
        ("Persona", PLAIN, lambda p: personas.get(p["segment"], "All customers")),
        ("Tier", PLAIN, lambda p: tiers.get(p["segment"], "")),
        ("Customers", INT, lambda p: p["customers"]),
        ("Customer share", PCT, lambda p: p["customer_share"]),
        ("Revenue", MONEY, lambda p: p["revenue"]),
        ("Revenue share", PCT, lambda p: p["revenue_share"]),
        ("Revenue index", RATIO, lambda p: contribution.get(p["segment"], {}).get("revenue_index")),
        ("Revenue per customer", MONEY,
         lambda p: contribution.get(p["segment"], {}).get("avg_revenue")),
        ("Top-20% revenue share", PCT,
         lambda p: contribution.get(p["segment"], {}).get("top20_revenue_share")),
        ("Stability", RATIO, lambda p: p.get("stability")),
    ]  # fmt: skip
    for name in features:
        columns.append((f"Mean {name}", CUSTOMER_FORMATS.get(name, RATIO), _mean_of(name)))
    s.ws.freeze_panes(1, 2)
    table(
        s,
        columns,
        [*segments, population],
        segment_of=lambda p: p["segment"],
        bold=lambda p: p["segment"] == 0,
    )
    s.gap()
    _definitions(
        s,
        insights.get("definitions", {}),
        ["customer_share", "revenue_share", "revenue_index", "avg_revenue", "top20_revenue_share"],
        extra={
            "stability": "Mean Jaccard similarity between the segment and its best match when "
            "the model is refitted on bootstrap resamples: above about 0.75 the segment is "
            "stable, below 0.5 it dissolves.",
            **{f"mean {f['name']}": f.get("definition", "") for f in profiles.get("features", [])},
        },
    )


def _mean_of(feature: str) -> Callable[[Any], object]:
    return lambda p: p.get("means", {}).get(feature)


def _definitions(
    s: Sheet,
    defs: Mapping[str, str],
    terms: Iterable[str],
    *,
    extra: Mapping[str, str] | None = None,
) -> None:
    s.title("Definitions")
    for term in terms:
        if term in defs:
            s.line([term, defs[term]], [LABEL, PLAIN])
    for term, text in (extra or {}).items():
        s.line([term, text], [LABEL, PLAIN])


def _personas(book: Book, insights: Mapping[str, Any]) -> None:
    s = book.sheet("Personas", [9, 32, 12, 60, 50, 60])

    def traits(seg: Mapping[str, Any]) -> str:
        return _lines(
            f"{t['label']}: {t['feature']} {t['segment_mean']:,.2f} vs {t['population_mean']:,.2f}"
            f" overall ({t['ratio']:.2f}x, z {t['z']:+.2f})"
            for t in _dig(seg, "persona", "traits") or []
        )

    def actions(seg: Mapping[str, Any]) -> str:
        return _lines(f"{a['title']}: {a['rationale']}" for a in seg.get("actions", []))

    # Wrapped cells in rows of automatic height: spreadsheet software sizes them when it opens
    # the file (only the merged banner of the Summary needs an explicit height).
    table(
        s,
        [
            ("Segment", PLAIN, lambda x: x["segment"]),
            ("Persona", PLAIN, lambda x: _dig(x, "persona", "name")),
            ("Tier", WRAP, lambda x: _dig(x, "persona", "tier")),
            ("Narrative", WRAP, lambda x: _dig(x, "persona", "narrative")),
            ("Traits", WRAP, traits),
            ("Actions", WRAP, actions),
        ],
        insights.get("segments", []),
        segment_of=lambda x: x["segment"],
    )


def _insights(book: Book, insights: Mapping[str, Any], personas: Mapping[int, str]) -> None:
    segments = list(insights.get("segments", []))
    overall = dict(insights.get("overall", {}))
    customers = overall.get("customers") or 0
    overall.update(
        segment=0,
        value={
            "basis": overall.get("value_basis"),
            "historical": {"mean": overall.get("avg_revenue")},
            "value_12m": {
                "total": overall.get("value_total"),
                "mean": (overall.get("value_total") or 0) / customers if customers else None,
            },
        },
    )
    channels = sorted(
        {c for x in [*segments, overall] for c in (_dig(x, "channels", "shares") or {})}
    )
    columns: list[Column] = [
        ("Segment", PLAIN, lambda x: x["segment"] or "All"),
        ("Persona", PLAIN, lambda x: personas.get(x["segment"], "All customers")),
        ("Response basis", PLAIN, lambda x: _dig(x, "response", "basis")),
        ("Expected response rate", PCT, lambda x: _dig(x, "response", "expected_rate")),
        ("Expected responders", INT, lambda x: _dig(x, "response", "expected_responders")),
        ("Observed response rate", PCT, lambda x: _dig(x, "response", "observed", "rate")),
        ("Observed rate, 95% low", PCT, lambda x: _dig(x, "response", "observed", "low")),
        ("Observed rate, 95% high", PCT, lambda x: _dig(x, "response", "observed", "high")),
        ("Mean deal share", PCT, lambda x: _dig(x, "discount", "mean_deal_share")),
        ("Deal-dependent share", PCT, lambda x: _dig(x, "discount", "deal_dependent_share")),
        ("Risk tier low", INT, lambda x: _dig(x, "discount", "tier_counts", "low")),
        ("Risk tier medium", INT, lambda x: _dig(x, "discount", "tier_counts", "medium")),
        ("Risk tier high", INT, lambda x: _dig(x, "discount", "tier_counts", "high")),
        ("Revenue exposed", MONEY, lambda x: _dig(x, "discount", "revenue_exposed")),
        ("Revenue exposed share", PCT, lambda x: _dig(x, "discount", "revenue_exposed_share")),
        *[
            (f"Channel share {c}", PCT, lambda x, c=c: _dig(x, "channels", "shares", c))
            for c in channels
        ],
        *[
            (f"Channel index {c}", RATIO, lambda x, c=c: _dig(x, "channels", "index", c))
            for c in channels
        ],
        ("Dominant channel", PLAIN, lambda x: _dig(x, "channels", "dominant")),
        ("Web visits per purchase", RATIO,
         lambda x: _dig(x, "channels", "web_visits_per_purchase")),
        ("Value basis", PLAIN, lambda x: _dig(x, "value", "basis")),
        ("Historical value, mean", MONEY, lambda x: _dig(x, "value", "historical", "mean")),
        ("Value 12m, mean", MONEY, lambda x: _dig(x, "value", "value_12m", "mean")),
        ("Value 12m, p90", MONEY, lambda x: _dig(x, "value", "value_12m", "p90")),
        ("Value 12m, total", MONEY, lambda x: _dig(x, "value", "value_12m", "total")),
    ]  # fmt: skip
    s = book.sheet("Insights", [9, 32, *([14] * (len(columns) - 2))])
    s.ws.freeze_panes(1, 2)
    table(s, columns, [*segments, overall], segment_of=lambda x: x["segment"],
          bold=lambda x: x["segment"] == 0)  # fmt: skip
    s.gap()
    model = insights.get("response_model", {})
    s.title("Response model")
    chosen: dict[str, Any] = next((c for c in model.get("candidates", []) if c.get("chosen")), {})
    for label, value, props in (
        ("Available", model.get("available"), PLAIN),
        ("Why not", model.get("reason"), PLAIN),
        ("Model", chosen.get("name"), PLAIN),
        ("Cross-validated AUC", chosen.get("auc_mean"), RATIO),
        ("Brier score", model.get("brier"), {"num_format": "0.0000"}),
        ("Base rate", model.get("base_rate"), PCT),
    ):
        if value is not None:
            s.line([label, None, value], [LABEL, PLAIN, props])
    s.gap()
    defs = insights.get("definitions", {})
    _definitions(s, defs, sorted(defs))


SCENARIO_MEASURES = (
    ("revenue", MONEY),
    ("margin", MONEY),
    ("cost", MONEY),
    ("profit", MONEY),
    ("roi", RATIO),
)


def _overall_of(part: str, measure: str) -> Callable[[Any], object]:
    return lambda x: _dig(x, "result", "overall", part, measure)


def _levers_of(x: Mapping[str, Any]) -> str:
    return _lines(str(lever.get("lever", "")) for lever in _dig(x, "body", "levers") or [])


def _scenario_notes(x: Mapping[str, Any]) -> str:
    """Guardrail warnings of a scenario, or why it could not be simulated."""
    if x.get("error"):
        return str(x["error"])
    warnings = _dig(x, "result", "warnings") or []
    return _lines(w.get("message", "") if isinstance(w, Mapping) else str(w) for w in warnings)


def _scenarios(book: Book, scenarios: Sequence[Mapping[str, Any]]) -> None:
    s = book.sheet("Scenarios", [30, 20, 36, *([15] * 3 * len(SCENARIO_MEASURES)), 60])
    columns: list[Column] = [
        ("Scenario", PLAIN, lambda x: x.get("name")),
        ("Saved at", PLAIN, lambda x: x.get("created_at")),
        ("Levers", WRAP, _levers_of),
    ]
    for measure, props in SCENARIO_MEASURES:
        for part in ("baseline", "scenario", "delta"):
            header = f"{'Δ' if part == 'delta' else part.capitalize()} {measure}"
            columns.append((header, props, _overall_of(part, measure)))
    columns.append(("Warnings", WRAP, _scenario_notes))
    table(s, columns, scenarios, coloured=0)
    if not scenarios:
        s.line(["No scenarios are saved for this run: save one on the Simulation tab."], NOTE)


def _quality(book: Book, quality: Mapping[str, Any]) -> None:
    s = book.sheet("Quality", [14, 26, 22, 10, 30, 90])
    for label, key in (("Rows read", "rows_read"), ("Rows used", "rows_used"),
                       ("Rows excluded", "rows_excluded")):  # fmt: skip
        s.line([label, quality.get(key)], [LABEL, INT])
    s.gap()
    issues = quality.get("issues", [])
    table(
        s,
        [
            ("Kind", PLAIN, lambda i: i.get("kind")),
            ("Code", PLAIN, lambda i: i.get("code")),
            ("Column", PLAIN, lambda i: i.get("column")),
            ("Count", INT, lambda i: i.get("count")),
            ("Example rows", WRAP, lambda i: ", ".join(map(str, i.get("rows") or []))),
            ("Message", WRAP, lambda i: i.get("message")),
        ],
        issues,
        coloured=0,
    )
    if not issues:
        s.line(["No data-quality issues: every row was used as read."], NOTE)


def batches(lazy: pl.LazyFrame, size: int) -> Iterator[pl.DataFrame]:
    """Consecutive slices of a lazy table, ``size`` rows each.

    Slices rather than ``collect_batches``: a slice of a Parquet scan reads only the row groups
    it covers, so memory stays flat however long the table is (the streaming engine's batches
    held about 30 MB more per million rows, measured with polars 2.1).
    """
    offset = 0
    while True:
        batch = lazy.slice(offset, size).collect()
        if batch.height == 0:
            return
        yield batch
        offset += batch.height


# Characters XML 1.0 cannot carry, written the way OOXML escapes them (``_x0001_``); a literal
# ``_xHHHH_`` in the text gets its underscore escaped first, so it reads back unchanged.
_CONTROL = [chr(c) for c in (*range(0x00, 0x09), 0x0B, 0x0C, 0x0D, *range(0x0E, 0x20))]


def _xml_text(column: pl.Expr) -> pl.Expr:
    """Text as the content of an XML element (``&``, ``<``, ``>`` and control characters)."""
    text = (
        column.str.slice(0, 32_767)  # Excel's limit for one cell
        .str.replace_all(r"_(x[0-9A-Fa-f]{4}_)", "_x005F_$1")
        .str.replace_all("&", "&amp;", literal=True)
        .str.replace_all("<", "&lt;", literal=True)
        .str.replace_all(">", "&gt;", literal=True)
    )
    for char in _CONTROL:
        text = text.str.replace_all(char, f"_x{ord(char):04X}_", literal=True)
    return text


@dataclass(frozen=True)
class _CustomerSheets:
    """The customer sheets made in the workbook (header, widths, filter) whose rows are
    written after it closes, and the style index of each kind of cell."""

    sheets: tuple[tuple[str, int, int], ...]  # (part name in the zip, first row, rows)
    names: tuple[str, ...]
    text: tuple[bool, ...]
    column_style: tuple[int, ...]
    segment_style: dict[int, int]
    quote_style: int
    segment_column: str | None


def _customers(
    book: Book, customers: pl.LazyFrame, *, rows_per_sheet: int
) -> tuple[_CustomerSheets, pl.LazyFrame]:
    """Add the customer sheets (header, column widths and formats, frozen header, filter) and
    return what :func:`_write_customer_rows` needs to fill them in once the workbook is closed.
    """
    schema = customers.collect_schema()
    names = schema.names()
    # NaN and infinities become empty cells; anything not a number is written as text.
    lazy = customers.with_columns(
        pl.when(pl.col(n).is_finite()).then(pl.col(n)).alias(n)
        if t.is_float()
        else pl.col(n)
        if t.is_numeric()
        else pl.col(n).cast(pl.String)
        for n, t in schema.items()
    )
    text = [not t.is_numeric() for t in schema.values()]
    total = int(lazy.select(pl.len()).collect().item())
    formats = [book.fmt(CUSTOMER_FORMATS.get(n, PLAIN)) for n in names]
    header = book.fmt(HEADER)
    seg_col = "segment" if "segment" in names else None
    segment_style: dict[int, int] = {}
    if seg_col is not None:
        found = lazy.select(pl.col(seg_col).drop_nulls().unique().sort()).collect()
        for value in found.get_column(seg_col).to_list():
            coloured = book.fmt({**CUSTOMER_FORMATS["segment"], **fill(int(value))})
            segment_style[int(value)] = _xf(coloured)
    sheets = []
    for n, first in enumerate(range(0, max(total, 1), rows_per_sheet), start=1):
        rows = min(rows_per_sheet, total - first)
        ws = book.wb.add_worksheet("Customers" if n == 1 else f"Customers ({n})")
        for col, name in enumerate(names):
            ws.set_column(col, col, 30 if text[col] else 14, formats[col])
            ws.write_string(0, col, name, header)
        ws.freeze_panes(1, 1)
        ws.autofilter(0, 0, rows, len(names) - 1)
        sheets.append((f"xl/worksheets/sheet{ws.index + 1}.xml", first, rows))
    plan = _CustomerSheets(
        sheets=tuple(sheets),
        names=tuple(names),
        text=tuple(text),
        column_style=tuple(_xf(f) for f in formats),
        segment_style=segment_style,
        quote_style=_xf(book.fmt({"quote_prefix": True})),
        segment_column=seg_col,
    )
    return plan, lazy


def _xf(fmt: Format | None) -> int:
    """The style index a cell with this format carries (0: the default style).

    XlsxWriter numbers formats as cells use them; asking here numbers them the same way.
    """
    return 0 if fmt is None else int(fmt._get_xf_index())


def _row_xml(plan: _CustomerSheets, first_row: int) -> pl.Expr:
    """One ``<row>`` element per customer, as XlsxWriter would write it (inline strings)."""
    number = pl.int_range(first_row, first_row + pl.len()).cast(pl.String)
    cells = []
    for col, name in enumerate(plan.names):
        ref = pl.concat_str([pl.lit(f'<c r="{xl_col_to_name(col)}'), number])
        value = pl.col(name)
        if plan.text[col]:
            plain = plan.column_style[col]
            style = (
                pl.when(value.str.contains(FORMULA_START))
                .then(pl.lit(f' s="{plan.quote_style}"'))
                .otherwise(pl.lit(f' s="{plain}"' if plain else ""))
            )
            cell = pl.concat_str(
                [
                    ref,
                    pl.lit('"'),
                    style,
                    pl.lit(' t="inlineStr"><is><t xml:space="preserve">'),
                    _xml_text(value),
                    pl.lit("</t></is></c>"),
                ]
            )
        else:
            if name == plan.segment_column and plan.segment_style:
                mapping = {k: f' s="{v}"' for k, v in plan.segment_style.items()}
                style = value.replace_strict(mapping, default="", return_dtype=pl.String)
            else:
                plain = plan.column_style[col]
                style = pl.lit(f' s="{plain}"' if plain else "")
            cell = pl.concat_str(
                [ref, pl.lit('"'), style, pl.lit("><v>"), value.cast(pl.String), pl.lit("</v></c>")]
            )
        cells.append(cell.fill_null(""))
    return pl.concat_str(
        [pl.lit('<row r="'), number, pl.lit('">'), *cells, pl.lit("</row>")]
    ).alias("xml")


def _write_customer_rows(
    path: Path, plan: _CustomerSheets, lazy: pl.LazyFrame, progress: Callable[[float], None]
) -> None:
    """Put the customer rows into the closed workbook's customer sheets.

    The rows are rendered to XML by Polars a batch at a time (about ten times faster than one
    XlsxWriter call per cell) and streamed into a copy of the package, every other part copied
    as XlsxWriter wrote it; memory stays flat.
    """
    total = sum(rows for _, _, rows in plan.sheets)
    fresh = path.with_name(path.name + ".rows")
    parts = {part: (first, rows) for part, first, rows in plan.sheets}
    done = 0
    try:
        with (
            zipfile.ZipFile(path) as old,
            zipfile.ZipFile(
                fresh, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=COMPRESSION
            ) as new,
        ):
            for info in old.infolist():
                data = old.read(info.filename)
                if info.filename not in parts:
                    new.writestr(info, data)
                    continue
                first, rows = parts[info.filename]
                head, tail = data.decode("utf-8").split("</sheetData>", 1)
                last = xl_rowcol_to_cell(rows, len(plan.names) - 1)
                head = re.sub(r'<dimension ref="[^"]*"/>', f'<dimension ref="A1:{last}"/>', head)
                big = rows * len(plan.names) * 60 > 2**31 - 2**26
                with new.open(info.filename, "w", force_zip64=big) as out:
                    out.write(head.encode("utf-8"))
                    sheet = lazy.slice(first, rows)
                    for offset, batch in enumerate_batches(sheet, BATCH_ROWS):
                        xml = batch.select(_row_xml(plan, offset + 2)).get_column("xml")
                        out.write(xml.str.join("").item().encode("utf-8"))
                        done += batch.height
                        progress(done / total if total else 1.0)
                    out.write(b"</sheetData>" + tail.encode("utf-8"))
        os.replace(fresh, path)
    finally:
        fresh.unlink(missing_ok=True)


def enumerate_batches(lazy: pl.LazyFrame, size: int) -> Iterator[tuple[int, pl.DataFrame]]:
    """:func:`batches` with the offset of each batch's first row."""
    offset = 0
    for batch in batches(lazy, size):
        yield offset, batch
        offset += batch.height


def write_workbook(
    path: Path,
    *,
    run: Mapping[str, Any],
    manifest: Mapping[str, Any],
    profiles: Mapping[str, Any],
    insights: Mapping[str, Any],
    quality: Mapping[str, Any],
    scenarios: Sequence[Mapping[str, Any]],
    customers: pl.LazyFrame,
    rows_per_sheet: int = EXCEL_DATA_ROWS,
    progress: Callable[[float], None] = lambda fraction: None,
) -> None:
    """Write the analyst workbook of a run to ``path``.

    ``run`` is the run's record (id, name, ...); ``manifest``, ``profiles``, ``insights`` and
    ``quality`` are the run's documents as stored; each of ``scenarios`` is a saved scenario
    (``id``, ``name``, ``created_at``, ``body``) with either its simulated ``result`` or an
    ``error`` message. ``customers`` is read in batches, one sheet per ``rows_per_sheet``
    customers (Excel's maximum by default; smaller in tests). ``progress(fraction)`` is called
    as the customer rows are written.
    """
    if not 1 <= rows_per_sheet <= EXCEL_DATA_ROWS:
        raise ValueError(f"rows_per_sheet must be between 1 and {EXCEL_DATA_ROWS}")
    personas = {
        x["segment"]: _dig(x, "persona", "name") or f"Segment {x['segment']}"
        for x in insights.get("segments", [])
    }
    book = Book(path)
    try:
        _summary(book, run, manifest, insights, personas)
        _segments(book, profiles, insights, personas)
        _personas(book, insights)
        _insights(book, insights, personas)
        _scenarios(book, scenarios)
        _quality(book, quality)
        plan, rows = _customers(book, customers, rows_per_sheet=rows_per_sheet)
    finally:
        book.wb.close()
    progress(0.02)
    _write_customer_rows(path, plan, rows, progress)
