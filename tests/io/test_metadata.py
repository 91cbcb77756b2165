"""The run store: ``MetadataStore`` on SQLite and on a real PostgreSQL, and ``ArtifactStore``.

Both database back ends go through the same tests (a store is chosen by URL). Artifact paths that
could come from a request are checked against the usual attacks before any file is touched.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from ulid import ULID

from sistack.errors import NotFound, StorageError
from sistack.io.store.artifacts import ARTIFACTS, STAGING, ArtifactStore, dump_json
from sistack.io.store.metadata import (
    FAILED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    DatasetRecord,
    MetadataStore,
    RunRecord,
)

T0 = dt.datetime(2024, 3, 1, 12, 0, 0, 250_000, tzinfo=dt.UTC)


def ulid_at(when: dt.datetime, tail: int = 0) -> str:
    """A fixed ULID: ``when`` in its 48-bit time part, ``tail`` instead of random bits."""
    millis = int(when.timestamp() * 1000)
    return str(ULID.from_bytes(millis.to_bytes(6, "big") + tail.to_bytes(10, "big")))


def run_id(i: int) -> str:
    """Ids that sort by creation time: run ``i`` is created ``i`` minutes after T0."""
    return ulid_at(T0 + dt.timedelta(minutes=i), tail=7)


DATASET = ulid_at(T0, tail=1)
OTHER_DATASET = ulid_at(T0, tail=2)


def run_record(i: int, *, status: str = SUCCEEDED, dataset_id: str = DATASET) -> RunRecord:
    return RunRecord(
        id=run_id(i),
        dataset_id=dataset_id,
        parent_id=None,
        name=f"run {i} – café",
        status=status,
        stage="done" if status == SUCCEEDED else "segment",
        progress=100 if status == SUCCEEDED else 45,
        config={"run": {"k": None, "seed": 42, "clip": [0.01, 0.99]}, "mapping": {"ID": "x"}},
        error_code=None,
        error_message=None,
        n_customers=300 if status == SUCCEEDED else None,
        k=4 if status == SUCCEEDED else None,
        summary={"revenue": 1234.5, "segments": [{"segment": 1, "share": 0.25}]}
        if status == SUCCEEDED
        else None,
        created_at=T0 + dt.timedelta(minutes=i),
        started_at=T0 + dt.timedelta(minutes=i, seconds=1),
        finished_at=None,
    )


def dataset_record(dataset_id: str = DATASET) -> DatasetRecord:
    return DatasetRecord(
        id=dataset_id,
        filename="customers – août.csv",
        sha256="ab" * 32,
        size_bytes=5 * 1024**3,  # BigInteger: larger than a 32-bit int
        format="csv",
        shape="customers",
        n_rows=300,
        n_columns=9,
        info={"columns": ["ID", "Income"], "mapping": {"ID": "customer_id"}, "path": "/x"},
        created_at=T0,
    )


def utc(value: dt.datetime | None) -> dt.datetime | None:
    """The instant of a stored timestamp (a naive one is read as UTC)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


def comparable(record: RunRecord | DatasetRecord) -> dict[str, object]:
    """A record's fields with timestamps reduced to their instants."""
    return {
        k: utc(v) if isinstance(v, dt.datetime) else v
        for k, v in dataclasses.asdict(record).items()
    }


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta' / 'sistack.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(db_url: str) -> Iterator[MetadataStore]:
    opened = MetadataStore(db_url)
    try:
        yield opened
    finally:
        opened.close()


# --- MetadataStore --------------------------------------------------------------------------


def test_dataset_round_trip(store: MetadataStore) -> None:
    record = dataset_record()
    store.add_dataset(record)
    assert comparable(store.get_dataset(DATASET)) == comparable(record)


def test_run_round_trip_keeps_json_and_numbers(store: MetadataStore) -> None:
    record = run_record(1)
    store.add_run(record)
    got = store.get_run(record.id)
    assert comparable(got) == comparable(record)
    assert got.summary == {"revenue": 1234.5, "segments": [{"segment": 1, "share": 0.25}]}
    assert got.name == "run 1 – café"


def test_timestamps_keep_their_time_zone(store: MetadataStore) -> None:
    store.add_run(run_record(1))
    got = store.get_run(run_id(1))
    assert got.created_at == T0 + dt.timedelta(minutes=1)
    assert got.created_at.utcoffset() is not None


