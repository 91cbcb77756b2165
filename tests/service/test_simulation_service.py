"""Simulation on stored runs: numbers from the run's documents, no customer rows read, scenarios."""

import json

import polars as pl
import pytest

from sistack.config import Settings
from sistack.demo import write_dataset
from sistack.errors import InputError, NotFound
from sistack.io.store.artifacts import ArtifactStore
from sistack.service.runs import RunService, compare_stored
from sistack.service.simulation import SimulationService

SHIFT = {
    "levers": [{"lever": "budget_shift", "params": {"sources": [3], "targets": [1], "shift": 0.25}}]
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("sim")
    svc = RunService(Settings(home=root / "home", stability_resamples=0))
    ids = {}
    for n in (2000, 20000):
        path = root / f"c{n}.csv"
        write_dataset(path, customers=n, seed=4)
        dataset, _ = svc.add_dataset(path, keep=False)
        run = svc.execute(svc.create_run(dataset.id, config=svc.default_config(k=4)).id)
        assert run.status == "succeeded", run.error_message
        ids[n] = run.id
    yield svc, ids
    svc.close()


def test_budget_shift_uses_the_reference_formula_on_run_numbers(runs):
    svc, ids = runs
    run_id = ids[2000]
    result = SimulationService(svc).simulate(run_id, SHIFT)
    profiles = {p["segment"]: p for p in svc.profiles(run_id)["profiles"]}
    insights = {s["segment"]: s for s in svc.insights(run_id)["segments"]}
    rate = {s: insights[s]["response"]["expected_rate"] for s in (1, 3)}
    loss = profiles[3]["revenue"] * rate[3] * 0.25
    gain = profiles[1]["revenue"] * rate[1] * 0.25
    segments = {s["segment"]: s for s in result["segments"]}
    assert segments[3]["delta"]["revenue"] == pytest.approx(-loss)
    assert segments[1]["delta"]["revenue"] == pytest.approx(gain)
    assert result["overall"]["delta"]["revenue"] == pytest.approx(gain - loss)
    assert result["overall"]["delta"]["cost"] == pytest.approx(0.0, abs=1e-6)
    filled = result["assumptions"]["levers"][0]["filled"]
    assert any("uplift" in key for key in filled)


def test_simulation_never_opens_a_customer_level_artifact(runs, monkeypatch):
    svc, ids = runs
    opened: dict[str, list[str]] = {}
    original = ArtifactStore.path

    def spy(self, run_id, name):
        opened.setdefault(run_id, []).append(name)
        return original(self, run_id, name)

    monkeypatch.setattr(ArtifactStore, "path", spy)
    sim = SimulationService(svc)
    small = sim.simulate(ids[2000], SHIFT)
    large = sim.simulate(ids[20000], SHIFT)
    # The two per-segment documents, and the manifest their sha256 is checked against on read.
    documents = {"profiles.json", "insights.json", "manifest.json"}
    assert set(opened[ids[2000]]) == set(opened[ids[20000]]) == documents
    # Cached after the first call: a second simulation opens nothing at all.
    opened.clear()
    sim.simulate(ids[20000], {"levers": [{"lever": "price", "params": {"change": {"1": 0.05}}}]})
    assert opened == {}
    assert len(small["segments"]) == len(large["segments"]) == 4


def test_saved_scenarios_compare_and_import(runs):
    svc, ids = runs
    sim = SimulationService(svc)
    run_id = ids[2000]
    first = sim.save(run_id, "shift a quarter", SHIFT)
    second = sim.save(
        run_id,
        "campaign top 2",
        {"levers": [{"lever": "campaign", "params": {"which": "top_n", "n": 2}}]},
    )
    assert [s.name for s in sim.saved(run_id)] == ["shift a quarter", "campaign top 2"]
    side = sim.compare(run_id, [first.id, second.id])
    assert [s["name"] for s in side["scenarios"]] == ["shift a quarter", "campaign top 2"]
    assert side["scenarios"][0]["result"] == sim.simulate(run_id, SHIFT) | {"run_id": run_id}
    with pytest.raises(InputError):
        sim.compare(run_id, [first.id] * 5)

    # Re-applied to the reproduction: same segments, so the same numbers.
    again = svc.reproduce(run_id)
    imported = sim.import_scenario(again.new_run_id, run_id, first.id)
    assert imported.body["levers"][0]["params"]["sources"] == [3]
    assert (
        sim.simulate(again.new_run_id, imported.body)["overall"]
        == sim.simulate(run_id, SHIFT)["overall"]
    )

    sim.delete(run_id, second.id)
    assert [s.id for s in sim.saved(run_id)] == [first.id]
    with pytest.raises(NotFound):
        sim.get(run_id, second.id)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"levers": []}, "levers"),
        ({"levers": [{"lever": "teleport", "params": {}}]}, "lever"),
        (
            {
                "levers": [
                    {
                        "lever": "budget_shift",
                        "params": {"sources": [9], "targets": [1], "shift": 0.1},
                    }
                ]
            },
            "sources",
        ),
        (
            {
                "levers": [
                    {
                        "lever": "budget_shift",
                        "params": {"sources": [2], "targets": [1], "shift": 1.5},
                    }
                ]
            },
            "shift",
        ),
    ],
)
def test_invalid_scenarios_name_the_field(runs, body, field):
    svc, ids = runs
    with pytest.raises(InputError) as info:
        SimulationService(svc).simulate(ids[2000], body)
    assert info.value.code == "invalid_scenario"
    assert any(field in p["field"] for p in info.value.details["problems"])


