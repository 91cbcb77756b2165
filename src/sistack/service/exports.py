"""Export use cases: the files people download (PDF report, workbook, CSV, Parquet, JSON).

Every export is a pure function of an immutable run, so each is built once and cached under
``<home>/exports/<run_id>/``; a file is written to a temporary name and renamed into place, so a
reader never sees half of one. The report and the workbook also show the run's saved scenarios,
which can change: their cache key includes a hash of the saved scenario ids, so saving (or
deleting) a scenario makes the next request build a new file instead of serving a stale one.

Exports are looked up by name in :data:`REGISTRY`; a name that is not there is never turned
into a path, and a new format is one :func:`register` call.

A format marked ``background`` (the workbook: the whole customer list, about ten seconds per
million customers) is never built inside a request: :meth:`ExportService.prepare` starts the
build on a background thread and answers with its progress until the file is there. The CLI
(:meth:`ExportService.export`) builds synchronously. Builds are tracked per process: with
``serve --workers N`` two processes asked for the same workbook may both build it (the file is
renamed into place atomically, so the second build only costs time). Chart specs are never built
here for a run that carries them (the run wrote them: :mod:`sistack.io.exports.prebuilt`); the
report's SVGs are drawn from them once per run and cached like an export.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from sistack.errors import NotFound, SistackError, StorageError
from sistack.io.exports import neutralise, profiles_frame, write_frame
from sistack.io.exports.prebuilt import CHARTS, REPORT_CHARTS
from sistack.io.exports.xlsx import write_workbook
from sistack.io.store.artifacts import valid_id, write_atomically
from sistack.io.store.metadata import RunRecord
from sistack.service.report_charts import ReportCharts
from sistack.service.runs import RunService
from sistack.service.simulation import SimulationService

log = logging.getLogger("sistack.exports")
# Bump when the content of an export changes, so files cached by an older version are rebuilt.
LAYOUT_VERSION = "2"
RETRY_AFTER_SECONDS = 2
KEY_FEATURES = ("recency_days", "frequency", "monetary", "avg_order_value", "tenure_days")


class ExportUnavailable(SistackError):
    """This server cannot make the export (a component is missing); HTTP 503."""

    code = "export_unavailable"
    status = 503


@dataclass(frozen=True)
class ExportFormat:
    """A downloadable export: its name (also the file name), media type and builder.

    ``build(service, run_id, path, progress)`` writes the export of a finished run to
    ``path``, calling ``progress(fraction)`` now and then; ``uses_scenarios`` marks exports
    that show the run's saved scenarios; ``background`` those that the API builds on a
    background thread (too slow for a request on a large run).
    """

    name: str
    media_type: str
    build: Callable[[ExportService, str, Path, Progress], None]
    uses_scenarios: bool = False
    background: bool = False

    @property
    def stem(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def suffix(self) -> str:
        return "." + self.name.split(".", 1)[1]


Progress = Callable[[float], None]


def _no_progress(fraction: float) -> None:
    """Progress nobody watches (a synchronous build)."""


class ExportCancelled(SistackError):
    """The server is shutting down; a background build stopped part way (nothing was kept)."""

    code = "export_cancelled"
    status = 503


@dataclass
class _Job:
    """A background build: its future and how far it got (0..1)."""

    future: Future[None]
    started: float
    progress: float = 0.0


@dataclass(frozen=True)
class ExportStatus:
    """A background export that is not ready yet: how far its build is."""

    run_id: str
    name: str
    status: str
    progress: float
    elapsed_seconds: float
    retry_after: int = RETRY_AFTER_SECONDS


@dataclass(frozen=True)
class ExportFile:
    """A built export: where it is, its media type and the file name to download it as."""

    path: Path
    media_type: str
    filename: str


REGISTRY: dict[str, ExportFormat] = {}


def register(fmt: ExportFormat) -> ExportFormat:
    REGISTRY[fmt.name] = fmt
    return fmt


def run_info(record: RunRecord) -> dict[str, Any]:
    """The run's record as plain values (what the report and workbook print about the run)."""
    return {
        "id": record.id,
        "name": record.name,
        "status": record.status,
        "dataset_id": record.dataset_id,
        "parent_id": record.parent_id,
        "n_customers": record.n_customers,
        "k": record.k,
        "created_at": record.created_at.isoformat(),
        "finished_at": record.finished_at.isoformat() if record.finished_at else None,
    }