@pytest.mark.parametrize(
    ("get", "code"),
    [("get_dataset", "dataset_not_found"), ("get_run", "run_not_found")],
)
def test_unknown_ids_raise_not_found(store: MetadataStore, get: str, code: str) -> None:
    with pytest.raises(NotFound) as info:
        getattr(store, get)(run_id(99))
    assert info.value.code == code
    assert info.value.status == 404
    assert run_id(99) in info.value.message


# Seven runs, i = 0..6 (i minutes after T0); statuses and datasets below.
STATUSES = [SUCCEEDED, FAILED, SUCCEEDED, QUEUED, RUNNING, SUCCEEDED, FAILED]
ON_OTHER_DATASET = {2, 5}


@pytest.fixture
def seven_runs(store: MetadataStore) -> MetadataStore:
    # Added out of order: the listing order must come from the ids, not the insertion order.
    for i in (3, 0, 6, 1, 5, 2, 4):
        dataset = OTHER_DATASET if i in ON_OTHER_DATASET else DATASET
        store.add_run(run_record(i, status=STATUSES[i], dataset_id=dataset))
    return store


@pytest.mark.parametrize(
    ("filters", "expected", "total"),
    [
        ({}, [6, 5, 4, 3, 2, 1, 0], 7),
        ({"limit": 3}, [6, 5, 4], 7),
        ({"limit": 3, "offset": 3}, [3, 2, 1], 7),
        ({"limit": 3, "offset": 6}, [0], 7),
        ({"limit": 3, "offset": 7}, [], 7),
        ({"status": SUCCEEDED}, [5, 2, 0], 3),
        ({"status": FAILED, "limit": 1}, [6], 2),
        ({"status": FAILED, "limit": 1, "offset": 1}, [1], 2),
        ({"dataset_id": OTHER_DATASET}, [5, 2], 2),
        ({"dataset_id": DATASET, "status": SUCCEEDED}, [0], 1),
        ({"status": "cancelled"}, [], 0),
    ],
)
def test_list_runs_newest_first_with_filters_and_total(
    seven_runs: MetadataStore, filters: dict[str, object], expected: list[int], total: int
) -> None:
    items, count = seven_runs.list_runs(**filters)  # type: ignore[arg-type]
    assert [r.id for r in items] == [run_id(i) for i in expected]
    assert count == total


def test_list_pages_are_disjoint_and_cover_everything(seven_runs: MetadataStore) -> None:
    seen: list[str] = []
    for offset in range(0, 7, 2):
        page, total = seven_runs.list_runs(limit=2, offset=offset)
        assert total == 7
        seen.extend(r.id for r in page)
    assert seen == sorted(seen, reverse=True)
    assert len(set(seen)) == 7


def test_update_run_changes_only_given_fields(store: MetadataStore) -> None:
    store.add_run(run_record(1, status=RUNNING))
    done = T0 + dt.timedelta(hours=1)
    summary = {"k": 3, "revenue": 99.25, "segments": [{"segment": 1, "revenue_share": 0.5}]}
    store.update_run(run_id(1), status=SUCCEEDED, progress=100, summary=summary, finished_at=done)
    got = store.get_run(run_id(1))
    assert (got.status, got.progress, got.summary, utc(got.finished_at)) == (
        SUCCEEDED,
        100,
        summary,
        done,
    )
    assert (got.stage, got.name, got.k) == ("segment", "run 1 – café", None)


def test_update_and_delete_of_unknown_run_raise_not_found(store: MetadataStore) -> None:
    for call in (
        lambda: store.update_run(run_id(5), progress=3),
        lambda: store.delete_run(run_id(5)),
    ):
        with pytest.raises(NotFound) as info:
            call()
        assert info.value.code == "run_not_found"


def test_delete_run_removes_only_that_run(seven_runs: MetadataStore) -> None:
    seven_runs.delete_run(run_id(3))
    with pytest.raises(NotFound):
        seven_runs.get_run(run_id(3))
    items, total = seven_runs.list_runs()
    assert total == 6
    assert run_id(3) not in {r.id for r in items}
    with pytest.raises(NotFound):
        seven_runs.delete_run(run_id(3))