def test_optimizer_spends_the_budget_within_bounds(runs):
    svc, ids = runs
    result = SimulationService(svc).optimize(
        ids[2000], {"total_budget": 5000, "bounds": {"1": [500.0, 1000.0]}}
    )
    budgets = {s["segment"]: s["budget"] for s in result["segments"]}
    assert result["mode"] == "allocation"
    assert sum(budgets.values()) == pytest.approx(5000, rel=1e-6)
    assert 500 - 1e-6 <= budgets[1] <= 1000 + 1e-6


def rates_and_sizes(svc, run_id):
    profiles = {p["segment"]: p for p in svc.profiles(run_id)["profiles"] if p["segment"]}
    insights = {s["segment"]: s for s in svc.insights(run_id)["segments"]}
    rate = {s: insights[s]["response"]["expected_rate"] for s in profiles}
    size = {s: profiles[s]["customers"] for s in profiles}
    return rate, size


def test_campaign_contact_set_on_run_numbers(runs):
    svc, ids = runs
    run_id = ids[2000]
    rate, size = rates_and_sizes(svc, run_id)
    # revenue per response 40, contact cost 3: contact s iff 40 p_s > 3
    value = {s: size[s] * (40 * rate[s] - 3) for s in rate}
    result = SimulationService(svc).optimize(
        run_id, {"campaign": True, "economics": {"revenue_per_response": 40}}
    )
    assert result["mode"] == "campaign"
    assert result["contacted"] == sorted(s for s in value if value[s] > 0)
    assert result["expected_profit"] == pytest.approx(sum(v for v in value.values() if v > 0))
    assert result["contact_all"]["expected_profit"] == pytest.approx(sum(value.values()))
    # the plan replays as a scenario with the same profit
    replay = SimulationService(svc).simulate(run_id, result["scenario"])
    assert replay["levers"][0]["details"]["profit"] == pytest.approx(result["expected_profit"])


def test_risk_averse_optimiser_through_the_service(runs):
    svc, ids = runs
    sim = SimulationService(svc)
    request = {"total_budget": 3000, "objective": "quantile", "quantile": 0.1, "seed": 7}
    cautious = sim.optimize(ids[2000], request)
    assert cautious == sim.optimize(ids[2000], request)  # same seed, same answer
    assert (cautious["objective"], cautious["quantile"]) == ("quantile", 0.1)
    assert sum(s["budget"] for s in cautious["segments"]) == pytest.approx(3000, rel=1e-6)
    # it maximises the P10 of profit: at least the P10 of the expected-profit optimum, on the
    # same draws, for at most its expected profit
    expected = sim.optimize(ids[2000], {"total_budget": 3000, "seed": 7})
    assert cautious["objective_value"] == pytest.approx(cautious["profit_interval"]["p10"])
    assert cautious["objective_value"] >= expected["profit_interval"]["p10"] - 1e-6
    assert cautious["expected_profit"] <= expected["expected_profit"] + 1e-6


