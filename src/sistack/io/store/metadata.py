"""The metadata store: datasets and runs in SQLAlchemy 2 (SQLite by default, PostgreSQL by URL).

The schema is owned by Alembic migrations (``migrations/``); opening a store brings the database
to the latest revision. Callers get frozen records, never ORM objects, so no session leaks out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Integer,
    String,
    Text,
    create_engine,
    event,
    func,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

from sistack.errors import NotFound, StorageError

QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"
STATUSES = (QUEUED, RUNNING, SUCCEEDED, FAILED)
DEFAULT_WORKSPACE = "default"


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timestamps stored in UTC and always read back time-zone aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value


class Base(DeclarativeBase):
    pass


class DatasetRow(Base):
    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    format: Mapped[str] = mapped_column(String(16))
    shape: Mapped[str] = mapped_column(String(16))
    n_rows: Mapped[int] = mapped_column(Integer)
    n_columns: Mapped[int] = mapped_column(Integer)
    info: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    workspace: Mapped[str] = mapped_column(String(64), index=True, default=DEFAULT_WORKSPACE)


class RunRow(Base):
    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(String(26), index=True)
    parent_id: Mapped[str | None] = mapped_column(String(26), nullable=True)
    name: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), index=True)
    stage: Mapped[str] = mapped_column(String(32))
    progress: Mapped[int] = mapped_column(Integer)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    n_customers: Mapped[int | None] = mapped_column(Integer, nullable=True)
    k: Mapped[int | None] = mapped_column(Integer, nullable=True)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Queue claims (migration 0003): the worker holding a running run, its last sign of life,
    # and how many times the run was claimed (1 for every run that ran; tests assert it).
    claimed_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    claims: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The workspace of the run's dataset (migration 0004); access is scoped by it.
    workspace: Mapped[str] = mapped_column(String(64), index=True, default=DEFAULT_WORKSPACE)


class ScenarioRow(Base):
    __tablename__ = "scenarios"

    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    run_id: Mapped[str] = mapped_column(String(26), index=True)
    name: Mapped[str] = mapped_column(String(255))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    workspace: Mapped[str] = mapped_column(String(64), index=True, default=DEFAULT_WORKSPACE)


class ApiKeyRow(Base):
    """An API key: only the SHA-256 of the whole key is kept, looked up by its public id."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    workspace: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)


@dataclass(frozen=True)
class ScenarioRecord:
    id: str
    run_id: str
    name: str
    body: dict[str, Any]
    created_at: dt.datetime
    workspace: str = DEFAULT_WORKSPACE


@dataclass(frozen=True)
class ApiKeyRecord:
    id: str
    key_hash: str
    name: str
    workspace: str
    role: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None


@dataclass(frozen=True)
class DatasetRecord:
    id: str
    filename: str
    sha256: str
    size_bytes: int
    format: str
    shape: str
    n_rows: int
    n_columns: int
    info: dict[str, Any]
    created_at: dt.datetime
    workspace: str = DEFAULT_WORKSPACE


@dataclass(frozen=True)
class RunRecord:
    id: str
    dataset_id: str
    parent_id: str | None
    name: str
    status: str
    stage: str
    progress: int
    config: dict[str, Any]
    error_code: str | None
    error_message: str | None
    n_customers: int | None
    k: int | None
    summary: dict[str, Any] | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    claimed_by: str | None = None
    heartbeat_at: dt.datetime | None = None
    claims: int = 0
    workspace: str = DEFAULT_WORKSPACE


