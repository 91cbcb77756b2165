"""The production profile end to end: ``sistack worker`` processes on the real PostgreSQL.

Two worker processes share one database and one artifact root; twenty runs are queued. Every
run must succeed, be claimed exactly once (the ``claims`` column and the workers' JSON logs
agree), and have artifacts that match their manifest. The API in queue mode only enqueues, and
``serve --workers N`` refuses inline execution.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from sistack.api.app import create_app
from sistack.cli import app as cli_app
from sistack.io.store.metadata import QUEUED, SUCCEEDED
from sistack.service.jobs import Worker
from sistack.service.runs import RunService
from tests.conftest import SMALL_ENV, run_file, small_settings, three_groups

WORKER = [sys.executable, "-c", "from sistack.cli import main; main()", "worker"]
API = "/api/v1"


def log_lines(path: Path) -> list[dict[str, Any]]:
    """Every line a worker wrote must be one JSON object."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_until(check: Any, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


@pytest.mark.postgres
@pytest.mark.slow
def test_two_workers_complete_twenty_runs_exactly_once(postgres_url: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = small_settings(home, database_url=postgres_url)
    svc = RunService(settings)  # migrates the fresh database before the workers start
    data = tmp_path / "customers.csv"
    three_groups(90, seed=4).write_csv(data)
    dataset, _ = svc.add_dataset(data, keep=False)

    env = {k: v for k, v in os.environ.items() if not k.startswith("SISTACK_")}
    env.update(
        SISTACK_HOME=str(home),
        SISTACK_DATABASE_URL=postgres_url,
        SISTACK_EXECUTION="queue",
        SISTACK_LOG_FORMAT="json",
        SISTACK_HEARTBEAT_SECONDS="0.5",
        **SMALL_ENV,
    )
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    workers = []
    for log in logs:
        with log.open("wb") as out:
            workers.append(
                subprocess.Popen(
                    [*WORKER, "--poll", "0.05"], env=env, stdout=out, stderr=subprocess.STDOUT
                )
            )
    try:
        wait_until(
            lambda: all("worker started" in log.read_text() for log in logs),
            timeout=30,
            what="the workers did not start",
        )
        started = time.monotonic()
        run_ids = [svc.create_run(dataset.id, name=f"run {i}").id for i in range(20)]

        def all_done() -> bool:
            items, _ = svc.list_runs(limit=100)
            return all(r.status not in (QUEUED, "running") for r in items)

        wait_until(all_done, timeout=90, what="the runs did not finish")
        elapsed = time.monotonic() - started
        for process in workers:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(timeout=30) for process in workers]
    finally:
        for process in workers:
            if process.poll() is None:
                process.kill()
    assert codes == [0, 0], [log.read_text()[-2000:] for log in logs]

    # The rows: every run succeeded and was claimed exactly once, by one of the two workers.
    lines = [(i, line) for i, log in enumerate(logs) for line in log_lines(log)]
    worker_ids = {line["worker"] for _, line in lines if line["message"] == "worker started"}
    assert len(worker_ids) == 2
    rows = [svc.get_run(run_id) for run_id in run_ids]
    assert [(r.status, r.claims, r.claimed_by in worker_ids) for r in rows] == [
        (SUCCEEDED, 1, True)
    ] * 20

    # The logs agree: one "run claimed" line per run over both workers, both workers busy,
    # and every line about a run names it.
    claims = Counter(line["run_id"] for _, line in lines if line["message"] == "run claimed")
    assert claims == Counter(run_ids)
    per_worker = Counter(i for i, line in lines if line["message"] == "run claimed")
    assert set(per_worker) == {0, 1}, per_worker
    for _, line in lines:
        if line["message"].startswith("run "):
            assert line["run_id"] in run_ids, line
    assert "stopping after the current run" in logs[0].read_text()

    # The files: each manifest's sha256 match the files on disk, and doctor agrees.
    for run_id in run_ids:
        manifest = svc.manifest(run_id)
        for name, info in manifest["artifacts"].items():
            digest = hashlib.sha256(svc.artifacts.path(run_id, name).read_bytes()).hexdigest()
            assert digest == info["sha256"], (run_id, name)
    assert not any((home / "runs" / ".staging").glob("*"))
    result = CliRunner().invoke(
        cli_app,
        ["doctor", "--json"],
        env={"SISTACK_HOME": str(home), "SISTACK_DATABASE_URL": postgres_url},
    )
    report = json.loads(result.stdout)
    assert (report["ok"], report["runs_checked"], report["problems"]) == (True, 20, [])
    svc.close()
    print(f"20 runs on 2 workers: {elapsed:.1f} s; per worker {dict(per_worker)}")


