"""The run queue: claims, heartbeats and the stale-run sweep on SQLite and PostgreSQL.

Claims are checked by racing threads (each with its own worker id) over one table of queued runs:
every run must be claimed exactly once. The sweep is checked with heartbeats set by hand, so no
test waits for a timeout to pass.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from pathlib import Path

import pytest

from sistack.config import Settings
from sistack.errors import Conflict
from sistack.io.store.artifacts import STAGING
from sistack.io.store.metadata import FAILED, QUEUED, RUNNING, SUCCEEDED, MetadataStore, RunRecord
from sistack.service.jobs import Worker
from sistack.service.queue import sweep_stale, utcnow
from sistack.service.runs import RunService, new_id
from tests.conftest import small_settings

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'queue.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def queued(n: int) -> list[RunRecord]:
    created = utcnow()
    return [
        RunRecord(
            id=new_id(),
            dataset_id=new_id(),
            parent_id=None,
            name=f"run {i}",
            status=QUEUED,
            stage="queued",
            progress=0,
            config={},
            error_code=None,
            error_message=None,
            n_customers=None,
            k=None,
            summary=None,
            created_at=created,
            started_at=None,
            finished_at=None,
        )
        for i in range(n)
    ]


def test_concurrent_claimers_never_get_the_same_run(db_url: str) -> None:
    store = MetadataStore(db_url)
    runs = queued(40)
    for record in runs:
        store.add_run(record)
    claimed: dict[str, list[str]] = {}
    start = threading.Barrier(6)

    def claimer(worker: str) -> None:
        got = claimed.setdefault(worker, [])
        start.wait()
        while (record := store.claim_next(worker, now=utcnow())) is not None:
            assert (record.status, record.claimed_by, record.claims) == (RUNNING, worker, 1)
            got.append(record.id)

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    every = [run_id for got in claimed.values() for run_id in got]
    assert Counter(every).most_common(1)[0][1] == 1  # nobody got a run twice
    assert sorted(every) == sorted(r.id for r in runs)  # and every run was claimed
    for worker, got in claimed.items():
        for run_id in got:
            row = store.get_run(run_id)
            assert (row.status, row.claimed_by, row.claims) == (RUNNING, worker, 1)
    assert store.claim_next("late", now=utcnow()) is None  # the queue is empty
    store.close()


def test_claim_of_a_given_run_is_a_compare_and_set(db_url: str) -> None:
    store = MetadataStore(db_url)
    (record,) = queued(1)
    store.add_run(record)
    now = utcnow()
    assert store.claim(record.id, "a", now=now) is True
    assert store.claim(record.id, "b", now=now) is False
    assert store.update_claimed(record.id, "b", progress=50) is False  # not b's run
    assert store.update_claimed(record.id, "a", progress=50) is True
    assert store.requeue(record.id, "a") is True
    row = store.get_run(record.id)
    assert (row.status, row.claimed_by, row.heartbeat_at, row.claims) == (QUEUED, None, None, 1)
    assert store.claim_next("b", now=now) is not None
    assert store.get_run(record.id).claims == 2
    store.close()


def _service(tmp_path: Path, db_url: str, **overrides: object) -> RunService:
    settings = small_settings(tmp_path / "home", database_url=db_url, **overrides)
    return RunService(settings)


def test_a_stale_heartbeat_is_failed_as_interrupted_by_the_next_sweep(
    db_url: str, tmp_path: Path
) -> None:
    svc = _service(tmp_path, db_url, heartbeat_timeout=60)
    stale, alive, waiting = queued(3)
    for record in (stale, alive, waiting):
        svc.store.add_run(record)
    now = utcnow()
    assert svc.store.claim(stale.id, "dead-host:1:aaaaaa", now=now - dt.timedelta(seconds=61))
    assert svc.store.claim(alive.id, "live-host:2:bbbbbb", now=now - dt.timedelta(seconds=30))
    svc.store.update_claimed(stale.id, "dead-host:1:aaaaaa", stage="segment", progress=40)
    leftover = svc.artifacts.root / STAGING / f"{stale.id}.0badf00d"
    leftover.mkdir(parents=True)
    (leftover / "assignments.parquet").write_bytes(b"half")

    # What the next worker's loop does before it claims: only the silent run is failed.
    assert sweep_stale(svc) == [stale.id]
    row = svc.store.get_run(stale.id)
    assert (row.status, row.error_code) == (FAILED, "interrupted")
    assert "'segment'" in (row.error_message or "")
    assert not leftover.exists()
    assert svc.store.get_run(alive.id).status == RUNNING
    assert svc.store.get_run(waiting.id).status == QUEUED
    # The dead worker comes back: it cannot write into the run any more.
    assert svc.store.update_claimed(stale.id, "dead-host:1:aaaaaa", status=SUCCEEDED) is False
    assert svc.store.get_run(stale.id).status == FAILED
    assert sweep_stale(svc) == []  # idempotent
    svc.close()


def test_a_worker_executes_queued_runs_and_refuses_runs_claimed_by_others(
    tmp_path: Path, write_customers: object
) -> None:
    svc = _service(tmp_path, f"sqlite:///{tmp_path / 'w.db'}", heartbeat_seconds=0.05)
    data = write_customers(tmp_path / "c.csv", customers=120)  # type: ignore[operator]
    dataset, _ = svc.add_dataset(data, keep=False)
    first = svc.create_run(dataset.id)
    second = svc.create_run(dataset.id)
    assert svc.store.claim(second.id, "someone-else", now=utcnow())
    with pytest.raises(Conflict):
        svc.execute(second.id)
    worker = Worker(svc, poll=0.01)
    assert worker.run(once=True) == 1
    done = svc.get_run(first.id)
    assert (done.status, done.claimed_by, done.claims) == (SUCCEEDED, worker.id, 1)
    assert done.heartbeat_at is not None and done.heartbeat_at >= done.started_at  # type: ignore[operator]
    assert svc.get_run(second.id).claimed_by == "someone-else"
    assert worker.run(once=True) == 1  # nothing queued: the loop claims nothing new
    assert worker.completed == [first.id]
    svc.close()


def test_a_held_run_cannot_be_taken_by_a_worker(tmp_path: Path, write_customers: object) -> None:
    """``create_run(hold=True)`` (CLI runs, reproduce) is born claimed by its own process."""
    svc = _service(tmp_path, f"sqlite:///{tmp_path / 'h.db'}")
    data = write_customers(tmp_path / "c.csv", customers=120)  # type: ignore[operator]
    dataset, _ = svc.add_dataset(data, keep=False)
    held = svc.create_run(dataset.id, hold=True)
    assert svc.store.claim_next("worker", now=utcnow()) is None
    assert svc.execute(held.id).status == SUCCEEDED
    assert svc.get_run(held.id).claims == 1
    svc.close()


def test_abandon_gives_the_current_run_back(tmp_path: Path) -> None:
    svc = _service(tmp_path, f"sqlite:///{tmp_path / 'a.db'}")
    (record,) = queued(1)
    svc.store.add_run(record)
    worker = Worker(svc)
    assert svc.store.claim_next(worker.id, now=utcnow()) is not None
    worker.current = record.id
    staging = svc.artifacts.root / STAGING / f"{record.id}.12345678"
    staging.mkdir(parents=True)
    assert worker.abandon() == record.id
    assert worker.stopping
    row = svc.store.get_run(record.id)
    assert (row.status, row.stage, row.claimed_by) == (QUEUED, "queued", None)
    assert not staging.exists()
    svc.close()


def test_settings_reject_unknown_modes() -> None:
    with pytest.raises(ValueError, match="inline"):
        Settings(execution="threads")  # type: ignore[arg-type]
