"""The analyst workbook, opened with openpyxl: sheets, numbers, customers, formula injection.

One 300-customer run (made once for the module) supplies real documents; two of its customer
ids look like formulas. Numbers are compared with the run's own documents and artifacts.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import polars as pl
import pytest
from numpy.testing import assert_allclose
from openpyxl.utils.escape import unescape

from sistack.io.exports import segment_colour
from sistack.io.exports.xlsx import EXCEL_DATA_ROWS, write_workbook
from sistack.service.exports import ExportService, run_info
from sistack.service.runs import RunService
from tests.conftest import _write_customers, small_settings

SHEETS = ["Summary", "Segments", "Personas", "Insights", "Scenarios", "Quality", "Customers"]
FORMULA_ID = '=HYPERLINK("http://x","y")'
ODD_IDS = [FORMULA_ID, "+1-555", "@SUM(A1)", "-2+3"]  # ids are stripped: no tab or CR
CUSTOMERS = 300


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ExportService, str]]:
    root = tmp_path_factory.mktemp("xlsx")
    path = _write_customers(root / "c.csv", customers=CUSTOMERS, seed=7, response=False)
    frame = pl.read_csv(path).with_columns(pl.col("ID").cast(pl.String))
    ids = frame.get_column("ID").to_list()
    ids[: len(ODD_IDS)] = ODD_IDS
    frame.with_columns(pl.Series("ID", ids)).write_csv(path)
    svc = RunService(small_settings(root / "home"))
    dataset, inspection = svc.add_dataset(path, keep=False)
    record = svc.execute(svc.create_run(dataset.id).id, raw=inspection.raw)
    assert record.status == "succeeded", record.error_message
    yield ExportService(svc), record.id
    svc.close()


def build(exports: ExportService, run_id: str, path: Path, **options: Any) -> Path:
    runs = exports.runs
    customers = options.pop("customers", None)
    write_workbook(
        path,
        run=run_info(runs.finished(run_id)),
        manifest=runs.manifest(run_id),
        profiles=runs.profiles(run_id),
        insights=runs.insights(run_id),
        quality=runs.quality(run_id),
        scenarios=options.pop("scenarios", []),
        customers=exports.customers(run_id) if customers is None else customers,
        **options,
    )
    return path


@pytest.fixture(scope="module")
def book(run: tuple[ExportService, str], tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = build(*run, tmp_path_factory.mktemp("book") / "w.xlsx")
    return openpyxl.load_workbook(path)


def rows(sheet: Any) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in sheet.iter_rows(values_only=True)]


def table_after(sheet: Any, first_header: str) -> list[dict[str, Any]]:
    """The records of the table whose header row starts with ``first_header``."""
    values = rows(sheet)
    start = next(i for i, r in enumerate(values) if r[0] == first_header)
    header = values[start]
    out = []
    for r in values[start + 1 :]:
        if r[0] is None:
            break
        out.append({h: v for h, v in zip(header, r, strict=False) if h is not None})
    return out


def test_sheets_in_order(book: Any) -> None:
    assert book.sheetnames == SHEETS


def test_customers_sheet_is_every_customer_of_the_run(
    book: Any, run: tuple[ExportService, str]
) -> None:
    exports, run_id = run
    scores = pl.read_parquet(exports.runs.artifacts.path(run_id, "scores.parquet"))
    features = pl.read_parquet(exports.runs.artifacts.path(run_id, "features.parquet"))
    values = rows(book["Customers"])
    header, body = values[0], values[1:]
    assert header == (
        "customer_id", "segment", "persona", "recency_days", "frequency", "monetary",
        "avg_order_value", "tenure_days", "deal_share", "response_probability", "value_12m",
    )  # fmt: skip
    assert len(body) == CUSTOMERS == scores.height
    got = pl.DataFrame(body, schema=list(header), orient="row", infer_schema_length=None)
    assert got.get_column("customer_id").to_list() == scores.get_column("customer_id").to_list()
    assert got.get_column("segment").to_list() == scores.get_column("segment").to_list()
    for column, source in (("monetary", features), ("value_12m", scores)):
        assert_allclose(got.get_column(column).to_numpy(), source.get_column(column).to_numpy())
    # No response label in this file: no probabilities, so empty cells (not 0, not "null").
    assert got.get_column("response_probability").null_count() == CUSTOMERS
    personas = {
        s["segment"]: s["persona"]["name"] for s in exports.runs.insights(run_id)["segments"]
    }
    assert [personas[s] for s in got.get_column("segment")] == got.get_column("persona").to_list()


def test_formula_like_ids_are_stored_as_text(book: Any) -> None:
    sheet = book["Customers"]
    for row, value in enumerate(ODD_IDS, start=2):
        cell = sheet.cell(row=row, column=1)
        assert cell.value == value  # exactly the customer's id: no apostrophe added
        assert cell.data_type == "s"  # a string cell, not a formula ("f")
        assert cell.quotePrefix  # and it stays text when someone edits it in Excel
    assert sheet.cell(row=len(ODD_IDS) + 2, column=1).quotePrefix is False
    for ws in book.worksheets:
        assert not [c for r in ws.iter_rows() for c in r if c.data_type == "f"], ws.title


def test_number_formats_and_one_colour_per_segment(book: Any) -> None:
    sheet = book["Customers"]
    # Number formats are given once per column (deal_share in I, monetary in F).
    assert sheet.column_dimensions["I"].number_format == "0.0%"
    assert sheet.column_dimensions["F"].number_format == "#,##0.00"
    for row in range(2, 12):
        segment = sheet.cell(row=row, column=2)
        assert segment.fill.fgColor.rgb[-6:].lower() == segment_colour(segment.value)[1:]
    seg_sheet = book["Segments"]
    fills = {}
    for r in range(2, seg_sheet.max_row + 1):
        cell = seg_sheet.cell(row=r, column=1)
        if isinstance(cell.value, int):
            fills[cell.value] = cell.fill.fgColor.rgb[-6:].lower()
            assert seg_sheet.cell(row=r, column=5).number_format == "0.0%"
    assert fills == {s: segment_colour(s)[1:] for s in fills}
    assert len(set(fills.values())) == len(fills) >= 2


def test_segments_sheet_matches_the_profiles(book: Any, run: tuple[ExportService, str]) -> None:
    exports, run_id = run
    profiles = exports.runs.profiles(run_id)["profiles"]
    table = table_after(book["Segments"], "Segment")
    assert [r["Segment"] for r in table] == [*range(1, len(profiles)), "All"]
    for r, p in zip(table, [*profiles[1:], profiles[0]], strict=True):
        for header, key in (
            ("Customers", "customers"),
            ("Customer share", "customer_share"),
            ("Revenue", "revenue"),
            ("Revenue share", "revenue_share"),
        ):
            assert_allclose(r[header], p[key], rtol=1e-14)
        assert_allclose(r["Mean monetary"], p["means"]["monetary"], rtol=1e-14)
    assert sum(r["Customers"] for r in table[:-1]) == table[-1]["Customers"] == CUSTOMERS


def test_summary_carries_the_provenance(book: Any, run: tuple[ExportService, str]) -> None:
    exports, run_id = run
    manifest = exports.runs.manifest(run_id)
    facts = {r[0]: r[2] for r in rows(book["Summary"]) if r[0] is not None}
    assert facts["Run id"] == run_id
    assert facts["Input sha256"] == manifest["input"]["sha256"]
    assert facts["Input file"] == "c.csv"
    assert facts["seed"] == manifest["config"]["seed"]
    kpis = {r[0]: r[1] for r in rows(book["Summary"]) if r[0] is not None}
    assert kpis["Customers"] == CUSTOMERS
    assert_allclose(kpis["Revenue"], exports.runs.insights(run_id)["overall"]["revenue"])
    assert book["Summary"]["A5"].value == exports.runs.insights(run_id)["banner"]


def test_quality_lists_every_issue(book: Any, run: tuple[ExportService, str]) -> None:
    exports, run_id = run
    quality = exports.runs.quality(run_id)
    table = table_after(book["Quality"], "Kind")
    assert [(r["Code"], r["Column"], r["Count"]) for r in table] == [
        (i["code"], i["column"], i["count"]) for i in quality["issues"]
    ]
    first = quality["issues"][0]
    assert table[0]["Example rows"] == ", ".join(map(str, first["rows"])) or None
    assert rows(book["Quality"])[0] == ("Rows read", quality["rows_read"], *[None] * 4)


def test_personas_and_insights_one_row_per_segment(
    book: Any, run: tuple[ExportService, str]
) -> None:
    exports, run_id = run
    segments = exports.runs.insights(run_id)["segments"]
    personas = table_after(book["Personas"], "Segment")
    assert [r["Persona"] for r in personas] == [s["persona"]["name"] for s in segments]
    assert all(r["Narrative"] and r["Traits"] and r["Actions"] for r in personas)
    insights = table_after(book["Insights"], "Segment")
    assert len(insights) == len(segments) + 1
    for r, s in zip(insights, segments, strict=False):
        assert_allclose(r["Expected response rate"], s["response"]["expected_rate"], rtol=1e-14)
        assert_allclose(r["Revenue exposed"], s["discount"]["revenue_exposed"], rtol=1e-14)
        assert r["Dominant channel"] == s["channels"]["dominant"]


def test_no_scenarios_is_an_empty_table_with_a_note(book: Any) -> None:
    values = rows(book["Scenarios"])
    assert values[0][:3] == ("Scenario", "Saved at", "Levers")
    assert "No scenarios" in values[1][0]


def test_customers_continue_on_new_sheets_past_the_row_limit(
    run: tuple[ExportService, str], tmp_path: Path
) -> None:
    exports, run_id = run
    path = build(exports, run_id, tmp_path / "split.xlsx", rows_per_sheet=70)
    book = openpyxl.load_workbook(path, read_only=True)
    parts = ["Customers", *(f"Customers ({n})" for n in range(2, 6))]
    assert book.sheetnames == SHEETS[:-1] + parts
    bodies = [rows(book[name]) for name in parts]
    assert [len(b) - 1 for b in bodies] == [70, 70, 70, 70, 20]
    assert all(b[0][0] == "customer_id" for b in bodies)
    ids = [r[0] for b in bodies for r in b[1:]]
    scores = pl.read_parquet(exports.runs.artifacts.path(run_id, "scores.parquet"))
    assert ids == scores.get_column("customer_id").to_list()


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1.5, None, math.nan, math.inf, -math.inf, 0.0], [1.5, None, None, None, None, 0]),
        ([3, None, -7], [3, None, -7]),
        (["a", None, "=1+1"], ["a", None, "=1+1"]),
    ],
)
def test_missing_and_non_finite_values_become_empty_cells(
    run: tuple[ExportService, str], tmp_path: Path, values: list[Any], expected: list[Any]
) -> None:
    customers = pl.LazyFrame({"value": values}, strict=False)
    path = build(*run, tmp_path / "v.xlsx", customers=customers)
    sheet = openpyxl.load_workbook(path)["Customers"]
    assert [sheet.cell(row=r, column=1).value for r in range(2, len(values) + 2)] == expected


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("=1+1", True),
        ("+44 20", True),
        ("-5", True),
        ("@SUM(A1:A9)", True),
        ("\tcmd", True),
        ("\rcmd", True),
        ("a=1", False),
        ("1", False),
        (" =1", False),
    ],
)
def test_every_formula_start_is_kept_as_quoted_text(
    run: tuple[ExportService, str], tmp_path: Path, text: str, quoted: bool
) -> None:
    path = build(*run, tmp_path / "q.xlsx", customers=pl.LazyFrame({"customer_id": [text]}))
    cell = openpyxl.load_workbook(path)["Customers"]["A2"]
    # Control characters are stored OOXML-escaped (_x000D_), which openpyxl leaves as is.
    assert (unescape(cell.value), cell.data_type, cell.quotePrefix) == (text, "s", quoted)


@pytest.mark.parametrize(
    "text",
    [
        "Smith & Sons <ltd>",
        "  padded  ",
        "_x0041_ stays literal",
        "café ☕ 東京",
        "two\nlines",
        "bell\x07 and nul\x00",
        "x" * 40_000,  # longer than a cell holds: cut at Excel's 32,767 characters
    ],
)
def test_customer_text_reads_back_as_written(
    run: tuple[ExportService, str], tmp_path: Path, text: str
) -> None:
    path = build(*run, tmp_path / "t.xlsx", customers=pl.LazyFrame({"customer_id": [text, "b"]}))
    sheet = openpyxl.load_workbook(path)["Customers"]
    assert unescape(sheet["A2"].value) == text[:32_767]
    assert sheet["A3"].value == "b"


def test_customer_sheets_declare_their_size_and_filter(
    run: tuple[ExportService, str], tmp_path: Path
) -> None:
    exports, run_id = run
    path = build(exports, run_id, tmp_path / "dims.xlsx", rows_per_sheet=120)
    book = openpyxl.load_workbook(path)
    last_column = book["Customers"].max_column
    letter = openpyxl.utils.get_column_letter(last_column)
    for name, rows_in_sheet in (("Customers", 120), ("Customers (2)", 120), ("Customers (3)", 60)):
        sheet = book[name]
        assert sheet.dimensions == f"A1:{letter}{rows_in_sheet + 1}"
        assert sheet.auto_filter.ref == f"A1:{letter}{rows_in_sheet + 1}"
        assert sheet.freeze_panes == "B2"


def test_progress_is_reported_up_to_the_end(
    run: tuple[ExportService, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sistack.io.exports.xlsx.BATCH_ROWS", 64)
    seen: list[float] = []
    build(*run, tmp_path / "p.xlsx", progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 1.0
    assert len(seen) >= CUSTOMERS // 64


@pytest.mark.parametrize("limit", [0, EXCEL_DATA_ROWS + 1])
def test_row_limit_must_fit_excel(
    run: tuple[ExportService, str], tmp_path: Path, limit: int
) -> None:
    with pytest.raises(ValueError, match="rows_per_sheet"):
        build(*run, tmp_path / "x.xlsx", rows_per_sheet=limit)


def test_workbook_is_written_in_constant_memory_mode(
    run: tuple[ExportService, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import xlsxwriter

    seen: list[dict[str, Any]] = []
    original = xlsxwriter.Workbook.__init__

    def spy(self: Any, filename: Any, options: dict[str, Any] | None = None) -> None:
        seen.append(dict(options or {}))
        original(self, filename, options)

    monkeypatch.setattr(xlsxwriter.Workbook, "__init__", spy)
    build(*run, tmp_path / "m.xlsx")
    assert seen[0]["constant_memory"] is True
    assert seen[0]["strings_to_formulas"] is False
