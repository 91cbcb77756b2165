"""Inline execution across a restart: a graceful stop lets the running run finish and leaves the
queue for the next start, which runs it; only a run a dead process left running fails."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from sistack.api.app import create_app
from sistack.service.jobs import JobRunner
from sistack.service.runs import RunService
from tests.conftest import small_settings, three_groups


def wait_until(check: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_graceful_stop_finishes_the_running_run_and_keeps_the_rest_queued(
    tmp_path: Path,
) -> None:
    settings = small_settings(tmp_path / "home")
    data = tmp_path / "customers.csv"
    three_groups(3000, seed=3).write_csv(data)
    service = RunService(settings)
    try:
        dataset, _ = service.add_dataset(data, keep=False)
        runs = [service.create_run(dataset.id).id for _ in range(3)]
        jobs = JobRunner(service, workers=1)
        for run_id in runs:
            jobs.submit(run_id)
        wait_until(lambda: service.get_run(runs[0]).status == "running")
        jobs.shutdown(wait=True)
        statuses = [service.get_run(run_id).status for run_id in runs]
    finally:
        service.close()
    assert statuses == ["succeeded", "queued", "queued"]

    # The next start runs what was queued.
    with TestClient(create_app(settings)) as client:
        for run_id in runs[1:]:
            wait_until(
                lambda r=run_id: client.get(f"/api/v1/runs/{r}").json()["status"] != "queued"
            )
            client.app.state.jobs.wait(run_id, timeout=60)  # type: ignore[attr-defined]
        after = [client.get(f"/api/v1/runs/{r}").json()["status"] for r in runs]
    assert after == ["succeeded", "succeeded", "succeeded"]


def test_a_run_left_running_by_a_dead_process_fails_at_the_next_start(tmp_path: Path) -> None:
    settings = small_settings(tmp_path / "home")
    data = tmp_path / "customers.csv"
    three_groups(90, seed=4).write_csv(data)
    service = RunService(settings)
    try:
        dataset, _ = service.add_dataset(data, keep=False)
        dead = service.create_run(dataset.id).id
        claimed = service.store.claim(dead, "host:1:gone", now=dt.datetime.now(dt.UTC))
        waiting = service.create_run(dataset.id).id
    finally:
        service.close()
    assert claimed
    with TestClient(create_app(settings)) as client:
        client.app.state.jobs.wait(waiting, timeout=60)  # type: ignore[attr-defined]
        failed = client.get(f"/api/v1/runs/{dead}").json()
        done = client.get(f"/api/v1/runs/{waiting}").json()
    assert (failed["status"], failed["error"]["code"]) == ("failed", "interrupted")
    assert done["status"] == "succeeded"
