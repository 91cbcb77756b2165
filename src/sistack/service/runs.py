"""Use cases on datasets and runs: register, run, reproduce, score, list, delete.

Entry points (CLI, API) call these and nothing below them. A run is written once: artifacts go
to a staging directory that is renamed into place, then the metadata row is marked succeeded.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import platform
import re
import shutil
import threading
import traceback
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import ValidationError
from threadpoolctl import threadpool_limits
from ulid import ULID

from sistack import __version__
from sistack.config import Settings
from sistack.domain.insights.compare import DEFINITIONS as COMPARE_DEFINITIONS
from sistack.domain.insights.compare import compare_runs
from sistack.domain.profiles import SegmentProfile
from sistack.domain.schema import (
    TRANSACTIONS,
    ColumnMapping,
    RoleInfo,
    detect_mapping,
    require_roles,
    role_catalogue,
)
from sistack.domain.segmentation.scoring import score_table
from sistack.engines import check_engine
from sistack.errors import Conflict, InputError, NotFound, SistackError, StorageError
from sistack.io.parts import (
    combined_sha256,
    link_parts,
    part_files,
    parts_changed,
    sha256_path,
    size_of,
)
from sistack.io.readers import RawTable, ReadLimits, ReadWarning, read_table
from sistack.io.store.artifacts import ArtifactStore, dump_json, sha256_file, valid_id
from sistack.io.store.metadata import (
    DEFAULT_WORKSPACE,
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    DatasetRecord,
    MetadataStore,
    RunRecord,
)
from sistack.service.pipeline import PipelineResult, RunConfig, prepare, run_pipeline
from sistack.service.queue import Heartbeat, utcnow, worker_id

log = logging.getLogger("sistack.runs")

PACKAGES = ("polars", "numpy", "scikit-learn", "scipy", "pyarrow", "python-calamine", "pyspark")
COMPARED = (
    "features.parquet",
    "assignments.parquet",
    "model.json",
    "profiles.json",
    "quality.json",
    "insights.json",
    "scores.parquet",
    "charts.json",
)  # a run of an earlier version may also hold report-charts.json (doctor verifies it)
UPLOAD_NAME = "upload.bin"
PARTS_NAME = "parts"  # a dataset Spark wrote: a directory of Parquet part files (io.parts)


now = utcnow  # the one clock of the service layer (metadata timestamps only)


_last_id = [0]
_id_lock = threading.Lock()


def new_id() -> str:
    """A time-sortable unique id (ULID), strictly increasing within this process (two ids made in
    the same millisecond still sort in creation order)."""
    with _id_lock:
        value = max(int(ULID()), _last_id[0] + 1)
        _last_id[0] = value
        return str(ULID.from_int(value))


def clean_filename(name: str | None) -> str:
    """A display-only version of a user's file name: no path, no control characters, short."""
    if not name:
        return "upload"
    base = re.split(r"[\\/]", name.replace("\x00", ""))[-1]
    base = re.sub(r"[\x00-\x1f\x7f]", "", base).strip() or "upload"
    return base[:120]


@dataclass(frozen=True)
class Inspection:
    """What a file looks like to us: format, detected shape and mapping, a preview."""

    raw: RawTable
    mapping: ColumnMapping

    def to_dict(self, *, preview_rows: int = 10) -> dict[str, Any]:
        frame = self.raw.frame
        preview = frame.head(preview_rows).cast(pl.String).to_dicts()
        source = self.raw.source  # a file scanned lazily: its counts come from the full pass
        nulls = (
            source.null_counts
            if source is not None
            else tuple(frame.get_column(c).null_count() for c in frame.columns)
        )
        missing = {column: n for column, n in zip(frame.columns, nulls, strict=True) if n}
        return {
            "format": self.raw.format,
            "delimiter": self.raw.delimiter,
            "encoding": self.raw.encoding,
            "rows": self.raw.height,
            "columns": frame.columns,
            "warnings": [{"code": w.code, "message": w.message} for w in self.raw.warnings],
            "mapping": self.mapping.to_dict(),
            "notes": list(self.mapping.notes),
            "preview": preview,
            "missing_values": missing,
        }


