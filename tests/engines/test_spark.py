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


def test_a_uri_needs_the_spark_engine(cli_env: dict[str, str]) -> None:
    result = CliRunner().invoke(
        cli_app, ["run", "s3a://bucket/orders.parquet", "--json"], env=cli_env
    )
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "invalid_option"
    assert "--engine spark" in error["message"]
