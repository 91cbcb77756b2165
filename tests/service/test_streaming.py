"""A file above the streaming threshold gives the same run, artifact for artifact.

The threshold (``stream_above_bytes``) is set to 0 so that small files take the streaming path
(lazy scan, customer columns typed a few at a time, transactions spilled and aggregated per
partition); the artifacts' sha256 must equal those of the same file read whole.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from sistack.demo import generate_customers, generate_transactions
from sistack.service import pipeline
from sistack.service.runs import COMPARED, RunService
from tests.conftest import small_settings


def _messy_customers(path: Path) -> Path:
    """Generated customers as text, with duplicates, missing ids, currency and bad values."""
    data, _ = generate_customers(400, seed=11)
    # Without the response label: its model (fitted by every run) is not what is tested here.
    text = data.drop("Response").with_columns(pl.all().cast(pl.String))
    income = text.get_column("Income").to_list()
    income[3], income[5], income[8] = "$1,234", "nan", "  52 000 "
    ids = text.get_column("ID").to_list()
    ids[10], ids[12] = ids[9], None  # a duplicate and a missing id
    dates = text.get_column("Dt_Customer").to_list()
    dates[20] = "2099-01-01"
    text = text.with_columns(
        pl.Series("Income", income), pl.Series("ID", ids), pl.Series("Dt_Customer", dates)
    )
    text.write_csv(path)
    return path


def _transactions(path: Path) -> Path:
    data, _ = generate_transactions(120, seed=12)
    text = data.with_columns(pl.all().cast(pl.String))
    amount = text.get_column("amount").to_list()
    amount[4], amount[7] = "€3,50", "nan"
    text.with_columns(pl.Series("amount", amount)).write_csv(path)
    return path


def _parquet(path: Path) -> Path:
    target = path.with_suffix(".parquet")
    pl.read_csv(path, infer_schema=False).write_parquet(target)
    return target


def _run(home: Path, path: Path, **settings: object) -> tuple[dict, dict]:
    svc = RunService(small_settings(home, **settings))
    try:
        dataset, inspection = svc.add_dataset(path, keep=False)
        run = svc.create_run(dataset.id)
        done = svc.execute(run.id)  # reads the file again, as a queued job does
        assert done.status == "succeeded", done.error_message
        return svc.manifest(run.id), inspection.to_dict()
    finally:
        svc.close()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("make", [_messy_customers, _transactions])
def test_streamed_run_has_the_artifacts_of_the_eager_run(tmp_path, monkeypatch, make, fmt):
    path = make(tmp_path / "data.csv")
    if fmt == "parquet":
        path = _parquet(path)
    monkeypatch.setattr(pipeline, "ROWS_PER_PART", 300)  # several partitions on a small file
    eager, eager_info = _run(tmp_path / "eager", path)
    streamed, streamed_info = _run(tmp_path / "streamed", path, stream_above_bytes=0)
    for name in COMPARED:
        if name in eager["artifacts"]:
            assert streamed["artifacts"][name]["sha256"] == eager["artifacts"][name]["sha256"], name
    assert streamed["quality"] == eager["quality"]
    assert streamed["input"] == eager["input"] | {"dataset_id": streamed["input"]["dataset_id"]}
    assert streamed_info == eager_info  # rows, mapping, missing values, preview


def test_streamed_customers_quality_counts_every_row(tmp_path):
    manifest, _ = _run(tmp_path / "s", _messy_customers(tmp_path / "c.csv"), stream_above_bytes=0)
    quality = manifest["quality"]
    assert (quality["rows_read"], quality["rows_used"], quality["rows_excluded"]) == (400, 398, 2)


def test_streamed_errors_name_the_column_and_rows(tmp_path):
    data, _ = generate_customers(50, seed=1)
    text = data.with_columns(pl.all().cast(pl.String))
    income = text.get_column("Income").to_list()
    income[6], income[30] = "lots", "n/a?"
    path = tmp_path / "bad.csv"
    text.with_columns(pl.Series("Income", income)).write_csv(path)
    svc = RunService(small_settings(tmp_path / "home", stream_above_bytes=0))
    try:
        dataset, inspection = svc.add_dataset(path, keep=False)
        assert inspection.raw.source is not None
        done = svc.execute(svc.create_run(dataset.id).id)
    finally:
        svc.close()
    assert done.error_code == "non_numeric_values"
    assert "Column 'Income' has 2 values that are not numbers (rows 7, 31" in done.error_message
