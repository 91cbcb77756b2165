"""A three-segment run, written by hand, and the baseline built from it.

| seg | customers | revenue | rate (model) | observed | deal share | web/store/catalog | value 12m |
| --- | --------- | ------- | ------------ | -------- | ---------- | ----------------- | --------- |
| 1   | 200       | 100,000 | 0.20         | 38/200   | 0.10       | 400 / 1000 / 600  | 80,000    |
| 2   | 300       | 60,000  | 0.10         | 33/300   | 0.50       | 900 / 600 / 100   | 50,000    |
| 3   | 500       | 40,000  | 0.05         | 24/500   | 0.20       | 300 / 1200 / 0    | 20,000    |

Population deal share 0.25. No contact cost or revenue per response in the data, so the
defaults apply: cost per contact 3, revenue per response 11, margin rate 0.35, one contact per
customer. Baseline budgets 600 / 900 / 1,500; margins 35,000 / 21,000 / 14,000.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sistack.domain.simulation import Baseline

SEGMENTS = (
    # id, customers, revenue, rate, successes, ds, web, store, catalog, value, name
    (1, 200, 100_000.0, 0.20, 38, 0.10, 400.0, 1000.0, 600.0, 80_000.0, "Premium"),
    (2, 300, 60_000.0, 0.10, 33, 0.50, 900.0, 600.0, 100.0, 50_000.0, "Deal seekers"),
    (3, 500, 40_000.0, 0.05, 24, 0.20, 300.0, 1200.0, 0.0, 20_000.0, "Lapsed"),
)


def _profile(seg: int, n: int, revenue: float, web: float, store: float, cat: float) -> dict:
    return {
        "segment": seg,
        "customers": n,
        "customer_share": n / 1000,
        "revenue": revenue,
        "revenue_share": revenue / 200_000.0,
        "means": {"monetary": revenue / n},
        "medians": {"monetary": revenue / n},
        "sums": {
            "purchases_web": web,
            "purchases_store": store,
            "purchases_catalog": cat,
            "response": 0.0,
        },
        "non_null": {
            "purchases_web": n,
            "purchases_store": n,
            "purchases_catalog": n,
            "response": n,
        },
        "center": {},
        "stability": None,
    }


def make_documents() -> tuple[dict[str, Any], dict[str, Any]]:
    """Fresh (profiles_doc, insights_doc) of the table above."""
    profiles = [_profile(0, 1000, 200_000.0, 1600.0, 2800.0, 700.0)]
    segments = []
    for seg, n, revenue, rate, succ, ds, web, store, cat, value, name in SEGMENTS:
        profiles.append(_profile(seg, n, revenue, web, store, cat))
        segments.append(
            {
                "segment": seg,
                "persona": {"name": name},
                "response": {
                    "basis": "model",
                    "expected_rate": rate,
                    "expected_responders": rate * n,
                    "observed": {
                        "successes": succ,
                        "trials": n,
                        "rate": succ / n,
                        "low": None,
                        "high": None,
                    },
                },
                "discount": {
                    "mean_deal_share": ds,
                    "deal_dependent_share": ds / 2,
                    "revenue_exposed": revenue * ds,
                },
                "channels": {"shares": {}, "purchases": web + store + cat},
                "value": {
                    "value_12m": {
                        "customers": n,
                        "mean": value / n,
                        "median": value / n,
                        "p90": value / n,
                        "total": value,
                    },
                    "historical": {"total": revenue},
                },
            }
        )
    insights = {
        "segments": segments,
        "overall": {
            "discount": {
                "mean_deal_share": 0.25,
                "deal_dependent_share": 0.2,
                "revenue_exposed": 30_000.0,
            }
        },
    }
    return {"profiles": profiles}, insights


@pytest.fixture
def documents() -> tuple[dict[str, Any], dict[str, Any]]:
    return make_documents()


@pytest.fixture
def baseline(documents) -> Baseline:
    return Baseline.from_documents(*copy.deepcopy(documents))


@pytest.fixture
def unknown_baseline(documents) -> Baseline:
    """The same run where segment 3 has no response information."""
    profiles, insights = copy.deepcopy(documents)
    insights["segments"][2]["response"] = None
    return Baseline.from_documents(profiles, insights)
