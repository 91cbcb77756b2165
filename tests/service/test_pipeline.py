"""The whole pipeline on generated data: planted segments recovered, results deterministic."""

import polars as pl
import pytest
from sklearn.metrics import adjusted_rand_score

from sistack.config import Settings
from sistack.demo import generate_customers, generate_transactions
from sistack.domain.schema import detect_mapping
from sistack.service.pipeline import RunConfig, run_pipeline
from sistack.service.runs import RunService


def _as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """What a CSV reader hands over: every column as text."""
    return frame.with_columns(pl.all().cast(pl.String))


@pytest.mark.parametrize("seed", [42, 7])
def test_planted_segments_recovered_with_automatic_k(seed):
    data, truth = generate_customers(5000, seed=seed)
    raw = _as_text(data)
    result = run_pipeline(raw, detect_mapping(raw), RunConfig(seed=seed, stability_resamples=2))
    assert result.model.n_segments_ == 5
    joined = result.assignments.join(
        truth.with_columns(pl.col("customer_id").cast(pl.String)), on="customer_id"
    )
    assert joined.height == 5000
    ari = adjusted_rand_score(joined.get_column("true_segment"), joined.get_column("segment"))
    assert ari >= 0.9


@pytest.mark.parametrize(("customers", "seed"), [(1000, 3), (5000, 42), (5000, 7)])
def test_planted_transaction_segments_recovered_with_automatic_k(customers, seed):
    """Order-level data at the default settings: five segments found, ARI >= 0.9 (measured
    0.964, 0.954, 0.957), and the customer-value model fitted on the same aggregation."""
    data, truth = generate_transactions(customers, seed=seed)
    raw = _as_text(data)
    mapping = detect_mapping(raw)
    assert mapping.shape == "transactions"
    result = run_pipeline(raw, mapping, RunConfig(seed=seed, stability_resamples=2))
    assert result.model.n_segments_ == 5
    joined = result.assignments.join(
        truth.with_columns(pl.col("customer_id").cast(pl.String)), on="customer_id"
    )
    assert joined.height == customers
    ari = adjusted_rand_score(joined.get_column("true_segment"), joined.get_column("segment"))
    assert ari >= 0.9
    overall = result.insights.overall
    assert overall["value_basis"] == "bgnbd_gamma_gamma"
    fitted = overall["value_model"]["bgnbd"]
    assert all(fitted[p] > 0 for p in ("r", "alpha", "a", "b"))
    assert fitted["n"] == customers


def test_revenue_order_and_profile_sums():
    data, _ = generate_customers(2000, seed=1)
    raw = _as_text(data)
    result = run_pipeline(raw, detect_mapping(raw), RunConfig(k=4, stability_resamples=2))
    population, *segments = result.profiles
    spend = [c for c in data.columns if c.startswith("Mnt")]
    total = float(data.select(pl.sum_horizontal(spend)).to_series().sum())
    assert population.revenue == pytest.approx(total)
    assert sum(s.revenue for s in segments) == pytest.approx(total)
    assert sum(s.customers for s in segments) == 2000
    shares = [s.revenue_share for s in segments]
    assert shares == sorted(shares, reverse=True)
    assert sum(shares) == pytest.approx(1.0)


def test_same_file_in_two_homes_gives_identical_artifacts(tmp_path):
    data, _ = generate_customers(1500, seed=5)
    path = tmp_path / "customers.csv"
    data.write_csv(path)
    hashes = []
    for home in ("a", "b"):
        svc = RunService(Settings(home=tmp_path / home, stability_resamples=3))
        dataset, _ = svc.add_dataset(path, keep=False)
        run = svc.execute(svc.create_run(dataset.id).id)
        assert run.status == "succeeded", run.error_message
        manifest = svc.manifest(run.id)
        hashes.append(
            {k: v["sha256"] for k, v in manifest["artifacts"].items() if k != "manifest.json"}
        )
        if home == "b":
            again = svc.reproduce(run.id)
            assert again.identical and again.differing == []
        svc.close()
    assert hashes[0] == hashes[1]
