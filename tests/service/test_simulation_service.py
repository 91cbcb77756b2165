"""Simulation on stored runs: numbers from the run's documents, no customer rows read, scenarios."""

import pytest

from sistack.config import Settings
from sistack.demo import write_dataset
from sistack.errors import InputError, NotFound
from sistack.io.store.artifacts import ArtifactStore
from sistack.service.runs import RunService
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
        ids[2000], total_budget=5000, bounds={1: (500.0, 1000.0)}
    )
    budgets = {s["segment"]: s["budget"] for s in result["segments"]}
    assert sum(budgets.values()) == pytest.approx(5000, rel=1e-6)
    assert 500 - 1e-6 <= budgets[1] <= 1000 + 1e-6
