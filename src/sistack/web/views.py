"""What the pages show, gathered from the same use cases the API calls.

A page never computes a business number: it reads the run's documents through
:class:`~sistack.service.runs.RunService` (as ``GET /api/v1/runs/{id}/...`` does) and formats
them. Chart specs and the report's SVGs are built once per run and kept (runs are immutable), so
a dashboard request reads two small JSON documents and nothing else.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import Request

from sistack.api.deps import principal
from sistack.api.schemas import RunOut
from sistack.io.exports.charts import segment_colors
from sistack.io.exports.report import render_report_html
from sistack.service.exports import ExportService, run_info
from sistack.service.runs import RunService
from sistack.service.simulation import SimulationService

CACHED_RUNS = 32
T = TypeVar("T")


@dataclass(frozen=True)
class RunDocuments:
    """A finished run's documents, as ``GET /api/v1/runs/{id}/{manifest,...}`` returns them."""

    run: RunOut
    manifest: dict[str, Any]
    profiles: dict[str, Any]
    insights: dict[str, Any]
    quality: dict[str, Any]
    model: dict[str, Any]

    @property
    def segments(self) -> list[dict[str, Any]]:
        return list(self.insights["segments"])

    @property
    def colors(self) -> dict[int, str]:
        """Segment id -> its colour (the same in every chart, card and table)."""
        ids = [s["segment"] for s in self.segments]
        return dict(zip(ids, segment_colors(len(ids)), strict=True))


class _Cache:
    """A small least-recently-used cache of per-run values (thread-safe)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str], build: Callable[[], T]) -> T:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                cached: T = self._items[key]
                return cached
        value = build()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value


class WebViews:
    """The data of the web pages, over the app's services."""

    def __init__(
        self, runs: RunService, simulation: SimulationService, exports: ExportService
    ) -> None:
        self.runs = runs
        self.simulation = simulation
        self.exports = exports
        self._cache = _Cache(CACHED_RUNS * 3)

    def scoped(self, workspace: str) -> WebViews:
        """These views limited to one workspace; the per-run cache is shared and read only
        after the run was found in the workspace."""
        view = copy.copy(self)
        view.exports = self.exports.scoped(workspace)
        view.simulation = view.exports.simulation
        view.runs = view.simulation.runs
        return view

    def run(self, run_id: str) -> RunOut:
        return RunOut.of(self.runs.get_run(run_id))

    def filename(self, dataset_id: str) -> str | None:
        dataset = self.runs.store.get_dataset(dataset_id)
        return dataset.filename if dataset else None

    def documents(self, run_id: str) -> RunDocuments:
        record = self.runs.finished(run_id)
        return RunDocuments(
            run=RunOut.of(record),
            manifest=self.runs.manifest(run_id),
            profiles=self.runs.profiles(run_id),
            insights=self.runs.insights(run_id),
            quality=self.runs.quality(run_id),
            model=self.runs.model(run_id),
        )

    def charts(self, docs: RunDocuments) -> dict[str, dict[str, Any]]:
        """Every chart spec of the run (see :func:`~sistack.io.exports.charts.run_charts`)."""

        run_id = docs.run.id

        def first_load() -> dict[str, dict[str, Any]]:
            # Whoever opens a run may open its report next: draw the report's SVGs meanwhile.
            self.exports.draw_report_svgs_soon(run_id)
            return self.exports.charts(run_id)

        return self._cache.get((run_id, "charts"), first_load)

    def comparison(self, run_id: str, other_id: str) -> dict[str, Any]:
        """``GET /api/v1/runs/{run_id}/compare/{other_id}``, kept: both runs are immutable."""
        self.runs.finished(run_id)
        if other_id != "parent":
            self.runs.finished(other_id)  # both must be in the caller's workspace
        return self._cache.get(
            (run_id, f"compare:{other_id}"), lambda: self.runs.compare(run_id, other_id)
        )

    def overview_charts(self, docs: RunDocuments) -> dict[str, dict[str, Any]]:
        """The overview's one chart (from the run's stored chart specs)."""
        return {"share": self.charts(docs)["share"]}

    def report_html(self, run_id: str) -> str:
        """The report page: the document the PDF export prints (same inputs as
        :meth:`ExportService.report_pdf`), plus its screen toolbar."""
        docs = self.documents(run_id)
        svgs = self._cache.get((run_id, "svgs"), lambda: self.exports.report_svgs(run_id))
        scenarios = [s for s in self.exports.scenarios(run_id) if "result" in s]
        return render_report_html(
            run=run_info(self.runs.finished(run_id)),
            manifest=docs.manifest,
            profiles=docs.profiles,
            insights=docs.insights,
            quality=docs.quality,
            model=docs.model,
            scenarios=scenarios,
            charts_svg=svgs,
            for_pdf=False,
        )


def views(request: Request) -> WebViews:
    """The app's :class:`WebViews` (made on first use from the services the API uses), limited
    to the workspace of the request's principal."""
    state = request.app.state
    found: WebViews | None = getattr(state, "web_views", None)
    if found is None:
        found = state.web_views = WebViews(state.service, state.simulation, state.exports)
    return found.scoped(principal(request).workspace)


# Pixels around a chart's plotting area (axes, legends, titles), measured in Chromium; a chart
# not listed has one axis with a title below it.
CHROME = {"share": 125, "channels": 88, "discount": 88, "features": 156, "migration": 60}
CHROME_BY_PREFIX = {"channels_": 57, "profile_": 45}
DEFAULT_CHROME = 50


def reserved_height(name: str, spec: dict[str, Any]) -> int:
    """Pixels to reserve for a chart before it draws, so the page does not move when it does.

    A fixed ``height`` is used as is; a step height (one band per category) is multiplied by
    the number of bands (y categories, times the y-offset categories of grouped bars).
    """
    height = spec.get("height", 200)
    if isinstance(height, dict):
        encoding = spec.get("encoding") or (spec.get("layer") or [{}])[0].get("encoding", {})
        rows: list[dict[str, Any]] = next(iter(spec.get("datasets", {}).values()), [])
        bands = 1
        for channel in ("y", "yOffset"):
            field = (encoding.get(channel) or {}).get("field")
            if field:
                bands *= max(1, len({r.get(field) for r in rows}))
        height = height.get("step", 20) * bands
    prefix = next((p for p in CHROME_BY_PREFIX if name.startswith(p)), None)
    chrome = CHROME_BY_PREFIX[prefix] if prefix else CHROME.get(name, DEFAULT_CHROME)
    return int(height) + chrome
