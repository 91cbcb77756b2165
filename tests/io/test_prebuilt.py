"""Charts written with the run (specs, a manifest-listed, reproducible artifact) and the report's
SVGs (drawn on first use, cached beside the exports).

Checks: the specs are listed with their sha256 and verified by ``sistack doctor``; they equal
what would be built later from the stored files; reproduce compares them and finds them
identical; the report's SVGs are drawn once per run and then read from the cache; pages, the
report and the PDF then draw nothing (the chart builders are made to fail); a run of an earlier
version that carries its SVGs is read as it is; the SVG ids are renamed per chart so they are
stable and never collide.
"""

from __future__ import annotations

import json
import multiprocessing
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sistack.errors import NotFound
from sistack.io.exports import charts, report
from sistack.io.exports.drawing import report_chart_names, stable_ids
from sistack.io.exports.prebuilt import CHARTS, REPORT_CHARTS
from sistack.io.store.artifacts import sha256_file
from sistack.service.doctor import diagnose
from sistack.service.exports import ExportService
from sistack.service.runs import COMPARED, RunService
from sistack.service.simulation import SimulationService
from sistack.web.views import WebViews
from tests.conftest import _write_customers, small_settings


@dataclass(frozen=True)
class Made:
    runs: RunService
    run_id: str


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Made]:
    root = tmp_path_factory.mktemp("prebuilt")
    path = _write_customers(root / "c.csv", customers=400, seed=5)
    svc = RunService(small_settings(root / "home"))
    dataset, inspection = svc.add_dataset(path, keep=False)
    record = svc.execute(svc.create_run(dataset.id).id, raw=inspection.raw)
    assert record.status == "succeeded", record.error_message
    yield Made(svc, record.id)
    svc.close()


