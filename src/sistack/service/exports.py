"""Export use cases: the files people download (PDF report, workbook, CSV, Parquet, JSON).

Every export is a pure function of an immutable run, so each is built once and cached under
``<home>/exports/<run_id>/``; a file is written to a temporary name and renamed into place, so a
reader never sees half of one. The report and the workbook also show the run's saved scenarios,
which can change: their cache key includes a hash of the saved scenario ids, so saving (or
deleting) a scenario makes the next request build a new file instead of serving a stale one.

Exports are looked up by name in :data:`REGISTRY`; a name that is not there is never turned
into a path, and a new format is one :func:`register` call.
"""

from __future__ import annotations

import copy
import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from sistack.errors import NotFound, SistackError, StorageError
from sistack.io.exports import neutralise, profiles_frame, write_frame
from sistack.io.exports.xlsx import write_workbook
from sistack.io.store.artifacts import valid_id
from sistack.io.store.metadata import RunRecord
from sistack.service.runs import RunService
from sistack.service.simulation import SimulationService

# Bump when the content of an export changes, so files cached by an older version are rebuilt.
LAYOUT_VERSION = "1"
KEY_FEATURES = ("recency_days", "frequency", "monetary", "avg_order_value", "tenure_days")


class ExportUnavailable(SistackError):
    """This server cannot make the export (a component is missing); HTTP 503."""

    code = "export_unavailable"
    status = 503


@dataclass(frozen=True)
class ExportFormat:
    """A downloadable export: its name (also the file name), media type and builder.

    ``build(service, run_id, path)`` writes the export of a finished run to ``path``;
    ``uses_scenarios`` marks exports that show the run's saved scenarios.
    """

    name: str
    media_type: str
    build: Callable[[ExportService, str, Path], None]
    uses_scenarios: bool = False

    @property
    def stem(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def suffix(self) -> str:
        return "." + self.name.split(".", 1)[1]


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

    def export(self, run_id: str, name: str) -> ExportFile:
        """The export ``name`` of a finished run, built on first request and cached."""
        fmt = REGISTRY.get(name)
        if fmt is None:
            shown = name[:60].encode("unicode_escape").decode()
            raise NotFound(
                f"There is no export '{shown}'; use one of {', '.join(self.names())}.",
                code="unknown_export",
                details={"allowed": self.names()},
            )
        self.runs.finished(run_id)
        path = self.root / run_id / f"{fmt.stem}.{self._key(run_id, fmt)}{fmt.suffix}"
        if not path.is_file():
            with self._lock(path):
                if not path.is_file():  # another request may have built it meanwhile
                    self._build(fmt, run_id, path)
        return ExportFile(path=path, media_type=fmt.media_type, filename=f"{run_id}-{name}")

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

    def _build(self, fmt: ExportFormat, run_id: str, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Same folder as the target (os.replace is atomic only within one file system); the
        # real suffix last, since some writers choose the format from it.
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{fmt.stem}.", suffix=fmt.suffix)
        os.close(fd)
        tmp = Path(name)
        tmp.chmod(0o644)  # mkstemp makes files private; an export is as readable as a run
        try:
            fmt.build(self, run_id, tmp)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
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

    # Builders, one per export -----------------------------------------------------------------
    def report_pdf(self, run_id: str, path: Path) -> None:
        """The executive PDF: the report page, printed, with its charts as SVG."""
        try:  # the report needs WeasyPrint and vl-convert, which need system libraries
            from sistack.io.exports.charts import run_charts
            from sistack.io.exports.pdf import html_to_pdf
            from sistack.io.exports.report import (
                read_projection_sample,
                render_report_html,
                report_svgs,
            )
        except (ImportError, OSError) as exc:
            raise ExportUnavailable(
                f"The PDF report cannot be made on this server ({exc}); the other exports work.",
                details={"reason": str(exc)},
            ) from exc
        runs, art = self.runs, self.runs.artifacts
        profiles, insights = runs.profiles(run_id), runs.insights(run_id)
        model = runs.model(run_id)
        projection = read_projection_sample(
            art.path(run_id, "features.parquet"), art.path(run_id, "assignments.parquet")
        )
        specs = run_charts(profiles=profiles, insights=insights, model=model, projection=projection)
        html = render_report_html(
            run=run_info(runs.finished(run_id)),
            manifest=runs.manifest(run_id),
            profiles=profiles,
            insights=insights,
            quality=runs.quality(run_id),
            model=model,
            # The report prints simulated numbers; a scenario that no longer simulates is listed
            # in the workbook, with the reason.
            scenarios=[sc for sc in self.scenarios(run_id) if "result" in sc],
            charts_svg=report_svgs(specs, len(insights["segments"])),
            for_pdf=True,
        )
        path.write_bytes(html_to_pdf(html))

    def workbook_xlsx(self, run_id: str, path: Path) -> None:
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
        )

    def assignments_csv(self, run_id: str, path: Path) -> None:
        """Streamed from Parquet to CSV; formula-like ids neutralised like every CSV export."""
        neutralise(pl.scan_parquet(self.runs.assignments_path(run_id))).sink_csv(path)

    def assignments_parquet(self, run_id: str, path: Path) -> None:
        _link_or_copy(self.runs.assignments_path(run_id), path)

    def profiles_csv(self, run_id: str, path: Path) -> None:
        write_frame(profiles_frame(self.runs.profiles(run_id)), path)

    def manifest_json(self, run_id: str, path: Path) -> None:
        """The stored manifest byte for byte (its own sha256 is what an auditor checks)."""
        self.runs.finished(run_id)
        _link_or_copy(self.runs.artifacts.path(run_id, "manifest.json"), path)


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PARQUET = "application/vnd.apache.parquet"
register(ExportFormat("report.pdf", "application/pdf", ExportService.report_pdf, True))
register(ExportFormat("workbook.xlsx", XLSX, ExportService.workbook_xlsx, True))
register(ExportFormat("assignments.csv", "text/csv", ExportService.assignments_csv))
register(ExportFormat("assignments.parquet", PARQUET, ExportService.assignments_parquet))
register(ExportFormat("profiles.csv", "text/csv", ExportService.profiles_csv))
register(ExportFormat("manifest.json", "application/json", ExportService.manifest_json))