@pytest.mark.parametrize(
    ("request_body", "field", "words"),
    [
        ({"total_budget": 100, "draws": 20_001}, "draws", "between 100 and 20000, got 20001"),
        ({"total_budget": 100, "bounds": {"9": [0, 1]}}, "bounds.9.[key]", "allowed ids: 1, 2"),
        (
            {"total_budget": 100, "economics": {"margin_rate": 1.5}},
            "economics.margin_rate",
            "between 0.0 and 1.0, got 1.5",
        ),
        ({"campaign": False}, "", "total_budget is required"),
    ],
)
def test_invalid_optimisation_requests_name_the_field_and_range(runs, request_body, field, words):
    svc, ids = runs
    with pytest.raises(InputError) as info:
        SimulationService(svc).optimize(ids[2000], request_body)
    assert info.value.code == "invalid_optimization"
    (problem,) = info.value.details["problems"]
    assert problem["field"] == field
    assert words in problem["message"] and words in info.value.message


def test_bounds_the_campaign_optimiser_cannot_honour_are_an_optimisation_error(runs):
    svc, ids = runs
    # Segment 1 must get a campaign budget of exactly 1: more than 0, so it cannot be skipped,
    # and far less than contacting its customers costs, so it cannot be contacted either.
    with pytest.raises(InputError) as info:
        SimulationService(svc).optimize(ids[2000], {"campaign": True, "bounds": {"1": [1, 1]}})
    assert info.value.code == "invalid_optimization"
    assert info.value.details["field"] == "bounds.1"
    assert "segment 1" in info.value.message


def test_sensitivity_through_the_service(runs):
    svc, ids = runs
    run_id = ids[2000]
    result = SimulationService(svc).simulate(run_id, SHIFT, sensitivity=True)
    rate, _ = rates_and_sizes(svc, run_id)
    revenue = {p["segment"]: p["revenue"] for p in svc.profiles(run_id)["profiles"]}
    # impact = margin rate x shift x (R_1 uplift_1 - R_3 loss_3), uplift and loss default to
    # the response rates; the margin rate 0.35 is the default
    gain, loss = revenue[1] * rate[1], revenue[3] * rate[3]
    bars = {b["parameter"]: b for b in result["sensitivity"]}
    assert bars["0.budget_shift.shift"]["profit_base"] == pytest.approx(0.35 * 0.25 * (gain - loss))
    assert bars["0.budget_shift.shift"]["profit_low"] == pytest.approx(0.35 * 0.2 * (gain - loss))
    assert bars["0.budget_shift.uplift"]["profit_high"] == pytest.approx(
        0.35 * 0.25 * (1.2 * gain - loss)
    )
    assert bars["0.budget_shift.uplift"]["high_value"] == {"1": pytest.approx(1.2 * rate[1])}
    assert bars["economics.margin_rate"]["profit_low"] == pytest.approx(0.28 * 0.25 * (gain - loss))
    ranges = [b["range"] for b in result["sensitivity"]]
    assert ranges == sorted(ranges, reverse=True)
    assert "sensitivity" not in SimulationService(svc).simulate(run_id, SHIFT)


@pytest.fixture(scope="module")
def refit(runs):
    """The 2,000-customer file again with k = 5: run A (k = 5) -> run B (k = 4)."""
    svc, ids = runs
    dataset = svc.get_run(ids[2000]).dataset_id
    run = svc.execute(svc.create_run(dataset, config=svc.default_config(k=5)).id)
    assert run.status == "succeeded", run.error_message
    matches = compare_stored(svc, run.id, ids[2000])
    mapping = {m["segment_a"]: m["segment_b"] for m in matches["matches"]}
    return run.id, ids[2000], mapping, list(matches["vanished"])