def _record(cls: Any, row: Base) -> Any:
    return cls(**{f.name: getattr(row, f.name) for f in fields(cls)})


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:  # pragma: no cover - driver hook
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def upgrade(engine: Engine) -> None:
    """Bring the database schema to the latest Alembic revision."""
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Several processes (API workers, queue workers) may start at once on a fresh
            # database: one migrates, the others wait here and then find the schema at head.
            conn.execute(text("SELECT pg_advisory_xact_lock(7261540031)"))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class MetadataStore:
    """Datasets and runs. One instance per process; safe to share between threads."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            if url.startswith("sqlite"):
                path = url.split("///", 1)[-1]
                if path and path != ":memory:":
                    Path(path).parent.mkdir(parents=True, exist_ok=True)
                self.engine = create_engine(
                    url, connect_args={"check_same_thread": False, "timeout": 30}
                )
                _sqlite_pragmas(self.engine)
            else:
                self.engine = create_engine(url, pool_pre_ping=True)
            upgrade(self.engine)
        except (SQLAlchemyError, OSError) as exc:
            raise StorageError(
                f"Cannot open the metadata database ({_safe_url(url)}): {exc.__class__.__name__}. "
                "Check SISTACK_DATABASE_URL or SISTACK_HOME.",
                code="database_unavailable",
            ) from exc
        self._session = sessionmaker(self.engine, expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    # Datasets ---------------------------------------------------------------------------------
    def add_dataset(self, record: DatasetRecord) -> None:
        with self._session.begin() as s:
            s.add(DatasetRow(**record.__dict__))

    def get_dataset(self, dataset_id: str, *, workspace: str | None = None) -> DatasetRecord:
        """The dataset; ``workspace`` (None: any) makes another workspace's dataset not found."""
        with self._session() as s:
            row = s.get(DatasetRow, dataset_id)
            if row is None or not _visible(row.workspace, workspace):
                raise NotFound(f"Dataset '{dataset_id}' does not exist.", code="dataset_not_found")
            return _record(DatasetRecord, row)

    # Runs -------------------------------------------------------------------------------------
    def add_run(self, record: RunRecord) -> None:
        with self._session.begin() as s:
            s.add(RunRow(**record.__dict__))

    def get_run(self, run_id: str, *, workspace: str | None = None) -> RunRecord:
        """The run; ``workspace`` (None: any) makes another workspace's run not found, with the
        same error as an id that does not exist (ids of other workspaces do not leak)."""
        with self._session() as s:
            row = s.get(RunRow, run_id)
            if row is None or not _visible(row.workspace, workspace):
                raise NotFound(f"Run '{run_id}' does not exist.", code="run_not_found")
            return _record(RunRecord, row)

    def update_run(self, run_id: str, **fields: Any) -> None:
        with self._session.begin() as s:
            row = s.get(RunRow, run_id)
            if row is None:
                raise NotFound(f"Run '{run_id}' does not exist.", code="run_not_found")
            for key, value in fields.items():
                setattr(row, key, value)

    def list_runs(
        self,
        *,
        status: str | None = None,
        dataset_id: str | None = None,
        workspace: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[RunRecord], int]:
        """Newest first (ids sort by time); returns a page and the total count."""
        query = select(RunRow)
        if workspace is not None:
            query = query.where(RunRow.workspace == workspace)
        if status:
            query = query.where(RunRow.status == status)
        if dataset_id:
            query = query.where(RunRow.dataset_id == dataset_id)
        with self._session() as s:
            total = s.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = s.scalars(query.order_by(RunRow.id.desc()).limit(limit).offset(offset)).all()
            return [_record(RunRecord, r) for r in rows], int(total)

    def delete_run(self, run_id: str) -> None:
        with self._session.begin() as s:
            row = s.get(RunRow, run_id)
            if row is None:
                raise NotFound(f"Run '{run_id}' does not exist.", code="run_not_found")
            s.delete(row)
            for scenario in s.scalars(select(ScenarioRow).where(ScenarioRow.run_id == run_id)):
                s.delete(scenario)

    # Scenarios ---------------------------------------------------------------------------------
    def add_scenario(self, record: ScenarioRecord) -> None:
        with self._session.begin() as s:
            s.add(ScenarioRow(**record.__dict__))

    def get_scenario(
        self, run_id: str, scenario_id: str, *, workspace: str | None = None
    ) -> ScenarioRecord:
        with self._session() as s:
            row = s.get(ScenarioRow, scenario_id)
            if row is None or row.run_id != run_id or not _visible(row.workspace, workspace):
                raise NotFound(
                    f"Scenario '{scenario_id[:40]}' does not exist for run '{run_id[:40]}'.",
                    code="scenario_not_found",
                )
            return _record(ScenarioRecord, row)

    def list_scenarios(self, run_id: str, *, workspace: str | None = None) -> list[ScenarioRecord]:
        query = select(ScenarioRow).where(ScenarioRow.run_id == run_id)
        if workspace is not None:
            query = query.where(ScenarioRow.workspace == workspace)
        with self._session() as s:
            rows = s.scalars(query.order_by(ScenarioRow.id)).all()
            return [_record(ScenarioRecord, r) for r in rows]

    def delete_scenario(
        self, run_id: str, scenario_id: str, *, workspace: str | None = None
    ) -> None:
        with self._session.begin() as s:
            row = s.get(ScenarioRow, scenario_id)
            if row is None or row.run_id != run_id or not _visible(row.workspace, workspace):
                raise NotFound(
                    f"Scenario '{scenario_id[:40]}' does not exist for run '{run_id[:40]}'.",
                    code="scenario_not_found",
                )
            s.delete(row)

    # API keys ----------------------------------------------------------------------------------
    def add_api_key(self, record: ApiKeyRecord) -> None:
        with self._session.begin() as s:
            s.add(ApiKeyRow(**record.__dict__))

    def get_api_key(self, key_id: str) -> ApiKeyRecord | None:
        with self._session() as s:
            row = s.get(ApiKeyRow, key_id)
            return None if row is None else _record(ApiKeyRecord, row)

    def list_api_keys(self) -> list[ApiKeyRecord]:
        with self._session() as s:
            rows = s.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.id))
            return [_record(ApiKeyRecord, r) for r in rows]

    def revoke_api_key(self, key_id: str, *, now: dt.datetime) -> ApiKeyRecord:
        """Mark a key revoked (kept for the record); revoking twice keeps the first time."""
        with self._session.begin() as s:
            row = s.get(ApiKeyRow, key_id)
            if row is None:
                raise NotFound(f"API key '{key_id[:40]}' does not exist.", code="key_not_found")
            if row.revoked_at is None:
                row.revoked_at = now
            return _record(ApiKeyRecord, row)

    def has_active_keys(self) -> bool:
        """Whether any key is not revoked: the server then requires one on every API call."""
        with self._session() as s:
            found = s.scalar(select(ApiKeyRow.id).where(ApiKeyRow.revoked_at.is_(None)).limit(1))
            return found is not None

    def ping(self) -> None:
        """Raise ``StorageError`` unless the database answers (readiness probe)."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            raise StorageError(
                f"The metadata database does not answer: {exc.__class__.__name__}.",
                code="database_unavailable",
            ) from exc

    # Queue claims ------------------------------------------------------------------------------
    def claim_next(self, worker: str, *, now: dt.datetime) -> RunRecord | None:
        """Claim the oldest queued run for ``worker`` (status running) or return None.

        PostgreSQL locks the candidate row with ``FOR UPDATE SKIP LOCKED``, so concurrent
        claimers each get a different row without waiting. SQLite has no row locks; there the
        claim is a compare-and-set (``UPDATE ... WHERE id = :id AND status = 'queued'``) that
        only one writer can win, retried with the next candidate when another claimer won.
        """
        if self.engine.dialect.name == "postgresql":
            with self._session.begin() as s:
                row = s.scalars(
                    select(RunRow)
                    .where(RunRow.status == QUEUED)
                    .order_by(RunRow.id)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                ).first()
                if row is None:
                    return None
                _set_claim(row, worker, now)
                return _record(RunRecord, row)
        for _ in range(100):
            with self._session() as s:
                run_id = s.scalar(
                    select(RunRow.id).where(RunRow.status == QUEUED).order_by(RunRow.id).limit(1)
                )
            if run_id is None:
                return None
            if self.claim(run_id, worker, now=now):
                return self.get_run(run_id)
        return None  # pragma: no cover - 100 lost races in a row

    def claim(self, run_id: str, worker: str, *, now: dt.datetime) -> bool:
        """Claim one given queued run (compare-and-set); False when it is not queued any more."""
        with self._session.begin() as s:
            result = s.execute(
                update(RunRow)
                .where(RunRow.id == run_id, RunRow.status == QUEUED)
                .values(
                    status=RUNNING,
                    stage="claimed",
                    claimed_by=worker,
                    heartbeat_at=now,
                    started_at=now,
                    claims=RunRow.claims + 1,
                )
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def update_claimed(self, run_id: str, worker: str, **fields: Any) -> bool:
        """Update a running run only while ``worker`` still holds it; False if the claim is lost
        (the run was failed as interrupted by a sweep, or re-queued)."""
        with self._session.begin() as s:
            result = s.execute(
                update(RunRow)
                .where(RunRow.id == run_id, RunRow.status == RUNNING, RunRow.claimed_by == worker)
                .values(**fields)
                .execution_options(synchronize_session=False)
            )
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def requeue(self, run_id: str, worker: str) -> bool:
        """Give a claimed run back to the queue (a worker told to stop fast)."""
        return self.update_claimed(
            run_id,
            worker,
            status=QUEUED,
            stage="queued",
            progress=0,
            claimed_by=None,
            heartbeat_at=None,
            started_at=None,
        )

    def fail_stale(self, *, before: dt.datetime, now: dt.datetime) -> list[str]:
        """Fail running runs whose last heartbeat is older than ``before``: their worker is gone.

        A run without any heartbeat (started by an older version) counts from its start.
        """
        last_seen = func.coalesce(RunRow.heartbeat_at, RunRow.started_at, RunRow.created_at)
        with self._session() as s:
            candidates = s.scalars(
                select(RunRow.id).where(RunRow.status == RUNNING, last_seen < before)
            ).all()
        failed = []
        for run_id in candidates:
            with self._session.begin() as s:
                row = s.get(RunRow, run_id)
                stage = row.stage if row is not None else "?"
                result = s.execute(
                    update(RunRow)
                    .where(RunRow.id == run_id, RunRow.status == RUNNING, last_seen < before)
                    .values(
                        status=FAILED,
                        error_code="interrupted",
                        error_message=(
                            f"The run was interrupted at stage '{stage}' (its worker stopped "
                            "sending heartbeats). Start it again with reproduce or a new run."
                        ),
                        finished_at=now,
                    )
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    failed.append(run_id)
        return failed

    def mark_interrupted(self, *, now: dt.datetime) -> list[str]:
        """Mark every running run failed: its process is gone (call at start-up of the single
        process that owns every run). Queued runs never started; they stay queued."""
        with self._session.begin() as s:
            rows = s.scalars(select(RunRow).where(RunRow.status == RUNNING)).all()
            for row in rows:
                row.status = FAILED
                row.error_code = "interrupted"
                row.error_message = (
                    f"The run was interrupted at stage '{row.stage}' (the process stopped). "
                    "Start it again with reproduce or a new run."
                )
                row.finished_at = now
            return [r.id for r in rows]

    def queued_ids(self) -> list[str]:
        """Ids of the queued runs, oldest first (ULIDs sort by creation time)."""
        with self._session() as s:
            return list(
                s.scalars(select(RunRow.id).where(RunRow.status == QUEUED).order_by(RunRow.id))
            )


def _visible(owner: str, workspace: str | None) -> bool:
    return workspace is None or owner == workspace


def _set_claim(row: RunRow, worker: str, now: dt.datetime) -> None:
    row.status = RUNNING
    row.stage = "claimed"
    row.claimed_by = worker
    row.heartbeat_at = now
    row.started_at = now
    row.claims = (row.claims or 0) + 1


def _safe_url(url: str) -> str:
    """The URL without a password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
