"""Exports through the entry points: GET /api/v1/runs/{id}/exports/{name} and ``sistack export``.

One module-wide app serves a 300-customer run whose first customer id is a formula. Every export
is checked against what the rest of the API answers for the same run (assignments, manifest,
segments), never against the export code's own reading of the artifacts.
"""

from __future__ import annotations

import dataclasses
import io
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
import polars as pl
import pypdf
import pytest
from fastapi.testclient import TestClient
from numpy.testing import assert_allclose
from typer.testing import CliRunner

from sistack.api.app import create_app
from sistack.cli import app as cli
from sistack.config import Settings
from sistack.io.exports import looks_like_formula
from sistack.service.exports import REGISTRY, ExportUnavailable
from tests.api.test_api import error_of, start_run, upload
from tests.conftest import SMALL_ENV, _write_customers, small_settings

API = "/api/v1"
FORMULA_ID = '=HYPERLINK("http://x","y")'
CUSTOMERS = 300
MEDIA = {
    "report.pdf": "application/pdf",
    "workbook.xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "assignments.csv": "text/csv; charset=utf-8",
    "assignments.parquet": "application/vnd.apache.parquet",
    "profiles.csv": "text/csv; charset=utf-8",
    "manifest.json": "application/json",
}
SHIFT = {
    "levers": [{"lever": "budget_shift", "params": {"sources": [2], "targets": [1], "shift": 0.2}}]
}


@dataclass(frozen=True)
class Served:
    client: TestClient
    settings: Settings
    run_id: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("exports-api")
    csv = _write_customers(root / "customers.csv", customers=CUSTOMERS, seed=7, response=False)
    frame = pl.read_csv(csv).with_columns(pl.col("ID").cast(pl.String))
    frame.with_columns(pl.Series("ID", [FORMULA_ID, *frame.get_column("ID")[1:]])).write_csv(csv)
    settings = small_settings(root / "home")
    with TestClient(create_app(settings)) as client:
        uploaded = upload(client, csv)
        assert uploaded.status_code == 201, uploaded.text
        run = start_run(client, uploaded.json()["id"])
        assert run["status"] == "succeeded", run
        yield Served(client, settings, run["id"])


def fetch(served: Served, name: str, *, timeout: float = 60.0) -> Any:
    """GET an export as a client should: while the answer is 202 (a background build), wait
    the Retry-After it names (shortened here) and ask again."""
    url = f"{API}/runs/{served.run_id}/exports/{name}"
    deadline = time.monotonic() + timeout
    while True:
        response = served.client.get(url)
        if response.status_code != 202:
            return response
        body = response.json()
        assert body["status"] == "building" and body["url"] == url
        assert response.headers["retry-after"] == str(body["retry_after"])
        assert time.monotonic() < deadline, "the export was never built"
        time.sleep(0.05)


def download(served: Served, name: str) -> Any:
    response = fetch(served, name)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == MEDIA[name]
    assert response.content
    disposition = response.headers["content-disposition"]
    assert disposition == f'attachment; filename="{served.run_id}-{name}"'
    return response


def assignments(served: Served) -> pl.DataFrame:
    """The run's assignments as the JSON API pages them."""
    page = served.client.get(f"{API}/runs/{served.run_id}/assignments?limit=10000").json()
    assert page["total"] == CUSTOMERS
    return pl.DataFrame(page["items"])


@pytest.mark.parametrize("name", sorted(MEDIA))
def test_every_export_downloads_with_its_media_type_and_file_name(
    served: Served, name: str
) -> None:
    download(served, name)


def test_assignments_csv_and_parquet_hold_the_runs_assignments(served: Served) -> None:
    expected = assignments(served)
    parquet = pl.read_parquet(io.BytesIO(download(served, "assignments.parquet").content))
    assert parquet.select(expected.columns).equals(expected.cast(parquet.schema))
    csv = pl.read_csv(
        io.BytesIO(download(served, "assignments.csv").content),
        schema_overrides={"customer_id": pl.String},
    )
    assert csv.height == CUSTOMERS
    # Formula-like ids are neutralised in CSV (a leading apostrophe), all else is the same.
    ids = expected.get_column("customer_id").to_list()
    assert ids[0] == FORMULA_ID
    assert csv.get_column("customer_id").to_list() == [
        f"'{i}" if looks_like_formula(i) else i for i in ids
    ]
    assert csv.get_column("segment").to_list() == expected.get_column("segment").to_list()
    assert_allclose(csv.get_column("distance"), expected.get_column("distance"), rtol=1e-12)


def test_manifest_json_is_the_manifest(served: Served) -> None:
    manifest = served.client.get(f"{API}/runs/{served.run_id}/manifest").json()
    assert json.loads(download(served, "manifest.json").content) == manifest


