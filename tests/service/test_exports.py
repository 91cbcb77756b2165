"""Export use cases: the registry, caching per run, rebuilds after a saved scenario, atomicity."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import polars as pl
import pytest
from numpy.testing import assert_allclose

from sistack.errors import NotFound
from sistack.service.exports import REGISTRY, ExportFormat, ExportService, ExportUnavailable
from sistack.service.runs import RunService
from sistack.service.simulation import SimulationService
from tests.conftest import _write_customers, small_settings

SHIFT = {
    "levers": [{"lever": "budget_shift", "params": {"sources": [2], "targets": [1], "shift": 0.2}}]
}
NAMES = [
    "assignments.csv",
    "assignments.parquet",
    "manifest.json",
    "profiles.csv",
    "report.pdf",
    "workbook.xlsx",
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunService]:
    root = tmp_path_factory.mktemp("exports")
    svc = RunService(small_settings(root / "home"))
    yield svc
    svc.close()


@pytest.fixture
def run_id(runs: RunService, tmp_path: Path) -> str:
    """A fresh 200-customer run per test (0.2 s): scenarios and caches never leak."""
    path = _write_customers(tmp_path / "c.csv", customers=200, seed=3, response=False)
    dataset, inspection = runs.add_dataset(path, keep=False)
    record = runs.execute(runs.create_run(dataset.id).id, raw=inspection.raw)
    assert record.status == "succeeded", record.error_message
    return record.id


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count builds per export name (the real builders still run)."""
    calls: dict[str, int] = {}
    for name, fmt in list(REGISTRY.items()):

        def build(
            svc: ExportService, run: str, path: Path, progress: Any, _fmt: ExportFormat = fmt
        ) -> None:
            calls[_fmt.name] = calls.get(_fmt.name, 0) + 1
            _fmt.build(svc, run, path, progress)

        monkeypatch.setitem(REGISTRY, name, dataclasses.replace(fmt, build=build))
    return calls


