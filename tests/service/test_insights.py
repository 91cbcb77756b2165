"""Insights end to end: persisted with the run, personas stable, comparison and migrations."""

import json

import polars as pl
import pytest

from sistack.config import Settings
from sistack.demo import generate_customers, generate_transactions
from sistack.domain.insights.promotion import FALLBACKS
from sistack.domain.insights.response import NO_LABEL
from sistack.domain.schema import detect_mapping
from sistack.service.pipeline import RunConfig, run_pipeline
from sistack.service.runs import RunService
from tests.domain.insights.cdnow import (
    CALIBRATION_END,
    PUBLISHED_BGNBD,
    PUBLISHED_GG,
    PUBLISHED_LL,
    TRANSACTIONS,
)
from tests.domain.insights.definitions import undefined


def _as_text(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.all().cast(pl.String))


@pytest.fixture(scope="module")
def demo_data():
    data, truth = generate_customers(3000, seed=11)
    return _as_text(data), truth


@pytest.fixture(scope="module")
def result(demo_data):
    raw, _ = demo_data
    return run_pipeline(raw, detect_mapping(raw), RunConfig(k=5, seed=3, stability_resamples=2))


def test_response_model_learns_the_planted_mechanism(result):
    model = result.insights.response_model
    assert model["available"] is True
    best = max(c["auc_mean"] for c in model["candidates"])
    assert best > 0.7
    # Observed and expected responders agree overall (calibration).
    overall = result.insights.overall
    assert overall["expected_response_rate"] == pytest.approx(overall["response_rate"], abs=0.02)


def test_without_a_label_no_model_and_a_reason(demo_data):
    raw, _ = demo_data
    raw = raw.drop("Response")
    run = run_pipeline(raw, detect_mapping(raw), RunConfig(k=4, stability_resamples=0))
    model = run.insights.response_model
    assert model["available"] is False
    assert "no response label" in model["reason"].lower() or "label" in model["reason"].lower()
    # Expected rates fall back to observed campaign acceptance, labelled as such.
    seg = run.insights.segments[0]["response"]
    assert seg["basis"] == "campaign_acceptance"
    assert model["reason"] == f"{NO_LABEL} {FALLBACKS['campaign_acceptance']}"


@pytest.fixture(scope="module")
def transactions_run():
    raw, _ = generate_transactions(600, seed=11)
    return run_pipeline(raw, detect_mapping(raw), RunConfig(k=4, seed=3, stability_resamples=0))


def test_transactions_without_label_or_campaigns_say_no_rate_is_shown(transactions_run):
    model = transactions_run.insights.response_model
    assert model["available"] is False
    assert model["reason"] == f"{NO_LABEL} {FALLBACKS[None]}"
    assert transactions_run.insights.overall["expected_response_rate"] is None
    assert all(s["response"]["basis"] is None for s in transactions_run.insights.segments)


@pytest.mark.parametrize("run", ["result", "transactions_run"])
def test_every_number_of_insights_json_has_a_definition(run, request):
    doc = json.loads(json.dumps(request.getfixturevalue(run).insights.to_dict()))
    definitions = doc.pop("definitions")
    assert undefined(doc, definitions) == []
    assert all(text.strip() for text in definitions.values())


def test_a_run_on_the_cdnow_transactions_reproduces_the_published_estimates():
    # Fader, Hardie & Lee (2005), on the 39-week calibration period.
    raw = pl.read_csv(TRANSACTIONS, infer_schema=False)
    config = RunConfig(k=3, stability_resamples=0, reference_date=CALIBRATION_END)
    run = run_pipeline(raw, detect_mapping(raw), config)
    overall = run.insights.overall
    assert overall["value_basis"] == "bgnbd_gamma_gamma"
    fitted = {**overall["value_model"]["bgnbd"], **overall["value_model"]["gamma_gamma"]}
    for name, value in {**PUBLISHED_BGNBD, **PUBLISHED_GG}.items():
        assert fitted[name] == pytest.approx(value, rel=0.02), name
    assert overall["value_model"]["bgnbd"]["log_likelihood"] == pytest.approx(PUBLISHED_LL, abs=0.5)
    assert overall["value_notes"] == []
    # The 12-month values of the customers add up to the total, and segments to everyone.
    scores = run.insights.customer_scores.get_column("value_12m")
    assert overall["value_total"] == pytest.approx(scores.sum())
    assert sum(s["value"]["value_12m"]["total"] for s in run.insights.segments) == pytest.approx(
        overall["value_total"]
    )