def test_profiles_csv_matches_the_segments(served: Served) -> None:
    segments = served.client.get(f"{API}/runs/{served.run_id}/segments").json()
    frame = pl.read_csv(io.BytesIO(download(served, "profiles.csv").content))
    rows = [segments["population"], *segments["segments"]]
    assert frame.get_column("segment").to_list() == [r["segment"] for r in rows]
    assert frame.get_column("customers").to_list() == [r["customers"] for r in rows]
    assert_allclose(frame.get_column("revenue_share"), [r["revenue_share"] for r in rows])


def test_workbook_segments_equal_the_api_segments(served: Served) -> None:
    segments = served.client.get(f"{API}/runs/{served.run_id}/segments").json()
    book = openpyxl.load_workbook(io.BytesIO(download(served, "workbook.xlsx").content))
    sheet = book["Segments"]
    header = [c.value for c in sheet[1]]
    last = segments["k"] + 2  # a header row, k segments, then all customers
    table = [dict(zip(header, [c.value for c in row], strict=True)) for row in sheet[2:last]]
    assert sheet.cell(row=last + 1, column=1).value is None  # and the table ends there
    expected = [*segments["segments"], segments["population"]]
    for row, seg in zip(table, expected, strict=True):
        assert row["Segment"] == (seg["segment"] or "All")
        assert row["Customers"] == seg["customers"]
        for header_name, key in (
            ("Customer share", "customer_share"),
            ("Revenue", "revenue"),
            ("Revenue share", "revenue_share"),
            ("Stability", "stability"),
        ):
            if seg[key] is None:  # the population has no stability
                assert row[header_name] is None
            else:
                assert_allclose(row[header_name], seg[key], rtol=1e-14)
        assert_allclose(row["Mean recency_days"], seg["means"]["recency_days"], rtol=1e-14)
    customers = book["Customers"]
    assert customers.max_row == CUSTOMERS + 1
    first = customers["A2"]
    assert (first.value, first.data_type) == (FORMULA_ID, "s")


def test_report_pdf_names_the_run_and_its_input(served: Served) -> None:
    manifest = served.client.get(f"{API}/runs/{served.run_id}/manifest").json()
    pdf = pypdf.PdfReader(io.BytesIO(download(served, "report.pdf").content))
    k = served.client.get(f"{API}/runs/{served.run_id}").json()["k"]
    assert len(pdf.pages) >= k + 2  # cover, summary, one page per segment, appendix
    cover = " ".join(pdf.pages[0].extract_text().split())
    assert served.run_id in cover
    assert manifest["input"]["sha256"] in cover


@pytest.mark.parametrize(
    "name",
    [
        "nope.txt",
        "MANIFEST.JSON",
        "manifest",
        "..%2Fmanifest.json",
        "..%2F..%2F..%2Fsistack.db",
        "%2e%2e",
        "%2e%2e%2fmanifest.json",
        "manifest.json%00",
        "manifest.json%00.pdf",
        "%2Fetc%2Fpasswd",
        "/etc/passwd",
        "..%5Cmanifest.json",
        "C:%5Cwindows%5Cwin.ini",
        "manifest.json/",
        "assignments.csv%20",
    ],
)
def test_unknown_and_traversal_names_are_404_listing_the_allowed_ones(
    served: Served, name: str
) -> None:
    response = served.client.get(f"{API}/runs/{served.run_id}/exports/{name}")
    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "unknown_export"
    assert error["details"]["allowed"] == sorted(MEDIA)


@pytest.mark.parametrize("run_id", ["01ARZ3NDEKTSV4RRFFQ69G5FAV", "nope", "..%2F..", "%2e%2e"])
def test_unknown_runs_are_404(served: Served, run_id: str) -> None:
    response = served.client.get(f"{API}/runs/{run_id}/exports/manifest.json")
    assert response.status_code == 404
    assert error_of(response)["code"] in ("run_not_found", "not_found")


