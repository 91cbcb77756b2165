"""Twenty concurrent uploads and runs: all complete, none lost or duplicated, no lock errors."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sistack.api.app import create_app
from tests.conftest import small_settings, three_groups

API = "/api/v1"
RUNS = 20


def _upload_and_run(client: TestClient, path: Path, i: int) -> str:
    with path.open("rb") as fh:
        uploaded = client.post(f"{API}/datasets", files={"file": (f"c{i}.csv", fh, "text/csv")})
    assert uploaded.status_code == 201, uploaded.text
    started = client.post(
        f"{API}/runs", json={"dataset_id": uploaded.json()["id"], "name": f"run {i}", "seed": i}
    )
    assert started.status_code == 202, started.text
    return str(started.json()["id"])


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_twenty_concurrent_uploads_and_runs(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else None
    settings = small_settings(tmp_path / "home", database_url=url, job_workers=2)
    files = []
    for i in range(RUNS):
        path = tmp_path / f"c{i}.csv"
        three_groups(60 + i, seed=i).write_csv(path)
        files.append(path)
    with TestClient(create_app(settings)) as client:
        with ThreadPoolExecutor(max_workers=10) as pool:
            ids = list(pool.map(_upload_and_run, [client] * RUNS, files, range(RUNS)))
        for run_id in ids:
            client.app.state.jobs.wait(run_id, timeout=300)  # type: ignore[attr-defined]
        page: dict[str, Any] = client.get(f"{API}/runs", params={"limit": 100}).json()
    assert len(set(ids)) == RUNS
    assert page["total"] == RUNS
    listed = {r["id"]: r for r in page["items"]}
    assert set(listed) == set(ids)
    for i, run_id in enumerate(ids):
        run = listed[run_id]
        assert run["status"] == "succeeded", run["error"]
        assert run["name"] == f"run {i}"
        assert run["n_customers"] == 60 + i  # each run saw its own file
    runs_dir = settings.artifacts
    assert sorted(p.name for p in runs_dir.iterdir() if p.name != ".staging") == sorted(ids)