def test_mark_interrupted_fails_running_runs_and_keeps_the_queue(
    seven_runs: MetadataStore,
) -> None:
    now = T0 + dt.timedelta(days=1)
    assert seven_runs.queued_ids() == [run_id(3)]
    changed = seven_runs.mark_interrupted(now=now)
    assert changed == [run_id(4)]
    run = seven_runs.get_run(run_id(4))
    assert (run.status, run.error_code, utc(run.finished_at)) == (FAILED, "interrupted", now)
    assert "interrupted at stage 'segment'" in (run.error_message or "")
    assert seven_runs.queued_ids() == [run_id(3)]
    for i in (0, 1, 2, 3, 5, 6):  # finished and queued runs keep their state
        assert comparable(seven_runs.get_run(run_id(i))) == comparable(
            run_record(
                i,
                status=STATUSES[i],
                dataset_id=OTHER_DATASET if i in ON_OTHER_DATASET else DATASET,
            )
        )
    assert seven_runs.list_runs(status=QUEUED)[1] == 1
    assert seven_runs.list_runs(status=RUNNING)[1] == 0
    assert seven_runs.mark_interrupted(now=now) == []


def test_reopening_keeps_data_and_migrations_are_idempotent(db_url: str) -> None:
    first = MetadataStore(db_url)
    try:
        first.add_dataset(dataset_record())
        first.add_run(run_record(1))
    finally:
        first.close()
    second = MetadataStore(db_url)
    try:
        assert second.get_dataset(DATASET).size_bytes == 5 * 1024**3
        assert second.list_runs()[1] == 1
    finally:
        second.close()


def test_unreachable_database_is_a_storage_error_without_password() -> None:
    url = "postgresql+psycopg://someone:s3cret@127.0.0.1:1/nowhere?connect_timeout=2"
    with pytest.raises(StorageError) as info:
        MetadataStore(url)
    assert info.value.code == "database_unavailable"
    assert info.value.status == 503
    assert "s3cret" not in info.value.message
    assert "127.0.0.1:1/nowhere" in info.value.message


# --- ArtifactStore ----------------------------------------------------------------------------

RUN = run_id(1)


@pytest.fixture
def artifacts(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "root")


def staging_entries(store: ArtifactStore) -> list[Path]:
    staging = store.root / STAGING
    return sorted(staging.iterdir()) if staging.is_dir() else []


def test_staging_becomes_the_run_directory_only_on_success(artifacts: ArtifactStore) -> None:
    with artifacts.staging(RUN) as folder:
        (folder / "manifest.json").write_bytes(dump_json({"run_id": RUN, "k": 3}))
        assert folder.parent == artifacts.root / STAGING
        assert not (artifacts.root / RUN).exists()
        assert not artifacts.exists(RUN)
    assert artifacts.exists(RUN)
    assert sorted(p.name for p in (artifacts.root / RUN).iterdir()) == ["manifest.json"]
    assert artifacts.read_json(RUN, "manifest.json") == {"k": 3, "run_id": RUN}
    assert staging_entries(artifacts) == []


def test_exception_inside_staging_leaves_nothing(artifacts: ArtifactStore) -> None:
    with pytest.raises(RuntimeError, match="disk full"), artifacts.staging(RUN) as folder:
        (folder / "assignments.parquet").write_bytes(b"half written")
        raise RuntimeError("disk full")
    assert not (artifacts.root / RUN).exists()
    assert not artifacts.exists(RUN)
    assert staging_entries(artifacts) == []
    with pytest.raises(NotFound):
        artifacts.path(RUN, "assignments.parquet")


def test_staging_refuses_to_overwrite_an_existing_run(artifacts: ArtifactStore) -> None:
    with artifacts.staging(RUN) as folder:
        (folder / "model.json").write_text('{"v": 1}')
    with pytest.raises(StorageError) as info, artifacts.staging(RUN) as folder:
        (folder / "model.json").write_text('{"v": 2}')
    assert info.value.code == "run_exists"
    assert (artifacts.root / RUN / "model.json").read_text() == '{"v": 1}'
    assert staging_entries(artifacts) == []


def test_unwritable_root_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StorageError) as info, ArtifactStore(blocker).staging(RUN):
        pass
    assert info.value.code == "artifact_root_unwritable"


BAD_NAMES = [
    "../manifest.json",
    "..",
    "../../etc/passwd",
    "/etc/passwd",
    "%2e%2e/manifest.json",
    "..%2fmanifest.json",
    "..\\manifest.json",
    "manifest.json\x00.png",
    "manifest.json/",
    "./manifest.json",
    "MANIFEST.JSON",
    "secret.json",
    "",
]
BAD_IDS = [
    "../x",
    "..",
    "%2e%2e",
    "%2e%2e%2f%2e%2e",
    "..\\..\\x",
    "/etc",
    "/" + RUN,
    RUN + "/..",
    RUN + "\x00",
    "\x00",
    RUN.lower(),  # ULIDs are upper case; a case-insensitive file system must not alias them
    RUN[:-1],
    "A" * 300,
    "",
]


