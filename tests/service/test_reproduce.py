"""Reproduce when the recomputation does not match the stored run: it must say so and name
exactly the artifacts that differ.

Each test makes one run, then changes one thing the recomputation depends on: a stored
artifact (restated with its manifest entry, as a run written by another version would hold it),
the stored config, or the stored input snapshot. The expected differing names follow from what
was changed (k does not touch the cleaned features or the quality report; one restated file is
the only difference), and the numbers of the new run are checked against the change.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from sistack.errors import StorageError
from sistack.service.runs import COMPARED, RunService
from tests.stored import hashes_differing, other_k, restate, with_k


@pytest.fixture
def run_id(runs: RunService, customer_csv: Path) -> str:
    dataset, inspection = runs.add_dataset(customer_csv, keep=False)
    record = runs.execute(runs.create_run(dataset.id).id, raw=inspection.raw)
    assert record.status == "succeeded", record.error_message
    return record.id


def test_an_untouched_run_is_identical(runs: RunService, run_id: str) -> None:
    """The control: the same run with nothing changed reproduces identically."""
    result = runs.reproduce(run_id)
    assert (result.identical, result.differing) == (True, [])
    assert hashes_differing(runs, run_id, result.new_run_id) == []


def test_a_restated_artifact_is_the_only_one_named(runs: RunService, run_id: str) -> None:
    original = runs.profiles(run_id)
    edited = json.loads(json.dumps(original))
    edited["profiles"][0]["revenue"] += 1.0  # the population's revenue, one unit more
    restate(runs, run_id, "profiles.json", edited)

    result = runs.reproduce(run_id)
    assert (result.run_id, result.identical, result.differing) == (
        run_id,
        False,
        ["profiles.json"],
    )
    assert result.differing == hashes_differing(runs, run_id, result.new_run_id)
    # The recomputation gives back what the run held before the edit.
    assert runs.profiles(result.new_run_id) == original
    assert runs.get_run(result.new_run_id).parent_id == run_id


def test_a_different_stored_config_names_what_k_changes(runs: RunService, run_id: str) -> None:
    k = other_k(runs.get_run(run_id).k or 0)
    with_k(runs, run_id, k)

    result = runs.reproduce(run_id)
    assert result.identical is False
    # k changes the segmentation and everything built on it; the cleaned features and the
    # quality report come before it and stay identical.
    unchanged = ("features.parquet", "quality.json")
    assert result.differing == [n for n in COMPARED if n not in unchanged]
    assert result.differing == hashes_differing(runs, run_id, result.new_run_id)
    assert runs.get_run(result.new_run_id).k == k
    segments = pl.read_parquet(runs.assignments_path(result.new_run_id)).get_column("segment")
    assert sorted(segments.unique().to_list()) == list(range(1, k + 1))


def test_an_altered_input_snapshot_changes_the_results(runs: RunService, run_id: str) -> None:
    snapshot = runs.artifacts.path(run_id, "input.parquet")
    frame = pl.read_parquet(snapshot)  # every column is stored as read: text
    customer = frame.get_column("ID")[len(frame) // 2]
    wines = pl.col("MntWines").cast(pl.Int64)
    frame.with_columns(
        pl.when(pl.col("ID") == customer)
        .then(wines + 1000)
        .otherwise(wines)
        .cast(pl.String)
        .alias("MntWines")
    ).write_parquet(snapshot)

    result = runs.reproduce(run_id)
    assert result.identical is False
    assert {"features.parquet", "assignments.parquet", "profiles.json"} <= set(result.differing)
    # The snapshot no longer matches the sha256 the run recorded: named first.
    assert result.differing == ["input.parquet", *hashes_differing(runs, run_id, result.new_run_id)]
    before = runs.profiles(run_id)["profiles"][0]["revenue"]
    after = runs.profiles(result.new_run_id)["profiles"][0]["revenue"]
    assert after - before == pytest.approx(1000.0)


def test_a_damaged_artifact_is_not_reported_identical(runs: RunService, run_id: str) -> None:
    path = runs.artifacts.path(run_id, "profiles.json")
    path.write_bytes(path.read_bytes().replace(b"1", b"7"))
    result = runs.reproduce(run_id)
    assert result.identical is False
    assert "profiles.json" in result.differing


def test_a_deleted_artifact_is_named(runs: RunService, run_id: str) -> None:
    runs.artifacts.path(run_id, "charts.json").unlink()
    result = runs.reproduce(run_id)
    assert result.identical is False and result.differing == ["charts.json"]


def test_an_unreadable_input_snapshot_is_a_clear_error(runs: RunService, run_id: str) -> None:
    runs.artifacts.path(run_id, "input.parquet").write_bytes(b"PAR1 not a parquet file PAR1")
    with pytest.raises(StorageError) as caught:
        runs.reproduce(run_id)
    assert caught.value.code == "artifact_corrupt"
    assert "input snapshot (input.parquet) cannot be read" in caught.value.message
