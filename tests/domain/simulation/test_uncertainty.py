"""Monte Carlo: ordered quantiles around the deterministic answer, reproducible by seed."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from sistack.domain.simulation import LeverContext, simulate, validate_scenario
from sistack.domain.simulation.uncertainty import response_draws

LEVERS = [
    {"lever": "campaign", "params": {"which": "all"}},
    {"lever": "budget_shift", "params": {"sources": [3], "targets": [1, 2], "shift": 0.3}},
    {"lever": "price", "params": {"change": {1: 0.1, 2: -0.05}}},
    {"lever": "discount_depth", "params": {"change": {2: 0.05, 3: -0.05}}},
]


def run(baseline, levers=LEVERS, seed=0, draws=4000):
    data = {"levers": levers}
    if draws:
        data["monte_carlo"] = {"draws": draws, "seed": seed}
    return simulate(baseline, validate_scenario(data, baseline))


def all_intervals(result):
    for outcome in (result.overall, *result.segments):
        for kind in ("scenario", "delta"):
            for metric, q in getattr(outcome, f"{kind}_interval").items():
                yield (outcome.segment, kind, metric), q, getattr(getattr(outcome, kind), metric)


def test_quantiles_are_ordered_and_contain_the_deterministic_answer(baseline):
    result = run(baseline)
    point = run(baseline, draws=0)
    assert point.overall.delta.profit == result.overall.delta.profit  # same point answer
    for key, q, value in all_intervals(result):
        assert q.p10 <= q.p50 <= q.p90, key
        assert q.p10 - 1e-9 <= value <= q.p90 + 1e-9, key
    for lever in result.levers:
        for metric, q in lever.delta_interval.items():
            assert q.p10 <= lever.delta[metric] <= q.p90, (lever.lever, metric)


def test_campaign_spread_matches_the_beta_posteriors(baseline):
    result = run(baseline, [LEVERS[0]], draws=20_000)
    q = result.levers[0].details_interval["responders"]
    # responders = sum n_s p_s, p_s ~ Beta(p n + 1, (1 - p) n + 1): mean and sd by hand
    alpha = np.array([41.0, 31.0, 26.0])
    beta = np.array([161.0, 271.0, 476.0])
    n = np.array([200.0, 300.0, 500.0])
    mean = (n * alpha / (alpha + beta)).sum()
    sd = np.sqrt((n**2 * alpha * beta / ((alpha + beta) ** 2 * (alpha + beta + 1))).sum())
    # Beta sums are right-skewed: the median sits a little below the mean (~0.3 of 97)
    assert q.p50 == pytest.approx(mean, abs=0.5)
    assert q.p90 - q.p10 == pytest.approx(2 * 1.2816 * sd, rel=0.03)


def test_same_seed_same_numbers_other_seed_other_numbers(baseline):
    a, b, c = run(baseline, seed=7), run(baseline, seed=7), run(baseline, seed=8)
    assert a.to_dict() == b.to_dict()
    assert a.overall.delta_interval["profit"] != c.overall.delta_interval["profit"]


def test_adding_a_lever_keeps_the_draws_of_the_ones_before(baseline):
    first = run(baseline, LEVERS[:2]).levers
    more = run(baseline, LEVERS).levers
    assert first[0].details_interval == more[0].details_interval
    assert first[1].delta_interval == more[1].delta_interval


def test_rates_given_by_the_user_stay_fixed(baseline):
    levers = [
        {
            "lever": "budget_shift",
            "params": {
                "sources": [3],
                "targets": [1],
                "shift": 0.5,
                "uplift": {1: 0.1},
                "loss_rate": {3: 0.02},
            },
        }
    ]
    result = run(baseline, levers)
    for key, q, value in all_intervals(result):
        assert q.p10 == q.p50 == q.p90 == pytest.approx(value), key


def test_response_draws_follow_their_beta(baseline):
    draws = response_draws(baseline, draws=20_000, seed=1)
    assert draws.shape == (20_000, 3)
    assert_allclose(draws.mean(axis=0), [41 / 202, 31 / 302, 26 / 502], rtol=0.01)


@pytest.mark.parametrize(
    ("value", "low", "high"),
    [(-1.2, -5.0, 0.0), (-4.8, -5.0, 0.0), (2.0, 0.0, 10.0), (0.0, -5.0, 0.0)],
)
def test_elasticity_draws_are_truncated_normal(baseline, value, low, high):
    ctx = LeverContext(
        baseline,
        baseline.economics,
        np.zeros((20_000, 3)),
        np.zeros(3),
        np.random.default_rng(0),
    )
    drawn = ctx.elasticity(value, low=low, high=high)
    assert drawn.shape == (20_000,)
    assert drawn.min() >= low and drawn.max() <= high
    if value == 0.0:
        assert (drawn == 0.0).all()  # no spread around zero
    elif low < value - 3 * 0.25 * abs(value) and value + 3 * 0.25 * abs(value) < high:
        assert drawn.mean() == pytest.approx(value, rel=0.01)
        assert drawn.std() == pytest.approx(0.25 * abs(value), rel=0.03)
    else:  # truncated near -5: the mean moves inward
        assert drawn.mean() > value
    point = LeverContext(baseline, baseline.economics, np.zeros((1, 3)), np.zeros(3))
    assert_allclose(point.elasticity(value, low=low, high=high), [value])