@pytest.fixture
def touched(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every path the artifact store asks the file system about or opens."""
    seen: list[Path] = []
    for name in ("is_file", "is_dir", "exists", "stat", "open", "read_bytes", "iterdir"):
        original = getattr(Path, name)

        def spy(self: Path, *args: object, _original: object = original, **kw: object) -> object:
            seen.append(self)
            return _original(self, *args, **kw)  # type: ignore[operator]

        monkeypatch.setattr(Path, name, spy)
    return seen


@pytest.fixture
def finished_run(artifacts: ArtifactStore, tmp_path: Path) -> ArtifactStore:
    with artifacts.staging(RUN) as folder:
        for name in ARTIFACTS:
            (folder / name).write_text("{}")
    (tmp_path / "secret.json").write_text('{"password": "hunter2"}')
    (artifacts.root / "secret.json").write_text('{"password": "hunter2"}')
    return artifacts


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_artifact_names_are_not_found_before_any_file_access(
    finished_run: ArtifactStore, touched: list[Path], name: str
) -> None:
    for call in (finished_run.path, finished_run.read_json):
        with pytest.raises(NotFound) as info:
            call(RUN, name)
        assert info.value.code == "artifact_not_found"
        assert info.value.status == 404
    assert touched == []


@pytest.mark.parametrize("bad_id", BAD_IDS)
def test_bad_run_ids_are_not_found_before_any_file_access(
    finished_run: ArtifactStore, touched: list[Path], bad_id: str
) -> None:
    for call in (
        lambda: finished_run.path(bad_id, "manifest.json"),
        lambda: finished_run.read_json(bad_id, "manifest.json"),
        lambda: finished_run.delete(bad_id),
        lambda: finished_run.staging(bad_id).__enter__(),
    ):
        with pytest.raises(NotFound) as info:
            call()
        assert info.value.code == "run_not_found"
        assert len(info.value.message) < 120
    assert finished_run.exists(bad_id) is False
    assert touched == []
    assert (finished_run.root / RUN / "manifest.json").is_file()  # nothing was deleted


def test_missing_artifact_of_an_existing_run_is_not_found(artifacts: ArtifactStore) -> None:
    with artifacts.staging(RUN) as folder:
        (folder / "manifest.json").write_text("{}")
    with pytest.raises(NotFound) as info:
        artifacts.path(RUN, "quality.json")
    assert info.value.code == "artifact_not_found"
    assert "is the run finished?" in info.value.message


def test_delete_removes_the_run_directory_and_leaves_no_leftovers(
    finished_run: ArtifactStore,
) -> None:
    other = run_id(2)
    with finished_run.staging(other) as folder:
        (folder / "manifest.json").write_text('{"keep": true}')
    finished_run.delete(RUN)
    assert not (finished_run.root / RUN).exists()
    assert staging_entries(finished_run) == []
    assert finished_run.read_json(other, "manifest.json") == {"keep": True}
    finished_run.delete(RUN)  # deleting twice is harmless
    assert not finished_run.exists(RUN)


def test_clean_staging_removes_leftovers_of_interrupted_runs(artifacts: ArtifactStore) -> None:
    assert artifacts.clean_staging() == 0
    for i in range(3):
        leftover = artifacts.root / STAGING / f"{run_id(i)}.dead{i}"
        leftover.mkdir(parents=True)
        (leftover / "input.parquet").write_bytes(b"x")
    with artifacts.staging(RUN) as folder:
        (folder / "model.json").write_text("{}")
    assert artifacts.clean_staging() == 3
    assert staging_entries(artifacts) == []
    assert artifacts.exists(RUN)


def test_dump_json_is_canonical() -> None:
    a = dump_json({"b": 1.5, "a": [1, {"z": "é", "y": None}]})
    b = dump_json({"a": [1, {"y": None, "z": "é"}], "b": 1.5})
    assert a == b
    assert json.loads(a) == {"a": [1, {"y": None, "z": "é"}], "b": 1.5}
    assert "é".encode() in a
