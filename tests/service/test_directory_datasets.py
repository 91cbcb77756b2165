"""A dataset that is a directory of Parquet part files (what ``sistack run URI --engine spark``
registers): it runs like the same rows in one file, its run snapshot links the parts, and
doctor and reproduce verify them part by part."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest

from sistack.demo import generate_transactions
from sistack.io.parts import part_files, sha256_parts, size_of
from sistack.service.doctor import CHANGED_FILE, diagnose
from sistack.service.runs import RunService

# Part files (written out of name order) and the rows each holds, 0-based [start, stop).
SPLIT = {"part-00001-x.snappy.parquet": (500, 2500), "part-00000-x.snappy.parquet": (0, 500)}
LAST = "part-00002-x.snappy.parquet"  # the rest


@pytest.fixture
def orders() -> pl.DataFrame:
    """Generated transactions as text (as Spark writes a CSV), with two planted issues: a
    currency sign on row 7 (first part) and no customer id on row 2600 (last part)."""
    rows = generate_transactions(300, seed=11)[0].with_columns(pl.all().cast(pl.String))
    row = pl.int_range(1, pl.len() + 1)
    return rows.with_columns(
        amount=pl.when(row == 7).then(pl.lit("$12.50")).otherwise(pl.col("amount")),
        customer_id=pl.when(row == 2600).then(None).otherwise(pl.col("customer_id")),
    )


def _write_parts(rows: pl.DataFrame, folder: Path) -> None:
    folder.mkdir()
    for name, (start, stop) in SPLIT.items():
        rows.slice(start, stop - start).write_parquet(folder / name)
    rows.slice(2500).write_parquet(folder / LAST)


def test_a_directory_dataset_runs_like_its_rows_in_one_file(
    runs: RunService, orders: pl.DataFrame, tmp_path: Path
) -> None:
    single = tmp_path / "orders.parquet"
    orders.write_parquet(single)
    folder = tmp_path / "orders"
    _write_parts(orders, folder)
    one, _ = runs.add_dataset(single, keep=False)
    parts, _ = runs.add_dataset(folder, filename="orders", keep=True)
    stored = runs.settings.datasets_dir / parts.id / "parts"
    assert not folder.exists()  # moved into the dataset store, like an upload
    assert parts.info["path"] == str(stored)
    assert (parts.n_rows, parts.sha256, parts.size_bytes) == (
        orders.height,
        sha256_parts(stored),
        size_of(stored),
    )
    assert (parts.shape, parts.info["mapping"]) == (one.shape, one.info["mapping"])

    a = runs.execute(runs.create_run(one.id).id)
    b = runs.execute(runs.create_run(parts.id).id)
    assert (a.status, b.status) == ("succeeded", "succeeded"), b.error_message
    quality = runs.quality(b.id)
    assert quality == runs.quality(a.id)
    issues = {(i["code"], tuple(i["rows"])) for i in quality["issues"] if i["rows"]}
    assert {("cleaned_number", (7,)), ("missing_customer_id", (2600,))} <= issues
    for name in ("features.parquet", "assignments.parquet"):
        mine = pl.read_parquet(runs.artifacts.path(b.id, name))
        assert mine.equals(pl.read_parquet(runs.artifacts.path(a.id, name))), name

    # The snapshot: links to the dataset's parts, listed and hashed one by one.
    snapshot = runs.artifacts.snapshot(b.id)
    names = [p.name for p in part_files(stored)]
    assert names == sorted([*SPLIT, LAST])
    assert sorted(p.name for p in snapshot.iterdir()) == names
    for name in names:
        assert os.stat(snapshot / name).st_ino == os.stat(stored / name).st_ino
    manifest = runs.manifest(b.id)
    assert sorted(n for n in manifest["artifacts"] if n.startswith("input")) == [
        f"input.parquet/{n}" for n in names
    ]
    assert (manifest["input"]["sha256"], manifest["input"]["rows"]) == (parts.sha256, 3331)
    assert diagnose(runs.store, runs.artifacts).problems == ()

    again = runs.reproduce(b.id)
    assert (again.identical, again.differing) == (True, [])
    for name in names:  # the reproduction links the same bytes again
        inode = os.stat(runs.artifacts.snapshot(again.new_run_id) / name).st_ino
        assert inode == os.stat(stored / name).st_ino


def test_a_changed_part_of_a_snapshot_is_reported(
    runs: RunService, orders: pl.DataFrame, tmp_path: Path
) -> None:
    folder = tmp_path / "orders"
    _write_parts(orders, folder)
    dataset, _ = runs.add_dataset(folder, filename="orders", keep=False)
    run = runs.execute(runs.create_run(dataset.id).id)
    assert run.status == "succeeded", run.error_message
    # The same rows in other bytes: the link is replaced, the dataset keeps its part.
    victim = runs.artifacts.snapshot(run.id) / LAST
    same_rows = pl.read_parquet(victim)
    victim.unlink()
    same_rows.write_parquet(victim, compression="uncompressed")

    problems = diagnose(runs.store, runs.artifacts).problems
    assert [(p.kind, p.path) for p in problems] == [
        (CHANGED_FILE, f"{run.id}/input.parquet/{LAST}")
    ]
    result = runs.reproduce(run.id)
    assert (result.identical, result.differing) == (False, ["input.parquet"])
    assert sha256_parts(folder) == dataset.sha256


@pytest.mark.parametrize("change", ["added", "edited", "removed"])
def test_parts_changed_after_registration_fail_the_run(
    runs: RunService, orders: pl.DataFrame, tmp_path: Path, change: str
) -> None:
    """The run's record names the dataset's sha256: a run of other bytes fails, clearly, and
    leaves no run folder."""
    folder = tmp_path / "orders"
    _write_parts(orders, folder)
    dataset, _ = runs.add_dataset(folder, filename="orders", keep=False)
    if change == "added":
        orders.head(50).write_parquet(folder / "part-00003-x.snappy.parquet")
    elif change == "edited":
        orders.slice(2500).write_parquet(folder / LAST, compression="uncompressed")
    else:
        (folder / LAST).unlink()
    run = runs.execute(runs.create_run(dataset.id).id)
    assert (run.status, run.error_code) == ("failed", "dataset_changed")
    assert "Register the folder again" in (run.error_message or "")
    assert not (runs.artifacts.root / run.id).exists()
