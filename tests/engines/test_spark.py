"""The Spark engine against the local engine, on generated data with planted segments.

Agreement targets (issue 6): the same k, adjusted Rand index >= 0.95 between the assignments,
segment revenue shares within 1 percentage point, and the same feature values. A Spark run made
through the service is a normal run: the API serves it, the CLI makes it, doctor verifies it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient
from numpy.testing import assert_allclose
from sklearn.metrics import adjusted_rand_score
from typer.testing import CliRunner

from sistack.api.app import create_app
from sistack.cli import app as cli_app
from sistack.config import Settings
from sistack.demo import generate_customers, generate_transactions
from sistack.domain.schema import detect_mapping
from sistack.errors import InputError
from sistack.service.doctor import diagnose
from sistack.service.pipeline import PipelineResult, RunConfig, run_pipeline
from sistack.service.runs import RunService

API = "/api/v1"
CONFIG = RunConfig(stability_resamples=3)
DATA = {
    "customers": lambda: generate_customers(20_000, seed=11)[0],
    "transactions": lambda: generate_transactions(3_000, seed=11)[0],  # ~30,000 orders
}


@pytest.fixture(scope="module", params=sorted(DATA))
def both(request: pytest.FixtureRequest, spark: Any) -> tuple[PipelineResult, PipelineResult]:
    from sistack.engines.spark import SparkEngine

    data = DATA[request.param]()
    mapping = detect_mapping(data)
    local = run_pipeline(data, mapping, CONFIG)
    spark_config = CONFIG.model_copy(update={"engine": "spark"})
    on_spark = run_pipeline(data, mapping, spark_config, engine=SparkEngine(session=spark))
    return local, on_spark


def test_same_k_and_assignments(both: tuple[PipelineResult, PipelineResult]) -> None:
    local, on_spark = both
    assert on_spark.model.n_segments_ == local.model.n_segments_
    assert on_spark.model.k_scores_ == local.model.k_scores_  # the same selection sample
    joined = local.assignments.join(on_spark.assignments, on="customer_id", suffix="_spark")
    assert joined.height == local.assignments.height == on_spark.assignments.height
    ari = adjusted_rand_score(joined.get_column("segment"), joined.get_column("segment_spark"))
    assert ari >= 0.95


def test_revenue_shares_within_one_point(both: tuple[PipelineResult, PipelineResult]) -> None:
    local, on_spark = both
    shares = [[p.revenue_share for p in r.profiles] for r in (local, on_spark)]
    assert_allclose(shares[1], shares[0], atol=0.01)
    assert on_spark.profiles[0].customers == local.profiles[0].customers
    assert on_spark.profiles[0].revenue == pytest.approx(local.profiles[0].revenue, rel=1e-12)


def test_features_and_customer_table_are_equal(
    both: tuple[PipelineResult, PipelineResult],
) -> None:
    local, on_spark = both
    assert on_spark.features.frame.columns == local.features.frame.columns
    assert on_spark.model_features == local.model_features
    assert on_spark.features.frame.get_column("customer_id").equals(
        local.features.frame.get_column("customer_id")
    )
    for name in local.features.frame.columns[1:]:
        assert_allclose(
            on_spark.features.frame.get_column(name).to_numpy(),
            local.features.frame.get_column(name).to_numpy(),
            rtol=1e-12,
            err_msg=name,
        )
    assert on_spark.customers.table.equals(local.customers.table)
    assert on_spark.scaler.to_dict() == local.scaler.to_dict()  # fitted on the same sample
    assert on_spark.quality.to_dict() == local.quality.to_dict()  # capped counts included


def test_profiles_agree_with_the_numpy_aggregation(
    both: tuple[PipelineResult, PipelineResult],
) -> None:
    """Profile statistics of the Spark run equal numpy's on the Spark run's own segments."""
    from sistack.domain.profiles import build_profiles

    _, on_spark = both
    expected = build_profiles(
        on_spark.features.frame,
        on_spark.customers.table,
        on_spark.assignments.get_column("segment"),
        feature_names=[s.name for s in on_spark.features.specs],
        model_features=on_spark.model_features,
    )
    for got, want in zip(on_spark.profiles, expected, strict=True):
        assert (got.segment, got.customers) == (want.segment, want.customers)
        for field in ("means", "medians", "sums"):
            a, b = getattr(got, field), getattr(want, field)
            assert a.keys() == b.keys()
            assert_allclose([a[n] for n in a], [b[n] for n in a], rtol=1e-9, err_msg=field)
        assert got.non_null == want.non_null


@pytest.fixture(scope="module")
def spark_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("spark") / "customers.csv"
    generate_customers(3_000, seed=5)[0].write_csv(path)
    return path


def test_api_serves_a_spark_run_and_doctor_passes_it(
    spark: Any, settings: Settings, spark_csv: Path
) -> None:
    with TestClient(create_app(settings)) as client, spark_csv.open("rb") as fh:
        dataset = client.post(f"{API}/datasets", files={"file": ("c.csv", fh)}).json()
        created = client.post(f"{API}/runs", json={"dataset_id": dataset["id"], "engine": "spark"})
        assert created.status_code == 202, created.text
        run_id = created.json()["id"]
        client.app.state.jobs.wait(run_id, timeout=300)  # type: ignore[attr-defined]
        run = client.get(f"{API}/runs/{run_id}").json()
        assert run["status"] == "succeeded", run
        manifest = client.get(f"{API}/runs/{run_id}/manifest").json()
        insights = client.get(f"{API}/runs/{run_id}/insights")
        segments = client.get(f"{API}/runs/{run_id}/segments")
        k = run["k"]
        scenario = {
            "levers": [
                {"lever": "budget_shift", "params": {"sources": [k], "targets": [1], "shift": 0.5}}
            ]
        }
        simulated = client.post(f"{API}/runs/{run_id}/simulate", json=scenario)
    assert insights.status_code == segments.status_code == simulated.status_code == 200
    assert len(segments.json()["segments"]) == k
    assert manifest["config"]["engine"] == "spark"
    assert manifest["engine"]["name"] == "spark"
    assert manifest["engine"]["master"] == "local[2]"
    assert manifest["engine"]["spark_version"] == spark.version
    parts = sorted(n for n in manifest["artifacts"] if n.startswith("assignments/"))
    assert {n.split("/")[1] for n in parts} == {f"segment={s}" for s in range(1, k + 1)}

    folder = settings.artifacts / run_id
    single = pl.read_parquet(folder / "assignments.parquet").sort("customer_id")
    partitioned = (
        pl.read_parquet(folder / "assignments" / "**" / "*.parquet", hive_partitioning=True)
        .select("customer_id", pl.col("segment").cast(pl.Int32), "distance")
        .sort("customer_id")
    )
    assert partitioned.equals(single)

    svc = RunService(settings)
    try:
        report = diagnose(svc.store, svc.artifacts)
        assert report.problems == ()
        assert report.files_checked == len(manifest["artifacts"])
        # A stray file inside the partitioned directory is reported.
        (folder / "assignments" / "segment=1" / "stray.parquet").write_bytes(b"x")
        problems = diagnose(svc.store, svc.artifacts).problems
        assert [p.path for p in problems] == [f"{run_id}/assignments/segment=1/stray.parquet"]
    finally:
        svc.close()


def test_cli_run_with_engine_spark_reads_a_uri(
    spark: Any, cli_env: dict[str, str], spark_csv: Path
) -> None:
    """``file://`` stands for any Hadoop-compatible URI (hdfs://, s3a://): Spark reads it."""
    uri = spark_csv.as_uri()
    result = CliRunner().invoke(
        cli_app,
        ["run", uri, "--engine", "spark", "--spark-master", "local[2]", "--json"],
        env=cli_env,
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["status"] == "succeeded"
    assert 2 <= body["k"] <= 4
    shares = [s["revenue_share"] for s in body["segments"]]
    assert shares == sorted(shares, reverse=True)  # segment 1 brings the most revenue
    assert np.isclose(sum(shares), 1.0)


def test_a_uri_spark_cannot_read_is_bad_input_not_an_internal_error(
    spark: Any, cli_env: dict[str, str], tmp_path: Path
) -> None:
    missing = (tmp_path / "no-such-orders.csv").as_uri()
    result = CliRunner().invoke(
        cli_app,
        ["run", missing, "--engine", "spark", "--spark-master", "local[2]", "--json"],
        env=cli_env,
    )
    assert result.exit_code == 2, result.output
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "unreadable_input"
    assert missing in error["message"] and "Check that the path exists" in error["message"]
    assert "\tat " not in error["message"]  # no Java stack trace


def test_a_folder_of_csv_files_is_read_as_csv(spark: Any, tmp_path: Path) -> None:
    from sistack.engines.spark import write_source

    folder = tmp_path / "orders-2024"  # no extension: the files inside say the format
    folder.mkdir()
    rows = pl.DataFrame({"customer_id": ["a", "b", "c"], "amount": ["1.50", "2", "$3"]})
    rows.head(2).write_csv(folder / "jan.csv")
    rows.tail(1).write_csv(folder / "feb.csv")
    target = write_source(spark, folder.as_uri(), tmp_path / "copy")
    copied = pl.read_parquet(target).sort("customer_id")
    assert copied.to_dicts() == rows.to_dicts()  # every column as text, as written


def test_a_uri_needs_the_spark_engine(cli_env: dict[str, str]) -> None:
    result = CliRunner().invoke(
        cli_app, ["run", "s3a://bucket/orders.parquet", "--json"], env=cli_env
    )
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "invalid_option"
    assert "--engine spark" in error["message"]


# Dirty transaction rows planted in generated ones (1-based row numbers, spread over the file so
# that they fall in different Spark partitions): (row, column, raw text).
DIRTY = [
    (7, "customer_id", ""),
    (2400, "customer_id", None),
    (15, "order_date", "not a date"),
    (1800, "order_date", "32/13/2023"),
    (80, "order_date", "31/01/2023"),  # another format: read by the fallback, no issue
    (70, "order_date", "2099-01-01"),  # after the reference date
    (30, "amount", "$12.50"),
    (2500, "amount", "1,234.50"),
    (40, "amount", "nan"),
    (3000, "amount", ""),
    (50, "amount", "-20.00"),  # a return
    (2222, "amount", "-5"),
    (90, "promo", "yes"),
    (60, "channel", None),  # unknown levels
    (61, "channel", "??"),
    (3100, "channel", "Kiosk!"),
]
# The report those rows make, worked out from the list above: (code, column, count, rows).
DIRTY_ISSUES = [
    ("missing_customer_id", "customer_id", 2, (7, 2400)),
    ("cleaned_number", "amount", 2, (30, 2500)),
    ("cleaned_number", "promo", 1, (90,)),
    ("unparseable_date", "order_date", 2, (15, 1800)),
    ("missing_amount", "amount", 2, (40, 3000)),
    ("date_after_reference", "order_date", 1, (70,)),
    ("negative_amount", "amount", 2, (50, 2222)),
]


def _dirty_transactions() -> pl.DataFrame:
    """3,331 generated transactions of 300 customers, as text (as read from a CSV), with
    :data:`DIRTY` planted."""
    frame = generate_transactions(300, seed=11)[0].with_columns(pl.all().cast(pl.String))
    row = pl.int_range(1, pl.len() + 1)
    for at, column, text in DIRTY:
        frame = frame.with_columns(
            pl.when(row == at).then(pl.lit(text, dtype=pl.String)).otherwise(pl.col(column))
            .alias(column)
        )  # fmt: skip
    return frame


def _no_rows_here(frame: pl.DataFrame) -> pl.DataFrame:
    raise AssertionError("the transaction rows were read on the driver")


@pytest.fixture(scope="module")
def dirty(
    spark: Any, tmp_path_factory: pytest.TempPathFactory
) -> tuple[PipelineResult, PipelineResult, list[list[str]]]:
    """The dirty transactions run locally, and on Spark from a Parquet file in several
    partitions, with every way the rows could reach the driver closed; the column names of
    every result with rows that Spark handed to the driver."""
    from sistack.engines.spark import SparkEngine

    data = _dirty_transactions()
    mapping = detect_mapping(data, shape="transactions")
    local = run_pipeline(data, mapping, CONFIG)
    path = tmp_path_factory.mktemp("dirty") / "input.parquet"
    data.write_parquet(path, row_group_size=400)
    collected: list[list[str]] = []
    with pytest.MonkeyPatch.context() as mp:
        spark.conf.set("spark.sql.files.maxPartitionBytes", "16k")
        assert spark.read.parquet(str(path)).rdd.getNumPartitions() >= 3
        frames = type(spark.range(1))  # the session's DataFrame class (Spark 4: "classic")
        for name in ("toArrow", "collect"):
            mp.setattr(frames, name, _recording(getattr(frames, name), collected))
        mp.setattr(SparkEngine, "prepare", _no_rows_here)
        mp.setattr(SparkEngine, "_from_polars", _no_rows_here)
        # The pipeline's own copy of the rows is a frame that fails when read.
        unreadable = data.lazy().map_batches(_no_rows_here)
        try:
            on_spark = run_pipeline(
                unreadable,
                mapping,
                CONFIG.model_copy(update={"engine": "spark"}),
                engine=SparkEngine(session=spark),
                source=path,
            )
        finally:
            spark.conf.unset("spark.sql.files.maxPartitionBytes")
    return local, on_spark, collected


def _recording(method: Any, collected: list[list[str]]) -> Any:
    def record(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = method(self, *args, **kwargs)
        if len(result):  # a table's schema alone (no rows) is not data
            collected.append(list(self.columns))
        return result

    return record


def test_dirty_transactions_give_the_local_customers_and_report(
    dirty: tuple[PipelineResult, PipelineResult, list[list[str]]],
) -> None:
    local, on_spark, _ = dirty
    found = [(i.code, i.column, i.count, i.rows) for i in on_spark.customers.report.issues]
    assert found == DIRTY_ISSUES
    assert (on_spark.customers.report.rows_read, on_spark.customers.report.rows_used) == (
        3331,
        3331 - 2 - 2 - 2 - 1,
    )
    assert on_spark.customers.reference_date == local.customers.reference_date
    assert on_spark.customers.report == local.customers.report
    assert on_spark.quality.to_dict() == local.quality.to_dict()
    assert on_spark.customers.table.equals(local.customers.table)
    # The unknown channels ("??" and a missing one) are one level; the rare one stays by name.
    columns = on_spark.customers.table.columns
    assert {"purchases_unknown", "purchases_kiosk"} <= set(columns)
    assert on_spark.customers.table.get_column("purchases_unknown").sum() == 2
    assert on_spark.model.n_segments_ == local.model.n_segments_


def test_dirty_transactions_never_reach_the_driver(
    dirty: tuple[PipelineResult, PipelineResult, list[list[str]]],
) -> None:
    """Neither the raw rows (``order_id``) nor the typed ones (``_no_id``, ``deal``) came back:
    only counts, example row numbers, level texts, dates, and the customer-level tables."""
    _, on_spark, collected = dirty
    assert collected  # the recording saw Spark's results
    raw_or_typed = {"order_id", "order_date", "_no_id", "deal", "order"}
    assert [c for c in collected if raw_or_typed & set(c)] == []
    assert ["_row", "t"] in collected  # the date sample (at most DATE_SAMPLE rows)
    assert on_spark.customers.table.height == 300


@pytest.mark.parametrize(
    ("column", "texts", "code"),
    [
        ("amount", {5: "abc", 2900: "x"}, "non_numeric_values"),
        ("order_date", {r: "soon" for r in range(1, 2000)}, "invalid_dates"),
    ],
)
def test_spark_refuses_bad_transactions_as_the_local_path_does(
    spark: Any, tmp_path: Path, column: str, texts: dict[int, str], code: str
) -> None:
    from sistack.engines.spark import SparkEngine

    data = _dirty_transactions()
    values = [texts.get(r, v) for r, v in enumerate(data.get_column(column).to_list(), 1)]
    data = data.with_columns(pl.Series(column, values, dtype=pl.String))
    mapping = detect_mapping(data, shape="transactions")
    path = tmp_path / "input.parquet"
    data.write_parquet(path)
    with pytest.raises(InputError) as local:
        run_pipeline(data, mapping, CONFIG)
    with pytest.raises(InputError) as on_spark:
        SparkEngine(session=spark).prepare_file(path, mapping, reference_date=None)
    assert on_spark.value.code == local.value.code == code
    assert str(on_spark.value) == str(local.value)
    assert on_spark.value.details == local.value.details


def test_a_service_run_on_spark_reads_the_transactions_from_its_snapshot(
    spark: Any, runs: RunService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``service.runs`` hands Spark the run's ``input.parquet``: the engine never gets the rows
    from the service, and the run's quality report is the local run's."""
    from sistack.engines.spark import SparkEngine

    path = tmp_path / "orders.csv"
    _dirty_transactions().write_csv(path)
    dataset, _ = runs.add_dataset(path, filename="orders.csv")
    local = runs.execute(runs.create_run(dataset.id, config=CONFIG).id)
    monkeypatch.setattr(SparkEngine, "prepare", _no_rows_here)
    monkeypatch.setattr(SparkEngine, "_from_polars", _no_rows_here)
    spark_config = CONFIG.model_copy(update={"engine": "spark"})
    on_spark = runs.execute(runs.create_run(dataset.id, config=spark_config).id)
    assert (local.status, on_spark.status) == ("succeeded", "succeeded"), on_spark
    assert runs.quality(on_spark.id) == runs.quality(local.id)
    issues = [
        (i["code"], i["count"], tuple(i["rows"])) for i in runs.quality(on_spark.id)["issues"]
    ]
    assert ("missing_customer_id", 2, (7, 2400)) in issues


# The dirty rows as three part files (rows 1-500, 501-2500, 2501-3331 in name order).
PART_ROWS = {"part-00000-x.parquet": (0, 500), "part-00001-x.parquet": (500, 2000)}
PART_REST = "part-00002-x.parquet"


def _write_parts(data: pl.DataFrame, folder: Path) -> Path:
    folder.mkdir()
    for name, (start, length) in PART_ROWS.items():
        data.slice(start, length).write_parquet(folder / name)
    data.slice(2500).write_parquet(folder / PART_REST)
    return folder


def test_rows_of_a_directory_are_numbered_in_file_order_whatever_the_partitions(
    spark: Any, tmp_path: Path
) -> None:
    """Spark packs files into partitions largest first: here the 2,000-row part alone, then the
    last part and the first together. Rows are still numbered 1..3,331 in name order (the
    order ``io.parts`` reads a directory in), so the report quotes the local engine's rows."""
    from pyspark.sql import functions as F

    from sistack.engines.spark import SparkEngine

    data = _dirty_transactions()
    folder = _write_parts(data, tmp_path / "orders")
    mapping = detect_mapping(data, shape="transactions")
    local = run_pipeline(data, mapping, CONFIG)
    spark.conf.set("spark.sql.files.maxPartitionBytes", "1g")
    spark.conf.set("spark.sql.files.openCostInBytes", "0")
    try:
        placed = (
            spark.read.parquet(folder.as_uri())
            .select(F.spark_partition_id().alias("p"), F.col("_metadata.file_name").alias("f"))
            .distinct()
            .collect()
        )
        partition = {r["f"]: r["p"] for r in placed}
        assert partition["part-00000-x.parquet"] == partition[PART_REST] != 0
        customers = SparkEngine(session=spark).prepare_file(folder, mapping, reference_date=None)
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
        spark.conf.unset("spark.sql.files.openCostInBytes")
    found = [(i.code, i.column, i.count, i.rows) for i in customers.report.issues]
    assert found == DIRTY_ISSUES
    assert customers.report == local.customers.report
    assert customers.table.equals(local.customers.table)


def test_cli_run_of_a_directory_uri_never_brings_the_rows_to_the_driver(
    spark: Any, cli_env: dict[str, str], settings: Settings, tmp_path: Path
) -> None:
    """``sistack run file:///dir --engine spark``: Spark copies the parts into the dataset
    store, the run's snapshot links them, and the Spark run gives the quality report and the
    features of a local run of the same dataset, while no raw row is collected."""
    from sistack.engines.spark import SparkEngine
    from sistack.io.parts import part_files

    folder = _write_parts(_dirty_transactions(), tmp_path / "orders")
    collected: list[list[str]] = []
    with pytest.MonkeyPatch.context() as mp:
        frames = type(spark.range(1))
        for name in ("toArrow", "collect"):
            mp.setattr(frames, name, _recording(getattr(frames, name), collected))
        mp.setattr(SparkEngine, "prepare", _no_rows_here)
        mp.setattr(SparkEngine, "_from_polars", _no_rows_here)
        result = CliRunner().invoke(
            cli_app,
            ["run", folder.as_uri(), "--engine", "spark", "--spark-master", "local[2]", "--json"],
            env=cli_env,
        )
    assert result.exit_code == 0, result.output
    raw_or_typed = {"order_id", "order_date", "amount", "_no_id", "deal", "order"}
    assert [c for c in collected if raw_or_typed & set(c)] == []
    assert collected  # the recording saw Spark's results

    run_id = json.loads(result.stdout)["run_id"]
    svc = RunService(settings)
    try:
        record = svc.get_run(run_id)
        dataset = svc.store.get_dataset(record.dataset_id)
        stored = Path(dataset.info["path"])
        assert stored == settings.datasets_dir / dataset.id / "parts"
        assert dataset.n_rows == 3331
        parts = part_files(stored)
        assert len(parts) >= 2
        assert sorted(p.name for p in stored.iterdir()) == [p.name for p in parts]  # no .crc
        snapshot = svc.artifacts.snapshot(run_id)
        for part in parts:
            assert (snapshot / part.name).stat().st_ino == part.stat().st_ino
        assert diagnose(svc.store, svc.artifacts).problems == ()

        local = svc.execute(svc.create_run(dataset.id, config=svc.default_config()).id)
        assert local.status == "succeeded", local.error_message
        assert svc.quality(run_id) == svc.quality(local.id)
        mine, theirs = (
            pl.read_parquet(svc.artifacts.path(r, "features.parquet")) for r in (run_id, local.id)
        )
        assert mine.columns == theirs.columns
        assert mine.get_column("customer_id").equals(theirs.get_column("customer_id"))
        for name in theirs.columns[1:]:
            assert_allclose(mine[name].to_numpy(), theirs[name].to_numpy(), rtol=1e-12)
    finally:
        svc.close()
