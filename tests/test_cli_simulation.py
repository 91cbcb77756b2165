"""``sistack simulate --sensitivity`` and ``sistack optimize`` (risk-averse, campaign) end to end.

The CLI's numbers are checked against the run's own documents (profiles, insights), read
through the same service the commands use.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sistack.config import Settings
from sistack.service.runs import RunService
from tests.conftest import Invoke
from tests.test_cli import one_json

SHIFT = {"levers": [{"lever": "budget_shift", "params": {"sources": [2], "targets": [1]}}]}


@pytest.fixture
def run_id(sistack: Invoke, customer_csv: Path) -> str:
    run: str = one_json(sistack("run", customer_csv, "--json").stdout)["run_id"]
    return run


@pytest.fixture
def documents(settings: Settings, run_id: str) -> Iterator[tuple[dict[int, Any], dict[int, Any]]]:
    """The run's profiles and insights by segment id."""
    svc = RunService(settings)
    try:
        profiles = {p["segment"]: p for p in svc.profiles(run_id)["profiles"]}
        insights = {s["segment"]: s for s in svc.insights(run_id)["segments"]}
        yield profiles, insights
    finally:
        svc.close()


def test_simulate_with_sensitivity(
    sistack: Invoke, run_id: str, documents: Any, tmp_path: Path
) -> None:
    scenario = tmp_path / "shift.json"
    scenario.write_text(json.dumps(SHIFT))
    result = one_json(
        sistack("simulate", run_id, "--scenario", scenario, "--sensitivity", "--json").stdout
    )
    profiles, insights = documents
    rate = {s: insights[s]["response"]["expected_rate"] for s in (1, 2)}
    net = profiles[1]["revenue"] * rate[1] - profiles[2]["revenue"] * rate[2]
    # impact = 0.35 x shift x net; the default shift 0.1 swings to 0.08 and 0.12
    bars = {b["parameter"]: b for b in result["sensitivity"]}
    assert bars["0.budget_shift.shift"]["profit_base"] == pytest.approx(0.35 * 0.1 * net)
    assert bars["0.budget_shift.shift"]["profit_low"] == pytest.approx(0.35 * 0.08 * net)
    assert bars["economics.margin_rate"]["profit_high"] == pytest.approx(0.42 * 0.1 * net)
    ranges = [b["range"] for b in result["sensitivity"]]
    assert ranges == sorted(ranges, reverse=True)
    text = sistack("simulate", run_id, "--scenario", scenario, "--sensitivity").stdout
    top = result["sensitivity"][0]
    assert f"{top['parameter']}: profit {top['profit_low']:+,.0f}" in text
    plain = one_json(sistack("simulate", run_id, "--scenario", scenario, "--json").stdout)
    assert "sensitivity" not in plain


def test_risk_averse_optimiser(sistack: Invoke, run_id: str) -> None:
    args = ("optimize", run_id, "--budget", "600", "--objective", "quantile", "--seed", "5")
    cautious = one_json(sistack(*args, "--quantile", "0.1", "--json").stdout)
    again = one_json(sistack(*args, "--quantile", "0.1", "--json").stdout)
    assert cautious == again
    assert (cautious["objective"], cautious["quantile"]) == ("quantile", 0.1)
    assert cautious["objective_value"] == pytest.approx(cautious["profit_interval"]["p10"])
    assert sum(s["budget"] for s in cautious["segments"]) == pytest.approx(600, rel=1e-6)
    expected = one_json(
        sistack("optimize", run_id, "--budget", "600", "--seed", "5", "--json").stdout
    )
    assert cautious["objective_value"] >= expected["profit_interval"]["p10"] - 1e-6
    assert "Allocation of 600" in sistack(*args).stdout


def test_campaign_contact_set(sistack: Invoke, run_id: str, documents: Any) -> None:
    plan = one_json(sistack("optimize", run_id, "--campaign", "--json").stdout)
    profiles, insights = documents
    # the data's contact cost 3 and revenue per response 11: contact s iff 11 p_s > 3
    value = {
        s: profiles[s]["customers"] * (11 * insights[s]["response"]["expected_rate"] - 3)
        for s in insights
    }
    assert plan["mode"] == "campaign" and plan["total_budget"] is None
    assert plan["contacted"] == sorted(s for s, v in value.items() if v > 0)
    assert plan["contact_all"]["expected_profit"] == pytest.approx(sum(value.values()))
    capped = one_json(sistack("optimize", run_id, "--campaign", "--budget", "1", "--json").stdout)
    assert capped["contacted"] == [] and capped["spent"] == 0  # no segment costs under 1
    assert "Segments to contact" in sistack("optimize", run_id, "--campaign").stdout
    # Rules: the least valuable segment always, the most valuable never.
    best, worst = max(value, key=value.__getitem__), min(value, key=value.__getitem__)
    args = ("--always", str(worst), "--never", str(best))
    ruled = one_json(sistack("optimize", run_id, "--campaign", *args, "--json").stdout)
    assert ruled["contacted"] == sorted({s for s, v in value.items() if v > 0} - {best} | {worst})


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--budget", "100", "--draws", "20001"), "between 100 and 20000, got 20001"),
        (("--budget", "100", "--objective", "median"), "'expected' or 'quantile'"),
        ((), "total_budget is required"),
        (("--budget", "100", "--never", "1"), "add campaign: true"),
    ],
)
def test_invalid_options_exit_2_naming_the_range(
    sistack: Invoke, run_id: str, args: tuple[str, ...], words: str
) -> None:
    out = one_json(sistack("optimize", run_id, *args, "--json", code=2).stdout)
    assert out["error"]["code"] == "invalid_optimization"
    assert words in out["error"]["message"]