def test_cached_until_a_scenario_is_saved(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    builds: list[str] = []
    fmt = REGISTRY["workbook.xlsx"]

    def counting(svc: Any, run_id: str, path: Path, progress: Any) -> None:
        builds.append(run_id)
        fmt.build(svc, run_id, path, progress)

    monkeypatch.setitem(REGISTRY, "workbook.xlsx", dataclasses.replace(fmt, build=counting))
    url = f"{API}/runs/{served.run_id}/exports/workbook.xlsx"
    first = fetch(served, "workbook.xlsx").content
    assert served.client.get(url).content == first
    assert len(builds) <= 1  # an earlier test may have built it already
    before = len(builds)
    saved = served.client.post(
        f"{API}/runs/{served.run_id}/scenarios", json={"name": "shift", "scenario": SHIFT}
    )
    assert saved.status_code == 201, saved.text
    try:
        rebuilt = fetch(served, "workbook.xlsx").content
        assert served.client.get(url).content == rebuilt != first
        assert len(builds) == before + 1
        scenarios = openpyxl.load_workbook(io.BytesIO(rebuilt))["Scenarios"]
        assert scenarios["A2"].value == "shift"
    finally:
        served.client.delete(f"{API}/runs/{served.run_id}/scenarios/{saved.json()['id']}")


def test_cli_exports_the_same_workbook(served: Served, tmp_path: Path) -> None:
    env = {"SISTACK_HOME": str(served.settings.home), **SMALL_ENV}
    target = tmp_path / "book.xlsx"
    result = CliRunner().invoke(
        cli, ["export", served.run_id, "--what", "workbook", "-o", str(target)], env=env
    )
    assert result.exit_code == 0, result.output
    assert target.read_bytes() == download(served, "workbook.xlsx").content
    book = openpyxl.load_workbook(target, read_only=True)
    assert book.sheetnames[-1] == "Customers"
    assert sum(1 for _ in book["Customers"].iter_rows()) == CUSTOMERS + 1

    wrong = CliRunner().invoke(
        cli, ["export", served.run_id, "--what", "report", "-o", str(tmp_path / "r.xlsx")], env=env
    )
    assert wrong.exit_code == 2
    assert "unsupported_export_format" in wrong.stderr
    assert not (tmp_path / "r.xlsx").exists()


def test_workbook_is_built_in_the_background_202_then_200(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first request starts the build and answers 202 with its progress (GET and POST
    alike, nothing downloaded); once built, GET sends the file and POST says it is ready."""
    fmt = REGISTRY["workbook.xlsx"]
    release, halfway = threading.Event(), threading.Event()

    def slow(svc: Any, run_id: str, path: Path, progress: Any) -> None:
        progress(0.5)
        halfway.set()
        assert release.wait(30)
        fmt.build(svc, run_id, path, progress)

    monkeypatch.setitem(REGISTRY, "workbook.xlsx", dataclasses.replace(fmt, build=slow))
    saved = served.client.post(  # a new set of saved scenarios: a workbook not built yet
        f"{API}/runs/{served.run_id}/scenarios", json={"name": "background", "scenario": SHIFT}
    )
    assert saved.status_code == 201, saved.text
    url = f"{API}/runs/{served.run_id}/exports/workbook.xlsx"
    try:
        first = served.client.get(url)
        assert first.status_code == 202
        assert first.headers["content-type"] == "application/json"
        assert halfway.wait(30)
        polled = served.client.post(url)
        assert polled.status_code == 202
        body = polled.json()
        assert body == {
            "run_id": served.run_id,
            "name": "workbook.xlsx",
            "status": "building",
            "progress": 0.5,
            "elapsed_seconds": body["elapsed_seconds"],
            "retry_after": 2,
            "url": url,
        }
        assert polled.headers["retry-after"] == "2"
        release.set()
        book = openpyxl.load_workbook(io.BytesIO(download(served, "workbook.xlsx").content))
        assert book["Scenarios"]["A2"].value == "background"
        ready = served.client.post(url)
        assert ready.status_code == 200
        assert ready.json()["status"] == "ready" and ready.json()["progress"] == 1.0
    finally:
        release.set()
        served.client.delete(f"{API}/runs/{served.run_id}/scenarios/{saved.json()['id']}")


def test_a_failed_background_build_is_reported_once_then_retried(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    fmt = REGISTRY["workbook.xlsx"]
    calls: list[int] = []

    def flaky(svc: Any, run_id: str, path: Path, progress: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ExportUnavailable("The disk went away.")
        fmt.build(svc, run_id, path, progress)

    monkeypatch.setitem(REGISTRY, "workbook.xlsx", dataclasses.replace(fmt, build=flaky))
    saved = served.client.post(
        f"{API}/runs/{served.run_id}/scenarios", json={"name": "flaky", "scenario": SHIFT}
    )
    url = f"{API}/runs/{served.run_id}/exports/workbook.xlsx"
    try:
        answer = fetch(served, "workbook.xlsx")
        assert answer.status_code == 503
        assert error_of(answer) == {
            "code": "export_unavailable",
            "message": "The disk went away.",
            "details": {},
        }
        assert served.client.get(url).status_code == 202  # asked again: a new build
        assert download(served, "workbook.xlsx").content
        assert len(calls) == 2
    finally:
        served.client.delete(f"{API}/runs/{served.run_id}/scenarios/{saved.json()['id']}")