def test_import_translates_segments_by_matching(runs, refit):
    svc, _ = runs
    sim = SimulationService(svc)
    source, target, mapping, vanished = refit
    assert len(mapping) == 4 and len(vanished) == 1
    assert any(a != b for a, b in mapping.items())  # not the identity: ids really move
    a_ids = sorted(mapping)
    body = {
        "levers": [
            {
                "lever": "budget_shift",
                "params": {"sources": [a_ids[-1]], "targets": [a_ids[1]], "shift": 0.2},
            },
            {"lever": "retention", "params": {"change": {str(a): 0.01 * a for a in a_ids}}},
        ]
    }
    saved = sim.save(source, "refit", body)
    imported = sim.import_scenario(target, source, saved.id)
    params = [lever["params"] for lever in imported.body["levers"]]
    assert params[0]["sources"] == [mapping[a_ids[-1]]]
    assert params[0]["targets"] == [mapping[a_ids[1]]]
    assert params[1]["change"] == {str(mapping[a]): pytest.approx(0.01 * a) for a in a_ids}
    # the retention change acts on B's segments: change x B's 12-month value
    values = {
        s["segment"]: s["value"]["value_12m"]["total"] for s in svc.insights(target)["segments"]
    }
    result = sim.simulate(target, {"levers": [imported.body["levers"][1]]})
    for seg in result["segments"]:
        a = next(a for a, b in mapping.items() if b == seg["segment"])
        assert seg["delta"]["revenue"] == pytest.approx(0.01 * a * values[seg["segment"]])


def test_import_of_an_unmatched_segment_names_it(runs, refit):
    svc, _ = runs
    sim = SimulationService(svc)
    source, target, mapping, vanished = refit
    (lost,) = vanished
    body = {"levers": [{"lever": "retention", "params": {"change": {str(lost): 0.05}}}]}
    saved = sim.save(source, "lost segment", body)
    with pytest.raises(InputError) as info:
        sim.import_scenario(target, source, saved.id)
    assert info.value.code == "unmatched_segment"
    assert f"Segment {lost} of run '{source}' has no match" in info.value.message
    assert info.value.details["matches"] == mapping
    assert [s.name for s in sim.saved(target)].count("lost segment") == 0


def test_contact_cost_and_revenue_per_response_come_from_the_data(tmp_path):
    """Z_CostContact = 5 and Z_Revenue = 20 in the file reach the campaign as "data"."""
    path = tmp_path / "customers.csv"
    write_dataset(path, customers=600, seed=3)
    frame = pl.read_csv(path, infer_schema_length=0)
    frame.with_columns(Z_CostContact=pl.lit("5"), Z_Revenue=pl.lit("20")).write_csv(path)
    svc = RunService(Settings(home=tmp_path / "home", stability_resamples=0))
    try:
        dataset, _ = svc.add_dataset(path, keep=False)
        run = svc.execute(svc.create_run(dataset.id, config=svc.default_config(k=3)).id)
        assert run.status == "succeeded", run.error_message
        population = svc.profiles(run.id)["profiles"][0]
        assert population["sums"]["cost_contact"] == 5 * 600
        assert population["sums"]["revenue_per_response"] == 20 * 600
        assert population["non_null"]["cost_contact"] == 600
        rate, size = rates_and_sizes(svc, run.id)
        campaign = {"levers": [{"lever": "campaign", "params": {"which": "all"}}]}
        result = SimulationService(svc).simulate(run.id, campaign)
        economics = result["assumptions"]["economics"]
        assert (economics["cost_per_contact"], economics["revenue_per_response"]) == (5.0, 20.0)
        assert economics["sources"]["cost_per_contact"] == "data"
        assert economics["sources"]["revenue_per_response"] == "data"
        details = result["levers"][0]["details"]
        assert details["cost"] == pytest.approx(5.0 * 600)
        assert details["revenue"] == pytest.approx(20.0 * sum(size[s] * rate[s] for s in rate))
        # the baseline budget is customers x 1 contact x 5
        assert result["overall"]["baseline"]["cost"] == pytest.approx(3_000.0)
        # still deterministic: the same input gives the same profiles, bit for bit
        again = svc.reproduce(run.id)
        assert json.dumps(svc.profiles(again.new_run_id)) == json.dumps(svc.profiles(run.id))
    finally:
        svc.close()
