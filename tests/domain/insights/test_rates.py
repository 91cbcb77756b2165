"""Grouping by segment (counting for small integer ids) gives what sorting gives, and campaign
labels other than 0, 1 or missing are refused."""

import numpy as np
import pytest

from sistack.domain.insights.rates import ANY_CAMPAIGN, campaign_rates, group_index


@pytest.mark.parametrize(
    "labels",
    [
        np.array([3, 1, 3, 5, 1, 1]),
        np.zeros(7, dtype=np.int64),
        np.array([2, 0, 2], dtype=np.int32),
        np.array([-1, 2, 2]),  # negative: the sorting path
        np.array([1.0, 0.5, 1.0]),  # not integers: the sorting path
        np.array([], dtype=np.int64),
    ],
)
def test_group_index_is_unique_with_inverse(labels: np.ndarray) -> None:
    ids, inverse = group_index(labels)
    expected_ids, expected_inverse = np.unique(labels, return_inverse=True)
    assert ids.tolist() == expected_ids.tolist() and ids.dtype == expected_ids.dtype
    assert inverse.tolist() == expected_inverse.tolist()


def test_campaign_rates_count_per_segment() -> None:
    # Segment 1: customers 0-2 accepted 1, 0, unknown; segment 4: customers 3-4 accepted 1, 1.
    rates = campaign_rates({"a": np.array([1.0, 0.0, np.nan, 1.0, 1.0])}, np.array([1, 1, 1, 4, 4]))
    got = {
        (r.segment, r.campaign): (r.customers, r.interval.successes, r.interval.trials)
        for r in rates
    }
    assert got[(1, "a")] == (3, 1, 2) and got[(4, "a")] == (2, 2, 2)
    with pytest.raises(ValueError, match="0, 1 or missing"):
        campaign_rates({"a": np.array([2.0, 1.0])}, np.array([1, 1]))


def test_any_campaign_is_yes_if_any_yes_and_no_only_if_all_known() -> None:
    accepted = {
        "a": np.array([1.0, 0.0, np.nan, 0.0, np.nan]),
        "b": np.array([np.nan, 0.0, 0.0, np.nan, 1.0]),
    }
    rates = campaign_rates(accepted, np.ones(5, dtype=np.int64))
    any_rate = next(r for r in rates if r.campaign == ANY_CAMPAIGN)
    # Yes: customers 0 (a) and 4 (b); no: customer 1 (both known, both 0); 2 and 3 unknown.
    assert (any_rate.interval.successes, any_rate.interval.trials) == (2, 3)
