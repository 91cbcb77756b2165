"""Response per segment as a run reports it: the basis, expected rates and responders worked out
by hand, and a no-model message that names the fallback the data really have."""

import numpy as np
import polars as pl
import pytest
from numpy.testing import assert_allclose

from sistack.domain.insights.promotion import FALLBACKS, response_insights, score_customers
from sistack.domain.insights.response import NO_LABEL

# Six customers: segment 1 = customers 0-1, segment 2 = customers 2-5.
SEGMENT = np.array([1, 1, 2, 2, 2, 2])
IDS = [f"c{i}" for i in range(6)]
PROBABILITY = [0.1, 0.2, 0.3, 0.4, 0.5, 0.9]
FEATURES = pl.DataFrame({"customer_id": IDS, "p": PROBABILITY})


class FixedModel:
    """A fitted response model that predicts the ``p`` feature as the probability."""

    def predict_proba(self, X):
        return X[:, 0].copy()

    def summary(self):
        return {"model": "fixed"}

    def to_dict(self):
        return {"kind": "fixed"}


def run(table, fitted=None):
    return response_insights(FEATURES, table, SEGMENT, [1, 2], seed=0, fitted=fitted)


def test_expected_responders_are_the_sum_of_the_customers_probabilities():
    result = run(pl.DataFrame({"customer_id": IDS}), fitted=(FixedModel(), None))
    # Segment 1: 0.1 + 0.2 = 0.3 responders of 2 (rate 0.15); segment 2: 0.3 + 0.4 + 0.5 + 0.9
    # = 2.1 of 4 (0.525); everyone: 2.4 of 6 (0.4).
    for seg, responders, rate in [(0, 2.4, 0.4), (1, 0.3, 0.15), (2, 2.1, 0.525)]:
        entry = result.segments[seg]
        assert entry["basis"] == "model"
        assert entry["expected_responders"] == pytest.approx(responders)
        assert entry["expected_rate"] == pytest.approx(rate)
        assert result.expected[seg] == pytest.approx(rate)
    assert_allclose(result.per_customer.to_numpy(), PROBABILITY)
    assert result.model_summary["available"] is True and result.model_summary["reason"] is None


def test_probabilities_scored_beforehand_are_the_ones_reported():
    fitted = (FixedModel(), None)
    scores = score_customers(fitted, FEATURES)
    assert_allclose(scores, PROBABILITY)
    assert score_customers((None, "no label"), FEATURES) is None
    table = pl.DataFrame({"customer_id": IDS})
    given = response_insights(
        FEATURES, table, SEGMENT, [1, 2], seed=0, fitted=fitted, probabilities=scores[::-1].copy()
    )
    # The given probabilities are used as they are (here reversed: segment 1 gets 0.9 + 0.5).
    assert given.segments[1]["expected_responders"] == pytest.approx(1.4)
    assert_allclose(given.per_customer.to_numpy(), PROBABILITY[::-1])


def test_without_label_or_campaigns_nothing_is_shown_and_the_message_says_so():
    result = run(pl.DataFrame({"customer_id": IDS}))
    reason = result.model_summary["reason"]
    assert reason == f"{NO_LABEL} {FALLBACKS[None]}"
    assert "campaign acceptance rates are shown" not in reason
    assert result.expected == {} and result.observed_rate is None
    assert all(e["basis"] is None and "expected_rate" not in e for e in result.segments.values())
    assert result.per_customer.null_count() == 6


def test_without_label_campaign_acceptance_is_shown_and_the_message_says_so():
    table = pl.DataFrame(
        {"customer_id": IDS, "campaign_1": [1, 1, 0, 0, 0, 0], "campaign_2": [0, 0, 0, 1, 0, 0]}
    )
    result = run(table)
    assert result.model_summary["reason"] == f"{NO_LABEL} {FALLBACKS['campaign_acceptance']}"
    # Accepted any campaign: customers 0, 1 and 3. Segment 1: 2 of 2; segment 2: 1 of 4.
    for seg, rate, responders in [(0, 0.5, 3.0), (1, 1.0, 2.0), (2, 0.25, 1.0)]:
        entry = result.segments[seg]
        assert entry["basis"] == "campaign_acceptance"
        assert entry["expected_rate"] == pytest.approx(rate)
        assert entry["expected_responders"] == pytest.approx(responders)


def test_a_label_too_small_for_a_model_falls_back_to_the_observed_rate():
    table = pl.DataFrame({"customer_id": IDS, "response": [1, 0, 0, 0, 1, None]})
    result = run(table)
    assert result.model_summary["reason"] == (
        "Only 5 customers have a known response (at least 50 are needed to model it). "
        + FALLBACKS["observed_response"]
    )
    # Known labels: segment 1 has 1 of 2, segment 2 has 1 of 3 (one unknown); everyone 2 of 5.
    # Expected responders = observed rate x all the segment's customers.
    for seg, rate, responders in [(0, 0.4, 2.4), (1, 0.5, 1.0), (2, 1 / 3, 4 / 3)]:
        entry = result.segments[seg]
        assert entry["basis"] == "observed_response"
        assert entry["expected_rate"] == pytest.approx(rate)
        assert entry["expected_responders"] == pytest.approx(responders)
    assert result.observed_rate == pytest.approx(0.4)
    assert result.segments[2]["observed"]["trials"] == 3