def test_registry_names_and_media_types() -> None:
    assert ExportService.names() == NAMES
    assert {n: REGISTRY[n].media_type for n in NAMES} == {
        "assignments.csv": "text/csv",
        "assignments.parquet": "application/vnd.apache.parquet",
        "manifest.json": "application/json",
        "profiles.csv": "text/csv",
        "report.pdf": "application/pdf",
        "workbook.xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }
    assert {n for n in NAMES if REGISTRY[n].uses_scenarios} == {"report.pdf", "workbook.xlsx"}


def test_second_request_is_served_from_the_cache(
    runs: RunService, run_id: str, counted: dict[str, int]
) -> None:
    exports = ExportService(runs)
    first = exports.export(run_id, "workbook.xlsx")
    assert first.path.parent == runs.settings.exports_dir / run_id
    mtime = first.path.stat().st_mtime_ns
    second = ExportService(runs).export(run_id, "workbook.xlsx")  # a new service: same cache
    assert second == first
    assert second.path.stat().st_mtime_ns == mtime
    assert counted == {"workbook.xlsx": 1}
    assert first.filename == f"{run_id}-workbook.xlsx"


def test_a_saved_scenario_rebuilds_report_and_workbook_only(
    runs: RunService, run_id: str, counted: dict[str, int]
) -> None:
    exports = ExportService(runs)
    before = {n: exports.export(run_id, n).path for n in ("workbook.xlsx", "assignments.csv")}
    sim = SimulationService(runs)
    saved = sim.save(run_id, "shift a fifth", SHIFT)
    after = {n: exports.export(run_id, n).path for n in ("workbook.xlsx", "assignments.csv")}
    assert counted == {"workbook.xlsx": 2, "assignments.csv": 1}
    assert after["assignments.csv"] == before["assignments.csv"]
    assert after["workbook.xlsx"] != before["workbook.xlsx"]
    assert not before["workbook.xlsx"].exists()  # the stale file is gone, the new one served

    sheet = openpyxl.load_workbook(after["workbook.xlsx"])["Scenarios"]
    header = [c.value for c in sheet[1]]
    row = dict(zip(header, [c.value for c in sheet[2]], strict=True))
    expected = sim.simulate(run_id, saved.body)["overall"]
    assert row["Scenario"] == "shift a fifth"
    assert row["Levers"] == "budget_shift"
    for measure in ("revenue", "cost", "profit"):
        assert_allclose(row[f"Baseline {measure}"], expected["baseline"][measure], rtol=1e-14)
        assert_allclose(row[f"Scenario {measure}"], expected["scenario"][measure], rtol=1e-14)
        assert_allclose(row[f"Δ {measure}"], expected["delta"][measure], rtol=1e-14, atol=1e-9)

    sim.delete(run_id, saved.id)  # back to the first set of scenarios: the first key again
    assert exports.export(run_id, "workbook.xlsx").path == before["workbook.xlsx"]
    assert counted["workbook.xlsx"] == 3


def test_a_failed_build_leaves_nothing_behind(
    runs: RunService, run_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(svc: ExportService, run: str, path: Path, progress: Any) -> None:
        path.write_bytes(b"half a file")
        raise RuntimeError("disk full")

    fmt = REGISTRY["profiles.csv"]
    monkeypatch.setitem(REGISTRY, "profiles.csv", dataclasses.replace(fmt, build=broken))
    exports = ExportService(runs)
    with pytest.raises(RuntimeError, match="disk full"):
        exports.export(run_id, "profiles.csv")
    assert list((runs.settings.exports_dir / run_id).iterdir()) == []
    monkeypatch.setitem(REGISTRY, "profiles.csv", fmt)
    built = exports.export(run_id, "profiles.csv")
    frame = pl.read_csv(built.path)
    assert frame.get_column("customers").to_list()[0] == 200


@pytest.mark.parametrize("name", ["nope.csv", "../manifest.json", "MANIFEST.JSON", "", "runs"])
def test_unknown_names_list_the_allowed_ones(runs: RunService, run_id: str, name: str) -> None:
    with pytest.raises(NotFound) as caught:
        ExportService(runs).export(run_id, name)
    assert caught.value.code == "unknown_export"
    assert caught.value.details == {"allowed": NAMES}
    assert not (runs.settings.exports_dir / run_id).exists()


def test_report_without_its_modules_is_unavailable(
    runs: RunService, run_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "sistack.io.exports.pdf", None)  # import now fails
    with pytest.raises(ExportUnavailable) as caught:
        ExportService(runs).export(run_id, "report.pdf")
    assert (caught.value.code, caught.value.status) == ("export_unavailable", 503)
    assert "other exports work" in caught.value.message


def test_customer_table_reads_scores_and_features_side_by_side(
    runs: RunService, run_id: str
) -> None:
    # The workbook pairs the two files row by row: the pipeline must keep writing them in the
    # same customer order.
    art = runs.artifacts
    scores = pl.read_parquet(art.path(run_id, "scores.parquet"))
    features = pl.read_parquet(art.path(run_id, "features.parquet"))
    assert scores.get_column("customer_id").equals(features.get_column("customer_id"))
    table = ExportService(runs).customers(run_id).collect()
    assert table.height == 200
    assert table.get_column("recency_days").equals(features.get_column("recency_days"))
    assert table.get_column("value_12m").equals(scores.get_column("value_12m"))


def test_assignments_csv_is_neutralised_and_parquet_identical(
    runs: RunService, run_id: str
) -> None:
    exports = ExportService(runs)
    source = pl.read_parquet(runs.assignments_path(run_id))
    assert pl.read_parquet(exports.export(run_id, "assignments.parquet").path).equals(source)
    csv = pl.read_csv(
        exports.export(run_id, "assignments.csv").path, schema_overrides={"customer_id": pl.String}
    )
    assert csv.get_column("segment").to_list() == source.get_column("segment").to_list()


def test_purge_removes_a_runs_cache(runs: RunService, run_id: str) -> None:
    exports = ExportService(runs)
    exports.export(run_id, "manifest.json")
    exports.purge(run_id)
    assert not (runs.settings.exports_dir / run_id).exists()
    exports.purge("../../etc")  # not a run id: nothing happens


def test_deleting_a_run_removes_its_cached_exports(runs: RunService, run_id: str) -> None:
    ExportService(runs).export(run_id, "manifest.json")
    assert (runs.settings.exports_dir / run_id).is_dir()
    runs.delete_run(run_id)
    assert not (runs.settings.exports_dir / run_id).exists()