@dataclass(frozen=True)
class ReproduceResult:
    run_id: str
    new_run_id: str
    identical: bool
    differing: list[str]


class RunService:
    """The product's use cases over one metadata store and one artifact root."""

    def __init__(self, settings: Settings) -> None:
        # One OpenMP and one BLAS thread for the whole process: k-means adds per-thread partial
        # sums in whatever order threads finish, so more threads would change the last bits of
        # a run's results. BLAS threads also cost far more than they give on the small
        # matrices k-means++ and the distance blocks multiply (measured: KMeans on 20,000 x 15
        # took 0.41 s of CPU with two OpenBLAS threads, 0.036 s with one). Parallelism comes
        # from our own threads over independent work instead (candidate k values, the
        # response model beside the segmentation, artifact writes).
        threadpool_limits(limits=1)
        self.settings = settings
        self.store = MetadataStore(settings.db_url)
        self.artifacts = ArtifactStore(settings.artifacts)
        self.limits = ReadLimits.from_settings(settings)
        # Shared by every scoped view (a shallow copy): bounds files held in memory at once.
        self._reads = threading.BoundedSemaphore(settings.concurrent_reads)
        # Who claims runs this process executes itself (CLI runs, inline jobs, reproduce).
        self.worker_id = worker_id()
        # None: every workspace (the CLI, workers, background jobs); see ``scoped``.
        self.workspace: str | None = None

    def scoped(self, workspace: str) -> RunService:
        """A view of this service limited to one workspace (an API key's, a web session's).

        It shares the store, the artifacts and every cache; a dataset, run or scenario of
        another workspace is answered exactly like an id that does not exist.
        """
        view = copy.copy(self)
        view.workspace = workspace
        return view

    @property
    def owner(self) -> str:
        """The workspace new datasets of this view belong to."""
        return self.workspace or DEFAULT_WORKSPACE

    def close(self) -> None:
        self.store.close()

    def recover(self) -> tuple[list[str], list[str]]:
        """At start-up of the process that owns every run (inline execution): runs a dead
        process left running are failed as interrupted and staging leftovers removed. Returns
        those ids and the queued runs, oldest first, which never started and can simply run."""
        self.artifacts.clean_staging()
        return self.store.mark_interrupted(now=now()), self.store.queued_ids()

    # Datasets ---------------------------------------------------------------------------------
    def inspect(
        self, path: Path, *, filename: str | None = None, shape: str | None = None
    ) -> Inspection:
        with self._reads:
            return self._inspect(path, filename=filename, shape=shape)

    def _inspect(self, path: Path, *, filename: str | None, shape: str | None) -> Inspection:
        raw = read_table(path, limits=self.limits, filename=filename)
        return Inspection(raw=raw, mapping=detect_mapping(raw.frame, shape=shape))

    def add_dataset(
        self,
        path: Path,
        *,
        filename: str | None = None,
        keep: bool = True,
        shape: str | None = None,
    ) -> tuple[DatasetRecord, Inspection]:
        """Read and register a file. ``keep`` moves it under the home (uploads); otherwise the
        dataset points at the caller's file (the CLI).

        At most ``settings.concurrent_reads`` files are read and registered at once per
        process; further uploads wait here, so memory does not grow with their number.
        """
        with self._reads:
            return self._add_dataset(path, filename=filename, keep=keep, shape=shape)

    def _add_dataset(
        self, path: Path, *, filename: str | None, keep: bool, shape: str | None
    ) -> tuple[DatasetRecord, Inspection]:
        # The file is hashed on a second thread while it is read (hashlib and the readers
        # release the interpreter on large blocks).
        with ThreadPoolExecutor(1) as hasher:
            digest = hasher.submit(sha256_path, path)
            inspection = self._inspect(path, filename=filename or path.name, shape=shape)
            sha256 = digest.result()
        dataset_id = new_id()
        stored = path.resolve()
        if keep:
            folder = self.settings.datasets_dir / dataset_id
            folder.mkdir(parents=True, exist_ok=True)
            stored = folder / (PARTS_NAME if path.is_dir() else UPLOAD_NAME)
            shutil.move(str(path), stored)
        info = inspection.to_dict(preview_rows=0)
        info.pop("preview")
        info["path"] = str(stored)
        record = DatasetRecord(
            id=dataset_id,
            filename=clean_filename(filename or path.name),
            sha256=sha256,
            size_bytes=size_of(stored),
            format=inspection.raw.format,
            shape=inspection.mapping.shape,
            n_rows=inspection.raw.height,
            n_columns=inspection.raw.frame.width,
            info=info,
            created_at=now(),
            workspace=self.owner,
        )
        self.store.add_dataset(record)
        return record, inspection

    def _load(self, dataset: DatasetRecord) -> RawTable:
        path = Path(dataset.info["path"])
        if not path.exists():
            raise NotFound(
                f"The file of dataset '{dataset.id}' is no longer at {path}.",
                code="dataset_file_missing",
            )
        return read_table(path, limits=self.limits, filename=dataset.filename)

    # Runs -------------------------------------------------------------------------------------
    def create_run(
        self,
        dataset_id: str,
        *,
        config: RunConfig | None = None,
        mapping: dict[str, Any] | None = None,
        name: str | None = None,
        parent_id: str | None = None,
        hold: bool = False,
    ) -> RunRecord:
        """Queue a run of a dataset; the mapping is validated now so errors come back at once.

        ``hold`` creates the run already claimed by this process (the caller executes it at
        once), so a queue worker polling the same database cannot take it first.
        """
        dataset = (
            self.store.get_dataset(dataset_id, workspace=self.workspace)
            if valid_id(dataset_id)
            else None
        )
        if dataset is None:
            raise NotFound(f"Dataset '{dataset_id[:40]}' does not exist.", code="dataset_not_found")
        columns = dataset.info["columns"]
        chosen = ColumnMapping.from_dict(mapping or dataset.info["mapping"], columns=columns)
        require_roles(chosen)
        if parent_id is not None:
            self.get_run(parent_id)
        config = config or self.default_config()
        check_engine(config.engine)  # a missing engine is the caller's to fix: say so now
        created = now()
        record = RunRecord(
            id=new_id(),
            dataset_id=dataset_id,
            parent_id=parent_id,
            name=(name or dataset.filename)[:255],
            status=RUNNING if hold else QUEUED,
            stage="claimed" if hold else "queued",
            progress=0,
            config={"run": config.model_dump(mode="json"), "mapping": chosen.to_dict()},
            error_code=None,
            error_message=None,
            n_customers=None,
            k=None,
            summary=None,
            created_at=created,
            started_at=created if hold else None,
            finished_at=None,
            claimed_by=self.worker_id if hold else None,
            heartbeat_at=created if hold else None,
            claims=1 if hold else 0,
            workspace=dataset.workspace,
        )
        self.store.add_run(record)
        return record

    @staticmethod
    def roles(shape: str | None = None) -> list[RoleInfo]:
        """The roles a column can be mapped to, with what each means and whether a mapping needs
        it (``GET /api/v1/roles``, and the mapping editor of the New analysis page)."""
        return role_catalogue(shape)

    def filenames(self, records: Iterable[RunRecord]) -> dict[str, str]:
        """Dataset id -> the cleaned original name of its file, for runs being shown."""
        out: dict[str, str] = {}
        for dataset_id in {r.dataset_id for r in records}:
            with contextlib.suppress(NotFound):  # a removed dataset: no file name shown
                out[dataset_id] = self.store.get_dataset(dataset_id).filename
        return out

    def default_config(self, **overrides: Any) -> RunConfig:
        s = self.settings
        values: dict[str, Any] = {
            "k_min": s.k_min,
            "k_max": s.k_max,
            "seed": s.seed,
            "selection_sample": s.selection_sample,
            "silhouette_sample": s.silhouette_sample,
            "fit_sample": s.fit_sample,
            "stability_resamples": s.stability_resamples,
            "stability_sample": s.stability_sample,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return RunConfig(**values)
        except ValidationError as exc:
            problems = "; ".join(
                (f"{'.'.join(str(p) for p in e['loc'])}: " if e["loc"] else "")
                + e["msg"].removeprefix("Value error, ")
                for e in exc.errors()
            )
            raise InputError(
                f"Invalid run options: {problems}.",
                code="invalid_option",
                details={"problems": [str(e["msg"]) for e in exc.errors()]},
            ) from exc

    def execute(
        self,
        run_id: str,
        *,
        raw: RawTable | None = None,
        progress: Callable[[str, int], None] | None = None,
        worker: str | None = None,
    ) -> RunRecord:
        """Run a run to completion (or failure). Never raises for a failed run.

        The run must be queued (it is claimed here for ``worker``, default this process) or
        already claimed by ``worker`` (a queue worker's claim, ``create_run(hold=True)``). A run
        claimed by someone else is refused. Every write is conditional on still holding the
        claim, so a run failed by a stale-heartbeat sweep is never overwritten.
        """
        worker = worker or self.worker_id
        record = self.get_run(run_id)
        mine = record.status == RUNNING and record.claimed_by == worker
        claimed = mine or (record.status == QUEUED and self.store.claim(run_id, worker, now=now()))
        if not claimed:
            state = self.get_run(run_id).status
            raise Conflict(f"Run '{run_id}' is {state}, not queued.", code="run_not_queued")
        with Heartbeat(self.store, run_id, worker, every=self.settings.heartbeat_seconds) as beat:
            return self._execute(record, worker, beat, raw=raw, progress=progress)

    def _execute(
        self,
        record: RunRecord,
        worker: str,
        beat: Heartbeat,
        *,
        raw: RawTable | None,
        progress: Callable[[str, int], None] | None,
    ) -> RunRecord:
        run_id = record.id
        self.store.update_claimed(run_id, worker, stage="read", progress=1)
        last = [-1]

        def report(stage: str, pct: int) -> None:
            if pct != last[0]:
                last[0] = pct
                self.store.update_claimed(run_id, worker, stage=stage, progress=pct)
            if progress is not None:
                progress(stage, pct)

        try:
            dataset = self.store.get_dataset(record.dataset_id)
            report("read", 2)
            table = raw if raw is not None else self._load(dataset)
            mapping = ColumnMapping.from_dict(record.config["mapping"], columns=table.frame.columns)
            config = RunConfig(**record.config["run"])
            with (
                self.artifacts.staging(run_id) as folder,
                ThreadPoolExecutor(1) as background,
                ThreadPoolExecutor(1) as writer,
            ):
                # The input snapshot does not depend on the results: write it while the
                # pipeline computes (polars writes without holding the GIL).
                snapshot = background.submit(
                    _snapshot, table, folder / "input.parquet", _registered_sha256(table, dataset)
                )
                _warm_charts()
                data = table.data()
                if _reread_snapshot(table, config):
                    # A text file too large to read whole is parsed once, into the snapshot;
                    # every later pass (column blocks, typing, counts) reads its Parquet
                    # columns instead of parsing the text again. Same rows, same order.
                    snapshot.result()
                    data = pl.scan_parquet(folder / "input.parquet")
                source = None
                if config.engine == "spark" and mapping.shape == TRANSACTIONS:
                    snapshot.result()  # Spark reads the transaction rows from the snapshot
                    source = folder / "input.parquet"
                # Result tables are written (and hashed) as soon as the pipeline has them, on
                # a writer thread, while it computes the rest.
                tables: list[Future[dict[str, str]]] = []

                def write_table(name: str, frame: pl.DataFrame) -> None:
                    tables.append(writer.submit(_write_parquet, frame, folder / f"{name}.parquet"))

                result = run_pipeline(
                    data, mapping, config, progress=report, on_table=write_table, source=source
                )
                read = [(w.code, w.message) for w in table.warnings]
                result = replace(result, quality=result.quality.with_warnings(read))
                report("write", 95)
                manifest = self._write(
                    folder, record, dataset, table, mapping, config, result, [snapshot, *tables]
                )
        except SistackError as exc:
            self._fail(run_id, worker, exc.code, exc.message)
            return self.get_run(run_id)
        except Exception as exc:
            log.error("run %s failed:\n%s", run_id, traceback.format_exc())
            self._fail(
                run_id, worker, "internal_error", f"Unexpected error: {exc.__class__.__name__}"
            )
            return self.get_run(run_id)
        summary = run_summary(result, manifest)
        held = not beat.lost and self.store.update_claimed(
            run_id,
            worker,
            status=SUCCEEDED,
            stage="done",
            progress=100,
            finished_at=now(),
            n_customers=result.assignments.height,
            k=result.model.n_segments_,
            summary=summary,
        )
        if not held:
            # Swept as interrupted (or re-queued) while we computed: the row no longer belongs
            # to us, so our files must not stay under its id.
            log.warning("run %s: claim lost before the end; its files are removed", run_id)
            self.artifacts.delete(run_id)
            return self.get_run(run_id)
        if progress is not None:
            progress("done", 100)
        return self.get_run(run_id)

    def _fail(self, run_id: str, worker: str, code: str, message: str) -> None:
        self.store.update_claimed(
            run_id, worker, status=FAILED, error_code=code, error_message=message, finished_at=now()
        )

    def _write(
        self,
        folder: Path,
        record: RunRecord,
        dataset: DatasetRecord,
        raw: RawTable,
        mapping: ColumnMapping,
        config: RunConfig,
        result: PipelineResult,
        tables: list[Future[dict[str, str]]],
    ) -> dict[str, Any]:
        """Write the run's documents into the staging folder and return the manifest.

        ``tables``: the writes of the table artifacts (input snapshot, features, assignments,
        scores) under way on other threads, each giving ``{name: sha256}``; the documents and
        charts are made meanwhile.
        """
        profiles = {
            "features": [
                {
                    "name": s.name,
                    "definition": s.definition,
                    "in_model": s.name in result.model_features,
                }
                for s in result.features.specs
            ],
            "profiles": [p.to_dict() for p in result.profiles],
        }
        documents = {
            "model.json": result.model_document(),
            "profiles.json": profiles,
            "quality.json": result.quality.to_dict(),
            "insights.json": result.insights.to_dict(),
        }
        documents.update(_charts(documents, result))
        for name, document in documents.items():
            (folder / name).write_bytes(dump_json(document))
        hashes = {name: sha for future in tables for name, sha in future.result().items()}
        if result.engine_artifacts is not None:  # e.g. Spark's partitioned assignments/
            result.engine_artifacts(folder)
        manifest = self._manifest(record, dataset, raw, mapping, config, result, folder, hashes)
        (folder / "manifest.json").write_bytes(dump_json(manifest))
        return manifest

    def _manifest(
        self,
        record: RunRecord,
        dataset: DatasetRecord,
        raw: RawTable,
        mapping: ColumnMapping,
        config: RunConfig,
        result: PipelineResult,
        folder: Path,
        hashes: dict[str, str],
    ) -> dict[str, Any]:
        # Files in sub-directories (an engine's partitioned artifacts) are listed by their
        # relative path, so sistack doctor verifies every part file. ``hashes``: the sha256 of
        # files hashed as they were written.
        artifacts = {}
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                name = path.relative_to(folder).as_posix()
                digest = hashes.get(name) or sha256_file(path)
                artifacts[name] = {"sha256": digest, "bytes": path.stat().st_size}
        return {
            "run_id": record.id,
            "parent_id": record.parent_id,
            "name": record.name,
            "created_at": record.created_at.isoformat(),
            "sistack_version": __version__,
            "input": {
                "dataset_id": dataset.id,
                "filename": dataset.filename,
                "sha256": dataset.sha256,
                "bytes": dataset.size_bytes,
                "format": raw.format,
                "encoding": raw.encoding,
                "delimiter": raw.delimiter,
                "rows": raw.height,
                "columns": raw.frame.width,
                "read_warnings": [{"code": w.code, "message": w.message} for w in raw.warnings],
            },
            "shape": mapping.shape,
            "mapping": mapping.to_dict(),
            "config": config.model_dump(mode="json"),
            "reference_date": (
                result.customers.reference_date.isoformat()
                if result.customers.reference_date
                else None
            ),
            "seeds": {"seed": config.seed},
            "versions": versions(),
            "engine": result.engine,
            "timings_seconds": result.timings,
            "quality": {
                "rows_read": result.quality.rows_read,
                "rows_used": result.quality.rows_used,
                "rows_excluded": result.quality.rows_excluded,
                "issues": len(result.quality.issues),
            },
            "model": {
                "k": result.model.n_segments_,
                "k_chosen_automatically": config.k is None,
                "features": result.model_features,
                "k_scores": [s.to_dict() for s in result.model.k_scores_],
                "stability_ari": result.stability.ari,
            },
            "artifacts": artifacts,
        }

    def get_run(self, run_id: str) -> RunRecord:
        if not valid_id(run_id):
            raise NotFound(f"Run '{run_id[:40]}' does not exist.", code="run_not_found")
        return self.store.get_run(run_id, workspace=self.workspace)

    def finished(self, run_id: str) -> RunRecord:
        record = self.get_run(run_id)
        if record.status != SUCCEEDED:
            raise Conflict(
                f"Run '{run_id}' is {record.status}; results exist only for succeeded runs.",
                code="run_not_ready",
                details={"status": record.status, "progress": record.progress},
            )
        return record

    def list_runs(self, **filters: Any) -> tuple[list[RunRecord], int]:
        """A page of runs, newest first; a scoped view lists its own workspace only."""
        if self.workspace is not None:
            filters["workspace"] = self.workspace
        return self.store.list_runs(**filters)

    def delete_run(self, run_id: str) -> None:
        record = self.get_run(run_id)
        if record.status in (QUEUED, RUNNING):
            raise Conflict(
                f"Run '{run_id}' is {record.status}; wait for it to finish.", code="run_busy"
            )
        self.artifacts.delete(run_id)
        # Cached exports of the run (the id is validated above, so the path stays inside).
        shutil.rmtree(self.settings.exports_dir / record.id, ignore_errors=True)
        self.store.delete_run(run_id)

    # Results ----------------------------------------------------------------------------------
    def manifest(self, run_id: str) -> dict[str, Any]:
        self.finished(run_id)
        return self.artifacts.read_json(run_id, "manifest.json")

    def profiles(self, run_id: str) -> dict[str, Any]:
        self.finished(run_id)
        return self.artifacts.read_json(run_id, "profiles.json")

    def quality(self, run_id: str) -> dict[str, Any]:
        self.finished(run_id)
        return self.artifacts.read_json(run_id, "quality.json")

    def insights(self, run_id: str) -> dict[str, Any]:
        self.finished(run_id)
        return self.artifacts.read_json(run_id, "insights.json")

    def compare(self, run_id: str, other_id: str | None = None) -> dict[str, Any]:
        """Compare a run with another (default: its parent): matches, deltas, migrations."""
        record = self.finished(run_id)
        if other_id in (None, "parent"):
            if record.parent_id is None:
                raise NotFound(
                    f"Run '{run_id}' has no parent run to compare with.", code="no_parent"
                )
            other_id = record.parent_id
        self.finished(other_id)
        return compare_stored(self, other_id, run_id)

    def model(self, run_id: str) -> dict[str, Any]:
        self.finished(run_id)
        return self.artifacts.read_json(run_id, "model.json")

    def assignments_path(self, run_id: str) -> Path:
        self.finished(run_id)
        return self.artifacts.path(run_id, "assignments.parquet")

    def assignments_page(self, run_id: str, *, offset: int, limit: int) -> tuple[pl.DataFrame, int]:
        path = self.assignments_path(run_id)
        lazy = pl.scan_parquet(path)
        total = int(lazy.select(pl.len()).collect().item())
        return lazy.slice(offset, limit).collect(), total

    # Reproduce and score ----------------------------------------------------------------------
    def reproduce(
        self, run_id: str, *, progress: Callable[[str, int], None] | None = None
    ) -> ReproduceResult:
        """Recompute a run from its stored input snapshot and config; compare artifact hashes.

        The stored files are hashed too: one that no longer matches the sha256 its manifest
        recorded (damaged or edited after the run) is named as differing even when the
        recomputation matches the record, and so is a changed input snapshot (listed first),
        since the recomputation then starts from other data than the run did.
        """
        original = self.finished(run_id)
        snapshot = self.artifacts.snapshot(run_id)  # a file, or a directory of part files
        manifest = self.manifest(run_id)
        recorded = manifest["artifacts"]
        changed = [
            name
            for name in ("input.parquet", *COMPARED)
            if name in recorded
            and self._stored_sha256(run_id, name) != recorded[name].get("sha256")
        ]
        if snapshot.is_dir() and parts_changed(snapshot, recorded):
            changed.insert(0, "input.parquet")
        inp = manifest["input"]
        raw = RawTable(
            frame=pl.DataFrame(),
            format=inp["format"],
            delimiter=inp["delimiter"],
            encoding=inp["encoding"],
            warnings=tuple(ReadWarning(w["code"], w["message"]) for w in inp["read_warnings"]),
        )
        try:
            if snapshot.is_dir() or snapshot.stat().st_size > self.limits.stream_above_bytes:
                streamed = read_table(snapshot, limits=self.limits)  # scanned, not in memory
                raw = replace(raw, frame=streamed.frame, source=streamed.source)
            else:
                raw = replace(raw, frame=pl.read_parquet(snapshot))
        except (OSError, pl.exceptions.PolarsError, SistackError) as exc:
            raise StorageError(
                f"Run '{run_id}' cannot be reproduced: its stored input snapshot "
                f"(input.parquet) cannot be read ({exc.__class__.__name__}). Its results stay "
                "as they are; run the file again with `sistack run` to recompute them.",
                code="artifact_corrupt",
            ) from None
        new = self.create_run(
            original.dataset_id,
            config=RunConfig(**original.config["run"]),
            mapping=original.config["mapping"],
            name=f"reproduce of {original.name}"[:255],
            parent_id=run_id,
            hold=True,
        )
        done = self.execute(new.id, raw=raw, progress=progress)
        if done.status != SUCCEEDED:
            raise SistackError(
                f"Reproducing run '{run_id}' failed: {done.error_message}",
                code="reproduce_failed",
                details={"new_run_id": new.id},
            )
        theirs = self.manifest(new.id)["artifacts"]
        # A run made by an earlier version lacks the files added since (the stored charts):
        # what it has is compared.
        differing = [
            name
            for name in ("input.parquet", *COMPARED)
            if name in changed
            or (
                name in COMPARED
                and name in recorded
                and recorded[name].get("sha256") != theirs.get(name, {}).get("sha256")
            )
        ]
        return ReproduceResult(run_id, new.id, not differing, differing)

    def _stored_sha256(self, run_id: str, name: str) -> str | None:
        """The sha256 of a run's stored artifact as it is now (None when it is gone)."""
        try:
            return sha256_file(self.artifacts.path(run_id, name))
        except NotFound:
            return None

    def score(self, run_id: str, path: Path, *, filename: str | None = None) -> pl.DataFrame:
        """Assign the customers of a new file to this run's segments, without refitting."""
        record = self.finished(run_id)
        with self._reads:
            raw = read_table(path, limits=self.limits, filename=filename)
            stored = record.config["mapping"]
            try:
                mapping = ColumnMapping.from_dict(stored, columns=raw.frame.columns)
            except InputError:
                mapping = detect_mapping(raw.frame, shape=stored["shape"])
            customers = prepare(raw.data(), mapping, reference_date=None)
            return score_table(customers, self.model(run_id))


def _reread_snapshot(raw: RawTable, config: RunConfig) -> bool:
    """Whether the pipeline reads the run's Parquet snapshot instead of the input file: for a
    streamed text file on the local engine (Spark reads the file itself)."""
    return raw.source is not None and raw.source.kind == "csv" and config.engine == "local"


def _write_parquet(frame: pl.DataFrame, path: Path) -> dict[str, str]:
    """Write one table artifact and hash it on the same (non-main) thread: {name: sha256}."""
    frame.write_parquet(path, compression="zstd")
    return {path.name: sha256_file(path)}


def _warm_charts() -> None:
    """Import the chart library (Altair: over half a second) on a daemon thread, so a cold
    process (``sistack run``) loads it while the pipeline's native code runs instead of when
    the specs are built. Only the first call in a process does anything."""
    global _charts_warming
    if _charts_warming is None:
        _charts_warming = threading.Thread(target=_import_charts, name="warm-charts", daemon=True)
        _charts_warming.start()


def _import_charts() -> None:
    import sistack.io.exports.prebuilt  # noqa: F401


_charts_warming: threading.Thread | None = None


def _registered_sha256(raw: RawTable, dataset: DatasetRecord) -> str | None:
    """The sha256 the parts of a directory dataset had when it was registered, when ``raw``
    reads that directory (not, say, the snapshot of a run being reproduced)."""
    parts = raw.source.parts if raw.source is not None else ()
    if parts and parts[0].parent == Path(dataset.info["path"]):
        return dataset.sha256
    return None


def _snapshot(raw: RawTable, path: Path, registered: str | None) -> dict[str, str]:
    """The run's input as Parquet (a file too large to read whole is copied by streaming), and
    its sha256: {name: sha256}. A directory of part files (a dataset Spark wrote) becomes a
    directory of links to them (``io.parts``), hashed part by part for the manifest; when they
    no longer have the ``registered`` sha256 (parts changed, added or removed since), the run
    fails: its record would name other data than it read."""
    if raw.source is not None and raw.source.parts:
        link_parts(raw.source.parts, path)
        hashes = {f"{path.name}/{p.name}": sha256_file(p) for p in part_files(path)}
        if registered is not None and combined_sha256(hashes.items()) != registered:
            raise InputError(
                "The dataset's part files changed after it was registered: the run would not "
                "use the data its record names. Register the folder again and run that dataset.",
                code="dataset_changed",
            )
        return hashes
    if raw.source is not None:
        raw.source.scan().sink_parquet(path, compression="zstd", engine="streaming")
    else:
        raw.frame.write_parquet(path, compression="zstd")
    return {path.name: sha256_file(path)}


def _charts(documents: dict[str, Any], result: PipelineResult) -> dict[str, Any]:
    """The run's chart specs (``charts.json``), made now so that no page view builds them
    again (the report's SVGs are drawn on first use: see ``io.exports.prebuilt``)."""
    from sistack.io.exports.prebuilt import as_stored, chart_documents  # Altair

    return chart_documents(
        profiles=as_stored(documents["profiles.json"]),
        insights=as_stored(documents["insights.json"]),
        model=as_stored(documents["model.json"]),
        features=result.features.frame,
        assignments=result.assignments,
    )


def versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "sistack": __version__}
    for name in PACKAGES:
        try:
            found[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            found[name] = "absent"
    return found


def run_summary(result: PipelineResult, manifest: dict[str, Any]) -> dict[str, Any]:
    """The small summary kept in the metadata row (listing runs must not open artifacts)."""
    segs = [p for p in result.profiles if p.segment > 0]
    names = {s["segment"]: s["persona"]["name"] for s in result.insights.segments}
    return {
        "k": result.model.n_segments_,
        "revenue": result.profiles[0].revenue,
        "input_sha256": manifest["input"]["sha256"],
        "banner": result.insights.banner,
        "segments": [
            {
                "segment": p.segment,
                "name": names.get(p.segment),
                "customers": p.customers,
                "customer_share": p.customer_share,
                "revenue_share": p.revenue_share,
            }
            for p in segs
        ],
    }


def _profiles(doc: dict[str, Any]) -> tuple[SegmentProfile, ...]:
    return tuple(SegmentProfile.from_dict(p) for p in doc["profiles"])


def compare_stored(svc: RunService, a_id: str, b_id: str) -> dict[str, Any]:
    """Compare run A (the reference, e.g. the parent) with run B using their stored artifacts."""
    profiles_a = _profiles(svc.profiles(a_id))
    profiles_b = _profiles(svc.profiles(b_id))
    stds = svc.insights(a_id)["population_std"]
    a = pl.read_parquet(svc.assignments_path(a_id), columns=["customer_id", "segment"])
    b = pl.read_parquet(svc.assignments_path(b_id), columns=["customer_id", "segment"])
    both = a.join(b, on="customer_id", suffix="_b")
    shared = (both.get_column("segment").to_numpy(), both.get_column("segment_b").to_numpy())
    result = compare_runs(profiles_a, profiles_b, stds=stds, shared=shared)
    data = asdict(result)
    data.update(run_a=a_id, run_b=b_id, definitions=COMPARE_DEFINITIONS)
    return data
