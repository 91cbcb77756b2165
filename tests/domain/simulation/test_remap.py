"""Segment references of a saved scenario translated to another run's segments."""

from __future__ import annotations

import pytest

from sistack.domain.simulation import simulate, validate_scenario
from sistack.domain.simulation.remap import remap_segments

# run A's segment -> run B's segment: a permutation, as after a re-fit that orders differently
MAPPING = {1: 3, 2: 1, 3: 2}

SAVED = {
    "levers": [
        {
            "lever": "budget_shift",
            "params": {
                "sources": [3],
                "targets": [1, 2],
                "shift": 0.2,
                "uplift": {"1": 0.1, "2": 0.05},
                "loss_rate": {"3": 0.02},
            },
        },
        {"lever": "campaign", "params": {"which": "list", "segments": [2, 3]}},
        {"lever": "price", "params": {"change": {"1": 0.05}, "elasticity": {"1": -0.8}}},
        {"lever": "retention", "params": {"change": {"2": 0.1}}},
        {"lever": "discount_depth", "params": {"change": {"3": -0.05}}},
        {"lever": "channel_shift", "params": {"from_channel": "store", "to_channel": "web"}},
    ],
    "economics": {"margin_rate": 0.3},
}


def test_every_segment_reference_is_translated():
    out = remap_segments(SAVED, MAPPING)
    params = [lever["params"] for lever in out["levers"]]
    assert params[0] == {
        "sources": [2],
        "targets": [3, 1],
        "shift": 0.2,
        "uplift": {"3": 0.1, "1": 0.05},
        "loss_rate": {"2": 0.02},
    }
    assert params[1] == {"which": "list", "segments": [1, 2]}
    assert params[2] == {"change": {"3": 0.05}, "elasticity": {"3": -0.8}}
    assert params[3] == {"change": {"1": 0.1}}
    assert params[4] == {"change": {"2": -0.05}}
    assert params[5] == SAVED["levers"][5]["params"]  # no segment reference: unchanged
    assert out["economics"] == {"margin_rate": 0.3}
    assert SAVED["levers"][0]["params"]["sources"] == [3]  # the saved body is not modified


def test_the_translated_scenario_acts_on_the_matched_segments(baseline):
    # retention +0.1 on A's segment 2 is B's segment 1: 0.1 x 80,000 = 8,000 there
    body = remap_segments({"levers": [SAVED["levers"][3]]}, MAPPING)
    result = simulate(baseline, validate_scenario(body, baseline))
    assert [s.delta.revenue for s in result.segments] == pytest.approx([8_000, 0, 0])


def test_a_segment_without_a_match_is_named():
    with pytest.raises(KeyError) as info:
        remap_segments(SAVED, {1: 1, 2: 2})
    assert info.value.args == (3,)
