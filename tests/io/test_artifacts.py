"""Damaged run artifacts: a JSON document that no longer matches its manifest is refused.

A JSON artifact edited, truncated or overwritten after the run finished would otherwise reach
the API as wrong numbers or a crash (a 500). The store checks each document against the sha256
the manifest recorded and raises ``artifact_corrupt``, which names the run and the way back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sistack.api.app import create_app
from sistack.errors import StorageError
from sistack.io.store.artifacts import ArtifactStore, dump_json
from tests.conftest import run_file, small_settings, three_groups

RUN = "01HQWY77AT0000000000000007"
API = "/api/v1"


def write_run(root: Path, documents: dict[str, Any]) -> ArtifactStore:
    """A finished run directory holding ``documents`` and a manifest of their hashes."""
    store = ArtifactStore(root)
    with store.staging(RUN) as folder:
        recorded = {}
        for name, doc in documents.items():
            data = dump_json(doc)
            (folder / name).write_bytes(data)
            recorded[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        (folder / "manifest.json").write_bytes(dump_json({"artifacts": recorded}))
    return store


def test_an_intact_document_reads_back(tmp_path: Path) -> None:
    store = write_run(tmp_path, {"profiles.json": {"segments": [1, 2]}})
    assert store.read_json(RUN, "profiles.json") == {"segments": [1, 2]}


DAMAGE = [
    ("edited", lambda data: data.replace(b"1", b"7"), "sha256 differs"),
    ("truncated", lambda data: data[: len(data) // 2], "sha256 differs"),
    ("emptied", lambda data: b"", "sha256 differs"),
]


@pytest.mark.parametrize(("label", "damage", "why"), DAMAGE, ids=[d[0] for d in DAMAGE])
def test_a_damaged_document_is_artifact_corrupt(
    tmp_path: Path, label: str, damage: Any, why: str
) -> None:
    store = write_run(tmp_path, {"profiles.json": {"segments": [1, 2]}})
    path = tmp_path / RUN / "profiles.json"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(StorageError) as caught:
        store.read_json(RUN, "profiles.json")
    assert caught.value.code == "artifact_corrupt"
    assert why in caught.value.message
    assert f"sistack reproduce {RUN}" in caught.value.message


def test_a_document_missing_from_the_manifest_is_refused(tmp_path: Path) -> None:
    store = write_run(tmp_path, {"profiles.json": {"a": 1}})
    (tmp_path / RUN / "insights.json").write_bytes(dump_json({"b": 2}))
    with pytest.raises(StorageError, match="differs from the manifest"):
        store.read_json(RUN, "insights.json")


def test_a_manifest_that_is_not_json_is_artifact_corrupt(tmp_path: Path) -> None:
    store = write_run(tmp_path, {"profiles.json": {"a": 1}})
    (tmp_path / RUN / "manifest.json").write_bytes(b"{not json\xff")
    for name in ("manifest.json", "profiles.json"):
        with pytest.raises(StorageError) as caught:
            store.read_json(RUN, name)
        assert (caught.value.code, "not valid JSON" in caught.value.message) == (
            "artifact_corrupt",
            True,
        )


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Path, str]]:
    root = tmp_path_factory.mktemp("damaged")
    settings = small_settings(root / "home")
    data = root / "customers.csv"
    three_groups(90, seed=4).write_csv(data)
    with TestClient(create_app(settings)) as client:
        _, run_id = run_file(client, data)
        yield client, settings.artifacts / run_id, run_id


# (artifact damaged, request that reads it)
ROUTES = [
    ("profiles.json", "get", "/segments"),
    ("insights.json", "get", "/insights"),
    ("quality.json", "get", "/quality"),
    ("profiles.json", "post", "/simulate"),
]


@pytest.mark.parametrize(("artifact", "method", "suffix"), ROUTES)
def test_api_answers_a_damaged_artifact_with_503_not_500(
    finished: tuple[TestClient, Path, str], artifact: str, method: str, suffix: str
) -> None:
    client, folder, run_id = finished
    path = folder / artifact
    original = path.read_bytes()
    path.write_bytes(json.dumps({"segments": "not a list"}).encode())
    try:
        body = {"levers": [{"lever": "price", "params": {"change": {"1": 0.05}}}]}
        url = f"{API}/runs/{run_id}{suffix}"
        response = client.post(url, json=body) if method == "post" else client.get(url)
    finally:
        path.write_bytes(original)
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert (error["code"], artifact in error["message"]) == ("artifact_corrupt", True)
    assert "Traceback" not in response.text
    restored = url if method == "get" else f"{API}/runs/{run_id}/segments"
    assert client.get(restored).status_code == 200
