"""POST /api/v1/runs/{id}/reproduce when the recomputation does not match the stored run.

The stored run is changed behind the API's back (``tests.stored``): one artifact restated with
its manifest entry, or another k in its stored config. The answer must say ``identical: false``
and name exactly the artifacts whose hashes differ; the new run holds what was recomputed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sistack.api.app import create_app
from sistack.config import Settings
from sistack.service.runs import COMPARED, RunService
from tests.api.test_api import API, start_run, upload
from tests.stored import hashes_differing, other_k, restate, with_k


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as fresh:
        yield fresh


@pytest.fixture
def run(client: TestClient, customer_csv: Path) -> dict[str, Any]:
    uploaded = upload(client, customer_csv)
    assert uploaded.status_code == 201, uploaded.text
    made = start_run(client, uploaded.json()["id"])
    assert made["status"] == "succeeded", made
    return made


def test_a_restated_profile_is_named(
    client: TestClient, runs: RunService, run: dict[str, Any]
) -> None:
    run_id = run["id"]
    original = runs.profiles(run_id)
    edited = json.loads(json.dumps(original))
    edited["profiles"][1]["customers"] += 1  # segment 1 claims one customer more
    restate(runs, run_id, "profiles.json", edited)

    response = client.post(f"{API}/runs/{run_id}/reproduce")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["run_id"], body["identical"], body["differing"]) == (
        run_id,
        False,
        ["profiles.json"],
    )
    assert runs.profiles(body["new_run_id"]) == original
    again = client.get(f"{API}/runs/{body['new_run_id']}").json()
    assert (again["status"], again["parent_id"]) == ("succeeded", run_id)


def test_another_stored_k_names_everything_k_decides(
    client: TestClient, runs: RunService, run: dict[str, Any]
) -> None:
    run_id = run["id"]
    k = other_k(run["k"])
    with_k(runs, run_id, k)

    body = client.post(f"{API}/runs/{run_id}/reproduce").json()
    expected = [n for n in COMPARED if n not in ("features.parquet", "quality.json")]
    assert (body["identical"], body["differing"]) == (False, expected)
    assert hashes_differing(runs, run_id, body["new_run_id"]) == expected
    segments = client.get(f"{API}/runs/{body['new_run_id']}/segments").json()
    assert (segments["k"], len(segments["segments"])) == (k, k)
    assert sum(s["customers"] for s in segments["segments"]) == 300