def test_specs_listed_in_the_manifest_with_their_sha256(made: Made) -> None:
    artifacts = made.runs.manifest(made.run_id)["artifacts"]
    path = made.runs.artifacts.path(made.run_id, CHARTS)
    assert artifacts[CHARTS] == {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    assert CHARTS in COMPARED  # reproduce compares them
    # The report's SVGs are not part of a run (drawn on first use).
    assert REPORT_CHARTS not in artifacts
    assert not (made.runs.artifacts.root / made.run_id / REPORT_CHARTS).exists()


def test_specs_equal_what_the_stored_files_give(made: Made) -> None:
    runs, run_id = made.runs, made.run_id
    art = runs.artifacts
    projection = report.read_projection_sample(
        art.path(run_id, "features.parquet"), art.path(run_id, "assignments.parquet")
    )
    later = charts.run_charts(
        profiles=runs.profiles(run_id),
        insights=runs.insights(run_id),
        model=runs.model(run_id),
        projection=projection,
    )
    stored = art.read_json(run_id, CHARTS)
    assert json.loads(json.dumps(later)) == stored
    assert {"share", "features", "projection", "profile_1", "channels_1"} <= set(stored)


@pytest.fixture
def draws(made: Made, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The run's report SVGs removed from the cache; each drawing from now on adds the name
    of the thread that drew."""
    ExportService(made.runs).purge(made.run_id)
    threads: list[str] = []
    draw = report.report_svgs

    def recorded(specs: dict[str, Any], k: int) -> dict[str, str]:
        threads.append(threading.current_thread().name)
        return draw(specs, k)

    monkeypatch.setattr(report, "report_svgs", recorded)
    return threads


def test_report_svgs_are_drawn_once_then_read_from_the_cache(made: Made, draws: list[str]) -> None:
    exports = ExportService(made.runs)
    svgs = exports.report_svgs(made.run_id)
    k = len(made.runs.insights(made.run_id)["segments"])
    stored = made.runs.artifacts.read_json(made.run_id, CHARTS)
    assert set(svgs) == {n for n in report_chart_names(k) if n in stored}
    assert all(svg.startswith("<svg") for svg in svgs.values())
    # Cached beside the exports: another service (another process) reads it, draws nothing.
    again = ExportService(made.runs)
    assert again.report_svgs(made.run_id) == svgs
    assert len(draws) == 1
    assert [p.name for p in (exports.root / made.run_id).iterdir()] == ["report-charts.2.json"]
    exports.close()
    again.close()


def test_reproduce_is_identical_and_doctor_verifies_them(made: Made) -> None:
    result = made.runs.reproduce(made.run_id)
    assert (result.identical, result.differing) == (True, [])
    assert diagnose(made.runs.store, made.runs.artifacts).ok
    theirs = made.runs.manifest(result.new_run_id)["artifacts"]
    mine = made.runs.manifest(made.run_id)["artifacts"]
    assert theirs[CHARTS] == mine[CHARTS]


def test_a_changed_chart_file_is_reported_by_doctor(made: Made, tmp_path: Path) -> None:
    path = made.runs.artifacts.path(made.run_id, CHARTS)
    original = path.read_bytes()
    try:
        path.write_bytes(original.replace(b'"share"', b'"Share"', 1))
        problems = diagnose(made.runs.store, made.runs.artifacts).problems
        assert [(p.kind, p.run_id) for p in problems] == [("changed_file", made.run_id)]
        assert problems[0].path.endswith(CHARTS)
    finally:
        path.write_bytes(original)


def _fail(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("a chart was drawn during a request")


def test_pages_report_and_pdf_draw_no_chart_once_drawn(
    made: Made, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ExportService(made.runs).report_svgs(made.run_id)  # the first report view draws them
    for module, name in [
        (charts, "run_charts"),
        (charts, "to_svg"),
        (charts, "to_raster_svg"),
        (report, "report_svgs"),
        (report, "read_projection_sample"),
    ]:
        monkeypatch.setattr(module, name, _fail)
    exports = ExportService(made.runs)
    web = WebViews(made.runs, SimulationService(made.runs), exports)
    docs = web.documents(made.run_id)
    assert web.charts(docs) == made.runs.artifacts.read_json(made.run_id, CHARTS)
    assert web.overview_charts(docs)["share"] == web.charts(docs)["share"]
    html = web.report_html(made.run_id)
    assert html.count('src="data:image/svg+xml;base64,') == len(exports.report_svgs(made.run_id))
    exports.report_pdf(made.run_id, tmp_path / "r.pdf")
    assert (tmp_path / "r.pdf").read_bytes().startswith(b"%PDF")
    exports.close()


@pytest.mark.parametrize(
    ("svg", "prefix", "expected"),
    [
        ('<svg><g id="clip17"/></svg>', "share", '<svg><g id="share-0"/></svg>'),
        (
            '<clipPath id="clip1"/><clipPath id="clip10"/><g clip-path="url(#clip10)"/>'
            '<g clip-path="url(#clip1)"/>',
            "value",
            '<clipPath id="value-0"/><clipPath id="value-1"/><g clip-path="url(#value-1)"/>'
            '<g clip-path="url(#value-0)"/>',
        ),
        (
            '<linearGradient id="gradient_0"/><path fill="url(#gradient_0)"/><use href="#x"/>',
            "features",
            '<linearGradient id="features-0"/><path fill="url(#features-0)"/><use href="#x"/>',
        ),
        ('<text aria-id="7">id="no"</text>', "k", '<text aria-id="7">id="no"</text>'),
    ],
)
def test_stable_ids_rename_in_order_and_keep_references(
    svg: str, prefix: str, expected: str
) -> None:
    assert stable_ids(svg, prefix) == expected


def test_the_same_chart_drawn_twice_gives_the_same_svg(made: Made) -> None:
    spec = made.runs.artifacts.read_json(made.run_id, CHARTS)["profile_1"]
    first, second = (stable_ids(charts.to_svg(spec), "profile_1") for _ in range(2))
    assert first == second
    assert set(re.findall(r'\bid="([^"]+)"', first)) <= {f"profile_1-{i}" for i in range(99)}


def _older_run(made: Made) -> tuple[str, Path, dict[str, Any]]:
    """A new run of the same data, its folder and its manifest (to edit into an older one)."""
    runs = made.runs
    old = runs.execute(runs.create_run(runs.get_run(made.run_id).dataset_id).id)
    folder = runs.artifacts.root / old.id
    return old.id, folder, json.loads((folder / "manifest.json").read_bytes())


def test_a_run_made_before_stored_charts_still_works(made: Made) -> None:
    """A run written by an earlier version has no chart file: pages draw its charts on
    request, and reproduce compares the files it has."""
    runs = made.runs
    old_id, folder, manifest = _older_run(made)
    expected = runs.artifacts.read_json(old_id, CHARTS)
    (folder / CHARTS).unlink()
    del manifest["artifacts"][CHARTS]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    exports = ExportService(runs)
    assert exports.charts(old_id) == expected
    k = len(runs.insights(old_id)["segments"])
    assert exports.report_svgs(old_id).keys() == {n for n in report_chart_names(k) if n in expected}
    result = runs.reproduce(old_id)
    assert (result.identical, result.differing) == (True, [])
    exports.close()


def test_a_run_that_carries_its_report_svgs_is_read_as_it_is(
    made: Made, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Earlier versions wrote the report's SVGs with the run (``report-charts.json``): they
    are read, never drawn; doctor verifies the file; reproduce compares what runs now write."""
    runs = made.runs
    old_id, folder, manifest = _older_run(made)
    carried = {"share": '<svg id="carried"/>'}
    (folder / REPORT_CHARTS).write_text(json.dumps(carried))
    path = folder / REPORT_CHARTS
    manifest["artifacts"][REPORT_CHARTS] = {
        "sha256": sha256_file(path),
        "bytes": path.stat().st_size,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setattr(report, "report_svgs", _fail)
    exports = ExportService(runs)
    assert exports.report_svgs(old_id) == carried
    assert diagnose(runs.store, runs.artifacts).ok
    result = runs.reproduce(old_id)
    assert (result.identical, result.differing) == (True, [])
    exports.close()


def test_opening_a_run_draws_its_report_svgs_in_another_process(
    made: Made, draws: list[str]
) -> None:
    """The dashboard opening a run has its report SVGs drawn in a drawing process (vl-convert
    would hold this process's interpreter lock), so the report page finds them cached."""
    exports = ExportService(made.runs)
    web = WebViews(made.runs, SimulationService(made.runs), exports)
    web.overview_charts(web.documents(made.run_id))  # the dashboard opens the run
    cached = exports.root / made.run_id / "report-charts.2.json"
    deadline = time.monotonic() + 120
    while not cached.is_file() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cached.is_file()
    svgs = json.loads(cached.read_bytes())
    assert web.report_html(made.run_id).count("data:image/svg+xml;base64,") == len(svgs)
    assert draws == []  # nothing was drawn in this process
    k = len(made.runs.insights(made.run_id)["segments"])
    assert svgs == report.report_svgs(exports.charts(made.run_id), k)  # as drawn here
    exports.close()


def test_an_unreadable_or_outdated_cache_is_drawn_again(made: Made, draws: list[str]) -> None:
    exports = ExportService(made.runs)
    folder = exports.root / made.run_id
    folder.mkdir(parents=True)
    (folder / "report-charts.1.json").write_text("{}")  # an earlier layout's
    (folder / "report-charts.2.json").write_bytes(b'{"share": "<svg')  # cut short
    svgs = exports.report_svgs(made.run_id)
    assert svgs["share"].startswith("<svg") and len(draws) == 1
    assert sorted(p.name for p in folder.iterdir()) == ["report-charts.2.json"]
    assert json.loads((folder / "report-charts.2.json").read_bytes()) == svgs
    exports.close()


def test_a_run_deleted_while_its_svgs_are_drawn_leaves_no_folder(
    made: Made, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = made.runs
    old_id, _, _ = _older_run(made)
    exports = ExportService(runs)
    draw = report.report_svgs

    def deleted_meanwhile(specs: dict[str, Any], k: int) -> dict[str, str]:
        drawn = draw(specs, k)
        runs.delete_run(old_id)
        exports.purge(old_id)
        return drawn

    monkeypatch.setattr(report, "report_svgs", deleted_meanwhile)
    with pytest.raises(NotFound):
        exports.report_svgs(old_id)
    assert not (exports.root / old_id).exists()
    exports.close()


def test_without_a_drawing_process_the_svgs_are_drawn_here(
    made: Made, draws: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_children(method: str) -> Any:
        raise OSError("no processes here")

    monkeypatch.setattr(multiprocessing, "get_context", no_children)
    exports = ExportService(made.runs)
    svgs = exports.report_svgs(made.run_id, elsewhere=True)
    assert len(draws) == 1 and svgs["share"].startswith("<svg")
    exports.close()
