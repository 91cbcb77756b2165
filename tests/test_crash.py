"""Crashes: ``kill -9`` of the server in the middle of a run, and an unwritable artifact root.

The first test runs the real ``sistack serve`` in a subprocess with its own home and port. A small
run completes; a 300,000-customer run is started and the server is killed (SIGKILL) while that run
is in progress. After a restart the interrupted run is ``failed`` with code ``interrupted``, no
directory or staging leftover exists for it, and the completed run is intact (``sistack doctor``).
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from sistack.api.app import create_app
from sistack.cli import app as cli_app
from sistack.demo import write_dataset
from tests.conftest import SMALL_ENV, run_file, small_settings, three_groups
from tests.live import API, server, upload_and_run, wait_for

BIG = 300_000  # customers: the run takes several seconds, long enough to be killed in flight


def doctor(home: Path) -> dict[str, Any]:
    result = CliRunner().invoke(cli_app, ["doctor", "--json"], env={"SISTACK_HOME": str(home)})
    data: dict[str, Any] = json.loads(result.stdout)
    assert result.exit_code == (0 if data["ok"] else 3)
    return data


@pytest.mark.slow
def test_kill_9_in_the_middle_of_a_run(tmp_path: Path) -> None:
    home, log = tmp_path / "home", tmp_path / "server.log"
    small, big = tmp_path / "small.csv", tmp_path / "big.csv"
    three_groups(90, seed=6).write_csv(small)
    write_dataset(big, customers=BIG, seed=3)
    runs = home / "runs"

    with server(home, log) as (process, client):
        completed = upload_and_run(client, small)
        done = ("succeeded", "failed")
        assert wait_for(client, completed, lambda r: r["status"] in done)["status"] == ("succeeded")
        manifest = client.get(f"{API}/runs/{completed}/manifest").json()
        interrupted = upload_and_run(client, big)
        # "running" at progress 0 is the moment the job is claimed; wait until a stage has begun.
        started = wait_for(client, interrupted, lambda r: r["progress"] > 0)
        assert started["status"] == "running", started
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    # What a crash in the write stage leaves behind: a staging directory of the dead run.
    leftover = runs / ".staging" / f"{interrupted}.dead"
    leftover.mkdir(parents=True, exist_ok=True)
    (leftover / "assignments.parquet").write_bytes(b"half")
    assert not doctor(home)["ok"]

    with server(home, log) as (_, client):
        run = client.get(f"{API}/runs/{interrupted}").json()
        assert (run["status"], run["error"]["code"]) == ("failed", "interrupted")
        assert "interrupted" in run["error"]["message"]
        assert not (runs / interrupted).exists()
        assert not any((runs / ".staging").iterdir())
        again = client.get(f"{API}/runs/{interrupted}/manifest")
        assert (again.status_code, again.json()["error"]["code"]) == (409, "run_not_ready")
        assert client.get(f"{API}/runs/{completed}/manifest").json() == manifest
    report = doctor(home)
    assert (report["ok"], report["runs_checked"], report["problems"]) == (True, 1, [])
    assert "Traceback" not in log.read_text()


def test_an_unwritable_artifact_root_fails_the_run_cleanly(tmp_path: Path) -> None:
    """The artifact root lies under a regular file, so no directory can be made there."""
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    settings = small_settings(tmp_path / "home", artifact_root=blocker / "runs")
    data = tmp_path / "customers.csv"
    three_groups(60, seed=8).write_csv(data)

    with TestClient(create_app(settings)) as client:
        _, run_id = run_file(client, data)
        run = client.get(f"{API}/runs/{run_id}").json()
    assert (run["status"], run["error"]["code"]) == ("failed", "artifact_root_unwritable")
    assert str(blocker) in run["error"]["message"]
    assert blocker.read_text() == "a file, not a folder"

    env = {
        "SISTACK_HOME": str(settings.home),
        "SISTACK_ARTIFACT_ROOT": str(blocker / "runs"),
        **SMALL_ENV,
    }
    result = CliRunner().invoke(cli_app, ["run", str(data), "--json"], env=env)
    out = json.loads(result.stdout)
    # Not the user's input: exit code 1, as for internal errors.
    assert (result.exit_code, out["status"], out["error"]["code"]) == (
        1,
        "failed",
        "artifact_root_unwritable",
    )
    assert "Traceback" not in result.output
    assert blocker.read_text() == "a file, not a folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "customers.csv", "home"]
    assert not (settings.home / "runs").exists()