def test_the_api_in_queue_mode_only_enqueues(tmp_path: Path) -> None:
    settings = small_settings(tmp_path / "home", execution="queue")
    data = tmp_path / "c.csv"
    three_groups(60, seed=8).write_csv(data)
    with TestClient(create_app(settings)) as client:
        _, run_id = run_file(client, data, wait=False)
        time.sleep(0.2)
        assert client.get(f"{API}/runs/{run_id}").json()["status"] == "queued"
    # A restart of the API in queue mode leaves the queue alone (inline mode would fail it).
    with TestClient(create_app(settings)) as client:
        assert client.get(f"{API}/runs/{run_id}").json()["status"] == "queued"
        ready = client.get("/ready")
        assert (ready.status_code, ready.json()) == (
            200,
            {
                "status": "ready",
                "execution": "queue",
                "checks": {"database": "ok", "artifact_root": "ok"},
            },
        )
        svc = client.app.state.service  # type: ignore[attr-defined]
        assert Worker(svc, poll=0.01).run(once=True) == 1
        client.app.state.jobs.wait(run_id, timeout=10)  # type: ignore[attr-defined]
        run = client.get(f"{API}/runs/{run_id}").json()
        assert run["status"] == "succeeded"


def test_ready_says_what_is_wrong(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    settings = small_settings(tmp_path / "home", artifact_root=blocker / "runs")
    with TestClient(create_app(settings)) as client:
        ready = client.get("/ready")
    assert (ready.status_code, ready.json()["status"]) == (503, "not_ready")
    checks = ready.json()["checks"]
    assert checks["database"] == "ok"
    assert str(blocker) in checks["artifact_root"]


def test_serve_refuses_several_processes_with_inline_execution(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli_app, ["serve", "--workers", "2"], env={"SISTACK_HOME": str(tmp_path)}
    )
    assert result.exit_code == 2
    assert "SISTACK_EXECUTION=queue" in result.output


@pytest.mark.postgres
@pytest.mark.slow
def test_a_worker_killed_mid_run_leaves_it_failed_and_never_half_written(
    postgres_url: str, tmp_path: Path
) -> None:
    from sistack.demo import write_dataset

    home = tmp_path / "home"
    svc = RunService(small_settings(home, database_url=postgres_url))
    big, small = tmp_path / "big.csv", tmp_path / "small.csv"
    write_dataset(big, customers=150_000, seed=3)
    three_groups(90, seed=4).write_csv(small)
    doomed = svc.create_run(svc.add_dataset(big, keep=False)[0].id).id
    env = {k: v for k, v in os.environ.items() if not k.startswith("SISTACK_")}
    env.update(
        SISTACK_HOME=str(home),
        SISTACK_DATABASE_URL=postgres_url,
        SISTACK_LOG_FORMAT="json",
        SISTACK_HEARTBEAT_SECONDS="0.2",
        SISTACK_HEARTBEAT_TIMEOUT="1",
        **SMALL_ENV,
    )
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    with first_log.open("wb") as out:
        first = subprocess.Popen(
            [*WORKER, "--poll", "0.05"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_until(
            lambda: svc.get_run(doomed).progress > 1, timeout=60, what="the run did not start"
        )
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=30) == -signal.SIGKILL
    finally:
        if first.poll() is None:
            first.kill()
    assert svc.get_run(doomed).status == "running"  # nobody knows yet
    behind = svc.create_run(svc.add_dataset(small, keep=False)[0].id).id  # queued after it
    time.sleep(1.1)  # the dead worker's last heartbeat is now older than the timeout
    with second_log.open("wb") as out:
        second = subprocess.run(
            [*WORKER, "--once"], env=env, stdout=out, stderr=subprocess.STDOUT, timeout=60
        )
    assert second.returncode == 0, second_log.read_text()
    dead = svc.get_run(doomed)
    assert (dead.status, dead.error_code, dead.claims) == ("failed", "interrupted", 1)
    assert not (home / "runs" / doomed).exists()
    assert not any((home / "runs" / ".staging").glob("*"))
    assert svc.get_run(behind).status == SUCCEEDED  # the sweep did not stop the queue
    swept = [line for line in log_lines(second_log) if "interrupted" in line["message"]]
    assert [line["run_id"] for line in swept] == [doomed]
    svc.close()