def test_segment_numbers_add_up(result):
    segments = result.insights.segments
    assert sum(s["contribution"]["customers"] for s in segments) == 3000
    assert sum(s["contribution"]["revenue_share"] for s in segments) == pytest.approx(1.0)
    names = [s["persona"]["name"] for s in segments]
    assert len(set(names)) == len(names)
    for s in segments:
        assert 2 <= len(s["actions"]) <= 4
    top = [a["revenue_at_stake"] for a in result.insights.to_dict()["top_actions"]]
    assert top == sorted(top, reverse=True) and len(top) == 3
    assert result.insights.banner.endswith(".")
    assert all(result.insights.definitions[k] for k in ("revenue_index", "risk_tier", "value_12m"))


def test_personas_do_not_depend_on_row_order(demo_data, result):
    raw, _ = demo_data
    shuffled = raw.sample(fraction=1.0, shuffle=True, seed=99)
    again = run_pipeline(
        shuffled, detect_mapping(shuffled), RunConfig(k=5, seed=3, stability_resamples=2)
    )
    first = {s["segment"]: s["persona"]["name"] for s in result.insights.segments}
    second = {s["segment"]: s["persona"]["name"] for s in again.insights.segments}
    assert first == second


def test_compare_with_reproduction_and_with_a_modified_file(tmp_path, demo_data):
    raw, truth = demo_data
    path = tmp_path / "customers.csv"
    raw.write_csv(path)
    svc = RunService(Settings(home=tmp_path / "home", stability_resamples=2))
    dataset, _ = svc.add_dataset(path, keep=False)
    run = svc.execute(svc.create_run(dataset.id, config=svc.default_config(k=5)).id)
    again = svc.reproduce(run.id)
    same = svc.compare(again.new_run_id, "parent")
    assert [(m["segment_a"], m["segment_b"]) for m in same["matches"]] == [
        (i, i) for i in range(1, 6)
    ]
    assert same["ari"] == pytest.approx(1.0)
    matrix = same["migration"]
    assert all(matrix[i][j] == 0 for i in range(5) for j in range(5) if i != j)

    # Turn 100 affluent customers into lapsed bargain hunters: they must move segment.
    affluent = truth.filter(pl.col("true_segment") == "affluent_loyal").head(100)
    moved_ids = affluent.get_column("customer_id").cast(pl.String)
    lapsed_like = raw.filter(
        pl.col("ID").is_in(
            truth.filter(pl.col("true_segment") == "lapsed")
            .get_column("customer_id")
            .cast(pl.String)
            .to_list()
        )
    ).head(1)
    changed = raw.with_columns(
        [
            pl.when(pl.col("ID").is_in(moved_ids.to_list()))
            .then(pl.lit(lapsed_like[c][0]))
            .otherwise(pl.col(c))
            .alias(c)
            for c in raw.columns
            if c != "ID"
        ]
    )
    path2 = tmp_path / "modified.csv"
    changed.write_csv(path2)
    dataset2, _ = svc.add_dataset(path2, keep=False)
    run2 = svc.execute(
        svc.create_run(dataset2.id, config=svc.default_config(k=5), parent_id=run.id).id
    )
    diff = svc.compare(run2.id, "parent")
    a = pl.read_parquet(svc.assignments_path(run.id))
    b = pl.read_parquet(svc.assignments_path(run2.id))
    joined = a.join(b, on="customer_id", suffix="_b")
    match = {m["segment_a"]: m["segment_b"] for m in diff["matches"]}
    moved = joined.filter(pl.col("customer_id").is_in(moved_ids.to_list()))
    stayed = joined.filter(~pl.col("customer_id").is_in(moved_ids.to_list()))
    # Every modified customer left its matched segment; almost everyone else stayed.
    assert all(match[s] != t for s, t in zip(moved["segment"], moved["segment_b"], strict=True))
    kept = sum(match[s] == t for s, t in zip(stayed["segment"], stayed["segment_b"], strict=True))
    assert kept / stayed.height > 0.97
    assert sum(map(sum, diff["migration"])) == 3000
    assert diff["ari"] < 1.0
    svc.close()