def _link_or_copy(source: Path, target: Path) -> None:
    """Place a copy of an immutable artifact: a hard link when possible (no extra disk)."""
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


class ExportService:
    """Builds and caches the exports of the runs of a :class:`RunService`."""

    def __init__(self, runs: RunService, *, simulation: SimulationService | None = None) -> None:
        self.runs = runs
        self.simulation = simulation or SimulationService(runs)
        self.root = runs.settings.exports_dir
        self._locks: dict[Path, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._jobs: dict[Path, _Job] = {}
        self._jobs_guard = threading.Lock()
        # One build at a time: a build keeps a core busy, requests need the other one. (The
        # executor starts its thread on first use; views made by ``copy`` share it.)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="sistack-export")
        self._closing = threading.Event()
        self._report_charts = ReportCharts(self.root, LAYOUT_VERSION, self._lock)

    def scoped(self, workspace: str) -> ExportService:
        """This service limited to one workspace (see :meth:`RunService.scoped`); the cached
        files and their locks are shared, and served only after the run is found there."""
        view = copy.copy(self)
        view.simulation = self.simulation.scoped(workspace)
        view.runs = view.simulation.runs
        return view

    @staticmethod
    def names() -> list[str]:
        return sorted(REGISTRY)

    @staticmethod
    def format(name: str) -> ExportFormat:
        """The registered export called ``name`` (404 listing the allowed names otherwise)."""
        fmt = REGISTRY.get(name)
        if fmt is None:
            shown = name[:60].encode("unicode_escape").decode()
            allowed = sorted(REGISTRY)
            raise NotFound(
                f"There is no export '{shown}'; use one of {', '.join(allowed)}.",
                code="unknown_export",
                details={"allowed": allowed},
            )
        return fmt

    def _target(self, run_id: str, name: str) -> tuple[ExportFormat, Path, ExportFile]:
        fmt = self.format(name)
        self.runs.finished(run_id)
        path = self.root / run_id / f"{fmt.stem}.{self._key(run_id, fmt)}{fmt.suffix}"
        return fmt, path, ExportFile(path, fmt.media_type, f"{run_id}-{name}")

    def export(self, run_id: str, name: str) -> ExportFile:
        """The export ``name`` of a finished run, built now (if not cached) and cached."""
        fmt, path, file = self._target(run_id, name)
        if not path.is_file():
            job = self._jobs.get(path)
            if job is not None:  # a background build of the same file: wait for it
                job.future.result()
            with self._lock(path):
                if not path.is_file():  # another request may have built it meanwhile
                    self._build(fmt, run_id, path, _no_progress)
        return file

    def prepare(self, run_id: str, name: str) -> ExportFile | ExportStatus:
        """The export if it is built; otherwise start building it in the background (once) and
        return its progress. Formats that are not ``background`` are built at once.

        A background build that failed raises its error here once (the API answers it); the
        next call starts a new build.
        """
        fmt, path, file = self._target(run_id, name)
        if not fmt.background:
            return self.export(run_id, name)
        with self._jobs_guard:  # never the file's lock: a build holds that one for its duration
            job = self._jobs.get(path)
            if job is not None and job.future.done():
                del self._jobs[path]
                job.future.result()  # raises the build's error
                job = None
            if path.is_file():
                return file
            if job is None:
                job = self._start(fmt, run_id, path)
        return self._status(run_id, name, job)

    @staticmethod
    def _status(run_id: str, name: str, job: _Job) -> ExportStatus:
        elapsed = time.monotonic() - job.started
        return ExportStatus(run_id, name, "building", round(job.progress, 3), round(elapsed, 1))

    def _start(self, fmt: ExportFormat, run_id: str, path: Path) -> _Job:
        holder: list[_Job] = []

        def progress(fraction: float) -> None:
            if self._closing.is_set():
                raise ExportCancelled("The server is shutting down; ask for the export again.")
            if holder:
                holder[0].progress = max(0.0, min(1.0, fraction))

        def build() -> None:
            try:
                with self._lock(path):
                    if not path.is_file():
                        self._build(fmt, run_id, path, progress)
            except Exception:
                log.exception("export %s of run %s failed", fmt.name, run_id)
                raise

        job = _Job(future=Future(), started=time.monotonic())
        holder.append(job)
        self._jobs[path] = job
        job.future = self._pool.submit(build)
        return job

    def close(self) -> None:
        """Stop background builds (at shutdown): a running one stops at its next progress."""
        self._closing.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._report_charts.close()

    def copy_to(self, run_id: str, name: str, target: Path) -> ExportFile:
        """Build (or reuse) an export and copy it to ``target`` (the CLI's ``-o FILE``)."""
        built = self.export(run_id, name)
        shutil.copyfile(built.path, target)
        return built

    def _key(self, run_id: str, fmt: ExportFormat) -> str:
        parts = [LAYOUT_VERSION]
        if fmt.uses_scenarios:
            parts += [s.id for s in self.simulation.saved(run_id)]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

    def _lock(self, path: Path) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(path, threading.Lock())

    def _build(self, fmt: ExportFormat, run_id: str, path: Path, progress: Progress) -> None:
        write_atomically(path, lambda tmp: fmt.build(self, run_id, tmp, progress))
        for old in path.parent.glob(f"{fmt.stem}.*{fmt.suffix}"):
            if old != path:  # built for an earlier set of saved scenarios or an older layout
                old.unlink(missing_ok=True)

    def purge(self, run_id: str) -> None:
        """Remove a run's cached exports (when the run is deleted)."""
        if valid_id(run_id):
            shutil.rmtree(self.root / run_id, ignore_errors=True)

    # Inputs -----------------------------------------------------------------------------------
    def scenarios(self, run_id: str) -> list[dict[str, Any]]:
        """The run's saved scenarios, each simulated (or with the reason it could not be)."""
        out = []
        for record in self.simulation.saved(run_id):
            item: dict[str, Any] = {
                "id": record.id,
                "name": record.name,
                "created_at": record.created_at.isoformat(),
                "body": record.body,
            }
            try:
                item["result"] = self.simulation.simulate(run_id, record.body)
            except SistackError as exc:
                item["error"] = f"Could not be simulated on this run: {exc.message}"
            out.append(item)
        return out

    def customers(self, run_id: str) -> pl.LazyFrame:
        """One row per customer: id, segment, persona, key features, response, 12-month value.

        ``scores.parquet`` and ``features.parquet`` are written by the pipeline from the same
        feature table in the same row order, so they are read side by side (a horizontal concat
        streams both files) rather than joined (a join would hash a whole side in memory).
        """
        art = self.runs.artifacts
        scores = pl.scan_parquet(art.path(run_id, "scores.parquet"))
        features = pl.scan_parquet(art.path(run_id, "features.parquet"))
        counts = [int(f.select(pl.len()).collect().item()) for f in (scores, features)]
        if counts[0] != counts[1]:
            raise StorageError(
                f"Run '{run_id}' has {counts[0]:,} scored customers but {counts[1]:,} feature "
                "rows; its artifacts are inconsistent.",
                code="artifacts_inconsistent",
            )
        present = set(features.collect_schema().names())
        personas = {
            s["segment"]: s["persona"]["name"] for s in self.runs.insights(run_id)["segments"]
        }
        persona = pl.col("segment").replace_strict(personas, default=None, return_dtype=pl.String)
        return pl.concat(
            [
                scores.select("customer_id", "segment", persona.alias("persona")),
                features.select([f for f in KEY_FEATURES if f in present]),
                scores.select("deal_share", "response_probability", "value_12m"),
            ],
            how="horizontal",
        )

    # Charts ---------------------------------------------------------------------------------
    def charts(self, run_id: str) -> dict[str, dict[str, Any]]:
        """Every chart spec of a finished run (``charts.json``, written with the run).

        A run made before charts were stored gets them drawn now, from its stored files.
        """
        if self._stored(run_id, CHARTS):
            specs: dict[str, dict[str, Any]] = self.runs.artifacts.read_json(run_id, CHARTS)
            return specs
        from sistack.io.exports.charts import run_charts
        from sistack.io.exports.report import read_projection_sample

        runs, art = self.runs, self.runs.artifacts
        projection = read_projection_sample(
            art.path(run_id, "features.parquet"), art.path(run_id, "assignments.parquet")
        )
        return run_charts(
            profiles=runs.profiles(run_id),
            insights=runs.insights(run_id),
            model=runs.model(run_id),
            projection=projection,
        )

    def report_svgs(self, run_id: str, *, elsewhere: bool = False) -> dict[str, str]:
        """The SVG of each chart the report prints: drawn from the run's specs on first use
        and cached with its exports (see :mod:`sistack.service.report_charts`); a run written
        by an earlier version carries them (``report-charts.json``)."""
        if self._stored(run_id, REPORT_CHARTS):
            svgs: dict[str, str] = self.runs.artifacts.read_json(run_id, REPORT_CHARTS)
            return svgs
        self.runs.finished(run_id)

        def specs() -> tuple[dict[str, dict[str, Any]], int]:
            return self.charts(run_id), len(self.runs.insights(run_id)["segments"])

        return self._report_charts.get(
            run_id, specs, lambda: self.runs.finished(run_id), elsewhere=elsewhere
        )

    def draw_report_svgs_soon(self, run_id: str) -> None:
        """Draw the report's SVGs in the drawing process, queued on the build thread, unless
        they are there: the report page or PDF opened next need not wait for them (pages call
        this when they first load a run)."""
        if self._stored(run_id, REPORT_CHARTS):
            return
        self._report_charts.draw_soon(
            run_id, self._pool, lambda: self.report_svgs(run_id, elsewhere=True)
        )

    def _stored(self, run_id: str, name: str) -> bool:
        return name in self.runs.manifest(run_id).get("artifacts", {})

    # Builders, one per export -----------------------------------------------------------------
    def report_pdf(self, run_id: str, path: Path, progress: Progress = _no_progress) -> None:
        """The executive PDF: the report page, printed, with the run's charts as SVG."""
        try:  # the report needs WeasyPrint, which needs system libraries (Pango)
            from sistack.io.exports.pdf import html_to_pdf
            from sistack.io.exports.report import render_report_html
        except (ImportError, OSError) as exc:
            raise ExportUnavailable(
                f"The PDF report cannot be made on this server ({exc}); the other exports work.",
                details={"reason": str(exc)},
            ) from exc
        runs = self.runs
        html = render_report_html(
            run=run_info(runs.finished(run_id)),
            manifest=runs.manifest(run_id),
            profiles=runs.profiles(run_id),
            insights=runs.insights(run_id),
            quality=runs.quality(run_id),
            model=runs.model(run_id),
            # The report prints simulated numbers; a scenario that no longer simulates is listed
            # in the workbook, with the reason.
            scenarios=[sc for sc in self.scenarios(run_id) if "result" in sc],
            charts_svg=self.report_svgs(run_id),
            for_pdf=True,
        )
        progress(0.2)
        path.write_bytes(html_to_pdf(html))

    def workbook_xlsx(self, run_id: str, path: Path, progress: Progress = _no_progress) -> None:
        runs = self.runs
        write_workbook(
            path,
            run=run_info(runs.finished(run_id)),
            manifest=runs.manifest(run_id),
            profiles=runs.profiles(run_id),
            insights=runs.insights(run_id),
            quality=runs.quality(run_id),
            scenarios=self.scenarios(run_id),
            customers=self.customers(run_id),
            progress=progress,
        )

    def assignments_csv(self, run_id: str, path: Path, progress: Progress = _no_progress) -> None:
        """Streamed from Parquet to CSV; formula-like ids neutralised like every CSV export."""
        neutralise(pl.scan_parquet(self.runs.assignments_path(run_id))).sink_csv(path)

    def assignments_parquet(
        self, run_id: str, path: Path, progress: Progress = _no_progress
    ) -> None:
        _link_or_copy(self.runs.assignments_path(run_id), path)

    def profiles_csv(self, run_id: str, path: Path, progress: Progress = _no_progress) -> None:
        write_frame(profiles_frame(self.runs.profiles(run_id)), path)

    def manifest_json(self, run_id: str, path: Path, progress: Progress = _no_progress) -> None:
        """The stored manifest byte for byte (its own sha256 is what an auditor checks)."""
        self.runs.finished(run_id)
        _link_or_copy(self.runs.artifacts.path(run_id, "manifest.json"), path)


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PARQUET = "application/vnd.apache.parquet"
register(ExportFormat("report.pdf", "application/pdf", ExportService.report_pdf, True))
register(ExportFormat("workbook.xlsx", XLSX, ExportService.workbook_xlsx, True, background=True))
register(ExportFormat("assignments.csv", "text/csv", ExportService.assignments_csv))
register(ExportFormat("assignments.parquet", PARQUET, ExportService.assignments_parquet))
register(ExportFormat("profiles.csv", "text/csv", ExportService.profiles_csv))
register(ExportFormat("manifest.json", "application/json", ExportService.manifest_json))
